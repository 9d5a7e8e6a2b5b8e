// 7. The fleet tool: `dps-mqtt fleet` (compiled) registers 10,000 devices against a fresh emulator process
// with every core (worker threads: the number of cores), as a user would run it. Its --json summary gives
// throughput, latency percentiles, failures, and the client's CPU (every thread) and peak RSS; the
// emulator's peak RSS and CPU come from /proc.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { OUR_CLI, runProcess, startEmulatorProcess } from './processes.js';

export interface FleetToolResult {
  devices: number;
  workers: number;
  concurrency: number;
  wallMs: number;
  devicesPerSecond: number;
  clientCpuMsPerRegistration: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  failures: number;
  failureGroups: Array<{ phase: string; code: string; statusCode?: number; count: number }>;
  throttled: number;
  clientPeakRssMb: number;
  emulatorPeakRssMb: number;
  emulatorCpuMsPerRegistration: number;
  resultsLines: number;
}

/** Peak resident set of a running process, from /proc (NaN where there is none). */
function peakRssMb(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export async function benchFleetTool(context: BenchContext): Promise<FleetToolResult> {
  const devices = context.quick ? 300 : 10_000;
  const workers = availableParallelism();
  const concurrency = context.quick ? 50 : 200;
  const emulator = await startEmulatorProcess({ pkiDir: context.pkiDir });
  const dir = mkdtempSync(join(tmpdir(), 'dps-mqtt-bench-fleet-tool-'));
  try {
    context.log(`  dps-mqtt fleet: ${devices} devices, ${workers} workers, concurrency ${concurrency}`);
    const out = join(dir, 'results.jsonl');
    const cpuBefore = emulator.cpuMs();
    const run = await runProcess(
      process.execPath,
      [
        OUR_CLI,
        'fleet',
        '--endpoint',
        `127.0.0.1:${emulator.wssPort}`,
        '--ca',
        emulator.caPath,
        '--id-scope',
        emulator.idScope,
        '--count',
        String(devices),
        '--prefix',
        'fleet-tool-',
        '--group-key',
        context.groupKey,
        '--workers',
        String(workers),
        '--concurrency',
        String(concurrency),
        '--out',
        out,
        '--json',
      ],
      { timeoutMs: 600_000 },
    );
    const emulatorCpuMs = emulator.cpuMs() - cpuBefore;
    const emulatorPeakRssMb = peakRssMb(emulator.pid);
    const line = run.stdout.trim().split('\n').pop() ?? '';
    if (!line.startsWith('{')) {
      throw new Error(`dps-mqtt fleet failed (exit ${run.code}): ${run.stderr.slice(-2000)}`);
    }
    const summary = JSON.parse(line) as {
      assigned: number;
      failed: number;
      wallMs: number;
      devicesPerSecond: number;
      throttled: number;
      latencyMs: FleetToolResult['latencyMs'];
      failures: FleetToolResult['failureGroups'];
      client: { cpuMs: number; peakRssMb: number };
      results?: { lines: number };
    };
    if (summary.failed > 0) context.log(`  dps-mqtt fleet: ${summary.failed} of ${devices} failed`);
    return {
      devices,
      workers,
      concurrency,
      wallMs: summary.wallMs,
      devicesPerSecond: summary.devicesPerSecond,
      clientCpuMsPerRegistration: summary.client.cpuMs / Math.max(1, summary.assigned + summary.failed),
      latencyMs: summary.latencyMs,
      failures: summary.failed,
      failureGroups: summary.failures,
      throttled: summary.throttled,
      clientPeakRssMb: summary.client.peakRssMb,
      emulatorPeakRssMb,
      emulatorCpuMsPerRegistration: emulatorCpuMs / Math.max(1, summary.assigned),
      resultsLines: summary.results?.lines ?? 0,
    };
  } finally {
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The report's section. */
export function renderFleetTool(result: FleetToolResult): string[] {
  const fixed = (value: number, digits = 1): string =>
    Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
  const failures =
    result.failureGroups.length === 0
      ? ''
      : ` (${result.failureGroups.map((group) => `${group.count} × ${group.phase} ${group.code}${group.statusCode === undefined ? '' : ` ${group.statusCode}`}`).join(', ')})`;
  return [
    '## 7. Fleet tool (`dps-mqtt fleet`)',
    '',
    `The compiled CLI, as a user runs it: \`dps-mqtt fleet --count ${result.devices} --group-key ... --workers ${result.workers} --concurrency ${result.concurrency} --out FILE --json\` against a fresh emulator process (MQTT over WebSocket), both on this machine: ${result.workers} worker threads (the number of cores) run the registrations, the main thread schedules them and writes the results file. Client CPU is the whole process (every thread, \`process.cpuUsage()\`) over the devices; client peak RSS is \`process.resourceUsage().maxRSS\`; the emulator's from \`/proc/<pid>/status\` (VmHWM) and \`/proc/<pid>/stat\`.`,
    '',
    '| devices | devices / s | client CPU ms / registration | latency p50 / p95 / p99 ms | failures | answers 429 | client peak RSS MB | emulator peak RSS MB | emulator CPU ms / registration | results lines |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${result.devices} | ${fixed(result.devicesPerSecond, 0)} | ${fixed(result.clientCpuMsPerRegistration, 2)} | ${fixed(result.latencyMs.p50, 0)} / ${fixed(result.latencyMs.p95, 0)} / ${fixed(result.latencyMs.p99, 0)} | ${result.failures}${failures} | ${result.throttled} | ${fixed(result.clientPeakRssMb, 0)} | ${fixed(result.emulatorPeakRssMb, 0)} | ${fixed(result.emulatorCpuMsPerRegistration, 2)} | ${result.resultsLines} |`,
    '',
  ];
}
