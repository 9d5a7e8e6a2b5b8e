// Random bytes drawn from a pool the CSPRNG refills, for values wanted often and unpredictable: the
// device's WebSocket masking keys and handshake nonces (RFC 6455 §5.3, §4.1), the emulator's operation
// ids. One system call per pool, not one per value; the bytes handed out are copies, never reused.
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
