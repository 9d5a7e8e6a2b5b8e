// Random bytes drawn from a pool the CSPRNG refills, for values wanted often and unpredictable: the
// device's WebSocket masking keys and handshake nonces (RFC 6455 §5.3, §4.1), the emulator's operation
// ids. One system call per pool, not one per value; the bytes handed out are copies, never reused.
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(4096);
let offset = pool.length;

/** `length` (at most 4096) fresh random bytes. */
export function randomFromPool(length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  copyRandomFromPool(bytes, 0, length);
  return bytes;
}

/** Writes `length` (at most 4096) fresh random bytes into `target` at `at`, with no buffer of their own. */
export function copyRandomFromPool(target: Uint8Array, at: number, length: number): void {
  if (offset + length > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  pool.copy(target, at, offset, offset + length);
  offset += length;
}
