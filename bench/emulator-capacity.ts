// 6. Emulator capacity: a fresh emulator process under load from our client (the cheapest client there
// is) at high concurrency, over both TLS transports. The emulator's CPU time, read from /proc, says how
// close to one core it ran, and so what one emulator core sustains.
import type { BenchContext } from './context.js';
import { runWorker, startEmulatorProcess, type TransportName } from './processes.js';

export interface CapacityRun {
  transport: TransportName;
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
  for (const transport of ['mqtt', 'mqtt-ws'] as const) {
    const emulator = await startEmulatorProcess({ pkiDir: context.pkiDir });
    try {
      context.log(`  emulator capacity over ${transport}: ${registrations} registrations`);
      const cpuBefore = emulator.cpuMs();
      const result = await runWorker(
        {
          mode: 'fleet',
          clients: ['ours'],
          transport,
          count: registrations,
          concurrency,
          warmup: 0,
          prefix: `capacity-${transport}`,
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
    }
  }
  return runs;
}
