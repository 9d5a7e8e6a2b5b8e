// A 429 with retry-after is the service saying "slower", to the whole fleet: every device start pauses
// for the retry-after, and the fleet's concurrency and rate are halved (at most once per retry-after),
// then grow back a little with each registration that completes unthrottled (AIMD, as TCP does).

/** The smallest share of the configured concurrency and rate the fleet falls to. */
const MIN_FACTOR = 1 / 64;
/** Share regained per unthrottled completion: from half speed back to full in 50 completions. */
const RECOVERY_STEP = 0.01;
/** Many devices in flight are throttled at once: one cut per this interval (or per retry-after). */
const MIN_CUT_INTERVAL_MS = 250;

export class BackPressure {
  /** The share (0..1] of the configured concurrency and rate in force now. */
  factor = 1;
  /** No device starts before this time (performance.now() milliseconds). */
  pausedUntil = 0;
  private lastCutAt = Number.NEGATIVE_INFINITY;

  throttled(waitMs: number, now: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, now + waitMs);
    if (now - this.lastCutAt >= Math.max(MIN_CUT_INTERVAL_MS, waitMs)) {
      this.factor = Math.max(MIN_FACTOR, this.factor / 2);
      this.lastCutAt = now;
    }
  }

  completedUnthrottled(): void {
    this.factor = Math.min(1, this.factor + RECOVERY_STEP);
  }

  /** The concurrency in force: at least 1. */
  concurrency(configured: number): number {
    return Math.max(1, Math.floor(configured * this.factor));
  }
}
