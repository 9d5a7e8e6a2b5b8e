// Bounds on what the client accepts from the network (documented in docs/reliability.md).

/** Response bodies above this size are refused: a registration result is a few KiB at most. */
export const MAX_RESPONSE_BYTES = 128 * 1024;
/**
 * JSON nesting above this is refused: 128 KiB of `[` parses, but every later JSON.stringify of the
 * result (the CLI's --json, the caller's own logging) would throw RangeError. DPS bodies nest 4 deep.
 */
export const MAX_JSON_DEPTH = 64;
/** A `retry-after` above this is clamped: a hostile or broken server cannot park a device for days. */
export const MAX_RETRY_AFTER_SECONDS = 60;
/** When a transient answer carries no `retry-after` (the Node SDK also waits 2 s). */
export const DEFAULT_RETRY_AFTER_SECONDS = 2;

export function clampRetryAfterSeconds(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds < 0) return DEFAULT_RETRY_AFTER_SECONDS;
  return Math.min(seconds, MAX_RETRY_AFTER_SECONDS);
}

/** The longest delay a Node timer holds (2^31-1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
