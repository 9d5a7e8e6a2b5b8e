// Random bytes for WebSocket masking keys and handshake nonces, drawn from a pool the CSPRNG refills:
// RFC 6455 asks for unpredictable values from a strong source of entropy (§5.3, §4.1), not for one
// system call each. The bytes handed out are copies, never reused.
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(4096);
let offset = pool.length;

/** `length` (at most 4096) fresh random bytes. */
export function randomFromPool(length: number): Buffer {
  if (offset + length > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const bytes = Buffer.from(pool.subarray(offset, offset + length));
  offset += length;
  return bytes;
}
