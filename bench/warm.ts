// 2. Warm latency: sequential registrations in one client process, ours and the official SDK in turn,
// over MQTT-over-WebSocket against the emulator in its own process; then the same over MQTT over TLS.
import type { BenchContext } from './context.js';
import { runWorker, type WorkerJob } from './processes.js';

export interface WarmResult {
  count: number;
  latencyMs: { ours: number[]; official: number[] };
  /** The same run over MQTT over TLS (port 8883). */
  overMqtt?: { ours: number[]; official: number[] };
}

export async function benchWarm(context: BenchContext): Promise<WarmResult> {
  const { emulator } = context;
  const count = context.quick ? 15 : 250;
  const job: WorkerJob = {
    mode: 'sequential',
    clients: ['ours', 'official'],
    transport: 'mqtt-ws',
    count,
    concurrency: 1,
    warmup: context.quick ? 3 : 20,
    prefix: 'warm',
    idScope: emulator.idScope,
    groupKey: context.groupKey,
    mqttPort: emulator.mqttPort,
    wssPort: emulator.wssPort,
    caPath: emulator.caPath,
  };
  const result = await runWorker(job);
  const overMqtt = await runWorker({ ...job, transport: 'mqtt', prefix: 'warm-mqtt' });
  return {
    count,
    latencyMs: { ours: result.latenciesMs.ours ?? [], official: result.latenciesMs.official ?? [] },
    overMqtt: { ours: overMqtt.latenciesMs.ours ?? [], official: overMqtt.latenciesMs.official ?? [] },
  };
}
