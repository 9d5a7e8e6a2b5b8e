// `--rate R`: a token bucket filled at R tokens per second; a device starts by taking a token. It starts
// with one token (no burst at the start, so a short run's rate is the asked rate) and holds a few, so a
// timer that fires late is caught up instead of lowering the rate over the run.

export class TokenBucket {
  private tokens = 1;
  private readonly capacity: number;

  constructor(
    private ratePerSecond: number,
    private updatedAt: number,
  ) {
    // A twentieth of a second's worth (at least 1): enough to absorb timer lateness, too little to burst.
    this.capacity = Math.max(1, ratePerSecond / 20);
  }

  /** Changes the rate from `now` on (tokens earned so far at the old rate are kept). */
  setRate(ratePerSecond: number, now: number): void {
    this.refill(now);
    this.ratePerSecond = ratePerSecond;
  }

  /** Milliseconds until a token is available; 0 when one is. */
  delayMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : ((1 - this.tokens) * 1000) / this.ratePerSecond;
  }

  /** Takes a token (call when delayMs() is 0). */
  take(): void {
    this.tokens -= 1;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.updatedAt);
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    this.updatedAt = now;
  }
}
