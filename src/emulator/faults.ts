// Knobs for tests and benchmarks: throttling and injected faults. Everything is deterministic (counted,
// never random) so a test that asks for "the 2nd request throttled" gets exactly that.

export interface ThrottleOptions {
  /** Answer 429 to the first N requests (register and status queries, counted across connections). */
  firstRequests?: number;
  /** Answer 429 to this fraction (0..1) of the requests after those, evenly spread: 0.5 = every 2nd. */
  fraction?: number;
  /** The `retry-after` sent with a 429; the emulator's retryAfterSeconds by default. */
  retryAfterSeconds?: number;
}

export interface FaultOptions {
  /** Close the connection, unanswered, when the Nth request arrives (counted from 1 across connections). */
  dropBeforeRequest?: number | number[];
  /** Close the connection right after answering the Nth request. */
  dropAfterResponse?: number | number[];
  /** Hold every response back this long (milliseconds). */
  responseDelayMs?: number;
  /** Close the Nth connection (counted from 1) when its CONNECT arrives, before any CONNACK. */
  dropBeforeConnack?: number | number[];
  /** Close the Nth subscribing connection right after its SUBACK. */
  dropAfterSuback?: number | number[];
}

export interface RequestFate {
  /** The request's number, from 1, across all connections. */
  sequence: number;
  throttled: boolean;
  dropBefore: boolean;
  dropAfter: boolean;
}

export class FaultPlan {
  private requestCount = 0;
  private connectCount = 0;
  private subscribeCount = 0;
  private readonly dropBefore: Set<number>;
  private readonly dropAfter: Set<number>;
  private readonly dropBeforeConnack: Set<number>;
  private readonly dropAfterSuback: Set<number>;

  constructor(
    private readonly throttle: ThrottleOptions = {},
    private readonly faults: FaultOptions = {},
  ) {
    this.dropBefore = new Set(toList(faults.dropBeforeRequest));
    this.dropAfter = new Set(toList(faults.dropAfterResponse));
    this.dropBeforeConnack = new Set(toList(faults.dropBeforeConnack));
    this.dropAfterSuback = new Set(toList(faults.dropAfterSuback));
    const fraction = throttle.fraction ?? 0;
    if (!(fraction >= 0 && fraction <= 1))
      throw new RangeError(`throttle fraction ${fraction} must be within 0..1`);
  }

  get responseDelayMs(): number {
    return this.faults.responseDelayMs ?? 0;
  }

  throttleRetryAfterSeconds(fallback: number): number {
    return this.throttle.retryAfterSeconds ?? fallback;
  }

  /** Whether the next CONNECT to arrive is to be dropped unanswered; returns its number too. */
  nextConnect(): { sequence: number; drop: boolean } {
    const sequence = ++this.connectCount;
    return { sequence, drop: this.dropBeforeConnack.has(sequence) };
  }

  /** Whether the connection is to be dropped right after the next SUBACK. */
  nextSubscribe(): { sequence: number; drop: boolean } {
    const sequence = ++this.subscribeCount;
    return { sequence, drop: this.dropAfterSuback.has(sequence) };
  }

  /** Decides what happens to the next request to arrive. */
  nextRequest(): RequestFate {
    const sequence = ++this.requestCount;
    return {
      sequence,
      throttled: this.isThrottled(sequence),
      dropBefore: this.dropBefore.has(sequence),
      dropAfter: this.dropAfter.has(sequence),
    };
  }

  private isThrottled(sequence: number): boolean {
    const first = this.throttle.firstRequests ?? 0;
    if (sequence <= first) return true;
    const fraction = this.throttle.fraction ?? 0;
    if (fraction === 0) return false;
    // Evenly spread: request n (after the first ones) is throttled when floor(n*f) steps up.
    const n = sequence - first;
    return Math.floor(n * fraction) > Math.floor((n - 1) * fraction);
  }
}

function toList(value: number | number[] | undefined): number[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
