// The running counts of a fleet and its summary: throughput, latency percentiles of the assigned
// devices, failures grouped by phase, error code and status code.
import type { FleetDeviceResult, FleetFailureGroup, FleetSummary } from './types.js';

/** Nearest-rank percentile (p in 0..100) of sorted values; 0 when there are none. */
export function nearestRank(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export class FleetStats {
  started = 0;
  assigned = 0;
  failed = 0;
  throttled = 0;
  private readonly latencies: number[] = [];
  private sorted = true;
  private firstStartAt: number | undefined;
  private lastResultAt: number | undefined;
  private readonly failureGroups = new Map<string, FleetFailureGroup>();

  /** `devices`: how many the slice holds. */
  constructor(readonly devices: number) {}

  get done(): number {
    return this.assigned + this.failed;
  }

  /** A device started at `at` (milliseconds since the epoch). */
  deviceStarted(at: number): void {
    this.started += 1;
    if (this.firstStartAt === undefined) this.firstStartAt = at;
  }

  add(result: FleetDeviceResult): void {
    this.throttled += result.throttled;
    this.lastResultAt = Math.max(this.lastResultAt ?? 0, result.finishedAt);
    if (result.status === 'assigned') {
      this.assigned += 1;
      this.latencies.push(result.latencyMs);
      this.sorted = false;
      return;
    }
    this.failed += 1;
    const { phase = 'unknown', code, statusCode } = result.error;
    const key = `${phase}\u0000${code}\u0000${statusCode ?? ''}`;
    const group = this.failureGroups.get(key);
    if (group) group.count += 1;
    else this.failureGroups.set(key, { phase, code, statusCode, count: 1, example: result.error.message });
  }

  /** Milliseconds from the first start to `now` (or to the last result). */
  elapsedMs(now = this.lastResultAt): number {
    if (this.firstStartAt === undefined || now === undefined) return 0;
    return Math.max(0, now - this.firstStartAt);
  }

  latencyPercentile(p: number): number {
    if (!this.sorted) {
      this.latencies.sort((a, b) => a - b);
      this.sorted = true;
    }
    return nearestRank(this.latencies, p);
  }

  summary(): FleetSummary {
    const wallMs = this.elapsedMs();
    return {
      devices: this.devices,
      started: this.started,
      assigned: this.assigned,
      failed: this.failed,
      notStarted: this.devices - this.started,
      throttled: this.throttled,
      wallMs: Math.round(wallMs),
      devicesPerSecond: wallMs > 0 ? Math.round((this.done * 1000 * 10) / wallMs) / 10 : 0,
      latencyMs: {
        p50: this.latencyPercentile(50),
        p95: this.latencyPercentile(95),
        p99: this.latencyPercentile(99),
        max: this.latencyPercentile(100),
      },
      failures: [...this.failureGroups.values()].sort((a, b) => b.count - a.count),
    };
  }
}
