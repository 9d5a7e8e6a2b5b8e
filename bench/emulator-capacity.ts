// 6. Emulator capacity: a fresh emulator process under load from our client (the cheapest client there
// is) at high concurrency, over both TLS transports. The emulator's CPU time, read from /proc, says how
// close to one core it ran, and so what one emulator core sustains. A third run keeps the registrations in
// a data directory (every assignment written to the journal before it is answered): the cost of durability.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { runWorker, startEmulatorProcess, type TransportName } from './processes.js';

export interface CapacityRun {
  transport: TransportName;
  /** With --data-dir: registrations journalled to disk before each answer. */
  persistent?: boolean;
  registrations: number;
  concurrency: number;
  wallMs: number;
  registrationsPerSecond: number;
  emulatorCpuMsPerRegistration: number;
  /** Emulator CPU time / wall time: 1 is one core fully busy. */
  emulatorCoreUtilisation: number;
  /** 1000 / emulator CPU ms per registration: the rate one emulator core could sustain. */
  registrationsPerEmulatorCoreSecond: number;
  latencyMs: number[];
  failures: number;
}

export async function benchEmulatorCapacity(context: BenchContext): Promise<CapacityRun[]> {
  const registrations = context.quick ? 150 : 4000;
  const concurrency = context.quick ? 50 : 200;
  const runs: CapacityRun[] = [];
  const variants = [
    { transport: 'mqtt', persistent: false },
    { transport: 'mqtt-ws', persistent: false },
    { transport: 'mqtt', persistent: true },
  ] as const;
  for (const { transport, persistent } of variants) {
    const dataDir = persistent ? mkdtempSync(join(tmpdir(), 'dps-mqtt-bench-data-')) : undefined;
    const emulator = await startEmulatorProcess({
      pkiDir: context.pkiDir,
      ...(dataDir === undefined ? {} : { dataDir }),
    });
    try {
      context.log(
        `  emulator capacity over ${transport}${persistent ? ' with a data directory' : ''}: ${registrations} registrations`,
      );
      const cpuBefore = emulator.cpuMs();
      const result = await runWorker(
        {
          mode: 'fleet',
          clients: ['ours'],
          transport,
          count: registrations,
          concurrency,
          warmup: 0,
          prefix: `capacity-${transport}${persistent ? '-persistent' : ''}`,
          idScope: emulator.idScope,
          groupKey: context.groupKey,
          mqttPort: emulator.mqttPort,
          wssPort: emulator.wssPort,
          caPath: emulator.caPath,
        },
        400_000,
      );
      const emulatorCpuMs = emulator.cpuMs() - cpuBefore;
      const succeeded = registrations - result.failures;
      runs.push({
        transport,
        persistent,
        registrations: succeeded,
        concurrency,
        wallMs: result.wallMs,
        registrationsPerSecond: (succeeded * 1000) / result.wallMs,
        emulatorCpuMsPerRegistration: emulatorCpuMs / Math.max(1, succeeded),
        emulatorCoreUtilisation: emulatorCpuMs / result.wallMs,
        registrationsPerEmulatorCoreSecond: (succeeded * 1000) / emulatorCpuMs,
        latencyMs: result.latenciesMs.ours ?? [],
        failures: result.failures,
      });
    } finally {
      await emulator.stop();
      if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return runs;
}
