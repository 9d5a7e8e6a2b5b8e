// What `dps-mqtt fleet` prints: one progress line rewritten in place on a terminal, and the summary at
// the end (for people, or as one JSON object with --json).
import type { FleetSummary } from '../fleet/types.js';

/** The process's own cost: CPU (every thread) and peak resident memory. */
export interface ClientCost {
  cpuMs: number;
  cpuMsPerDevice: number;
  peakRssMb: number;
}

export function clientCost(devices: number, cpuStart: NodeJS.CpuUsage): ClientCost {
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return {
    cpuMs: Math.round(cpuMs),
    cpuMsPerDevice: devices > 0 ? Math.round((cpuMs / devices) * 100) / 100 : 0,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

/** `1234/10000 done, 3 failed, 812/s, p50 41 ms, p95 120 ms, ETA 11 s` */
export function progressLine(progress: {
  done: number;
  failed: number;
  devices: number;
  elapsedMs: number;
  p50: number;
  p95: number;
}): string {
  const rate = progress.elapsedMs > 0 ? (progress.done * 1000) / progress.elapsedMs : 0;
  const left = progress.devices - progress.done;
  const eta = left <= 0 ? '0 s' : rate > 0 ? duration((left / rate) * 1000) : '?';
  return `${progress.done}/${progress.devices} done, ${progress.failed} failed, ${rate.toFixed(0)}/s, p50 ${Math.round(progress.p50)} ms, p95 ${Math.round(progress.p95)} ms, ETA ${eta}`;
}

/** The summary for people. */
export function formatFleetSummary(
  summary: FleetSummary,
  cost: ClientCost,
  results: { path: string; lines: number } | undefined,
  interrupted: string | undefined,
): string {
  const lines: string[] = [];
  const notStarted = summary.notStarted > 0 ? `, ${summary.notStarted} not started` : '';
  lines.push(
    `${summary.assigned} of ${summary.devices} devices assigned, ${summary.failed} failed${notStarted} in ${duration(summary.wallMs)}${interrupted ? ` (${interrupted})` : ''}`,
  );
  const rows: Array<[string, string]> = [
    ['throughput', `${summary.devicesPerSecond} devices/s`],
    [
      'latency',
      summary.assigned === 0
        ? 'no device assigned'
        : `p50 ${Math.round(summary.latencyMs.p50)} ms, p95 ${Math.round(summary.latencyMs.p95)} ms, p99 ${Math.round(summary.latencyMs.p99)} ms, max ${Math.round(summary.latencyMs.max)} ms`,
    ],
    [
      'throttled',
      summary.throttled === 0
        ? 'never (no 429)'
        : `${summary.throttled} answers 429, waited out: the whole run slowed down`,
    ],
    [
      'client',
      `CPU ${duration(cost.cpuMs)} (${cost.cpuMsPerDevice} ms per device), peak RSS ${cost.peakRssMb} MB`,
    ],
  ];
  if (results) rows.push(['results', `${results.path} (${results.lines} lines)`]);
  for (const [label, value] of rows) lines.push(`  ${`${label}:`.padEnd(12)}${value}`);
  if (summary.failures.length > 0) {
    lines.push('Failures by phase:');
    for (const group of summary.failures) {
      const status = group.statusCode === undefined ? '' : ` ${group.statusCode}`;
      lines.push(
        `  ${String(group.count).padStart(6)}  ${group.phase}: ${group.code}${status}  e.g. ${group.example}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
