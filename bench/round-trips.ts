// 4. Round trips: both clients through a proxy that adds 25 ms each way, over both transports; ours with
// its defaults and with the opt-in `pipeline`. Flights are counted at the proxy (delay-proxy.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { BenchContext } from './context.js';
import { countFlights, startDelayProxy } from './delay-proxy.js';
import { registerWithOfficialSdk } from './official-sdk.js';
import { REPO_ROOT, type TransportName } from './processes.js';

export const ONE_WAY_DELAY_MS = 25;

export interface RoundTripCase {
  label: string;
  client: 'ours' | 'official';
  transport: TransportName;
  pipeline: boolean;
  /** The physical minimum in round trips for this transport with one status poll. */
  minimumRoundTrips: number;
  wallMs: number[];
  flights: number[];
  connections: number[];
}

type OurModule = typeof import('../src/index.js');

const CASES: Array<Pick<RoundTripCase, 'label' | 'client' | 'transport' | 'pipeline'>> = [
  { label: 'ours, mqtt-ws (default)', client: 'ours', transport: 'mqtt-ws', pipeline: false },
  { label: 'ours, mqtt-ws, pipeline: true', client: 'ours', transport: 'mqtt-ws', pipeline: true },
  { label: 'official SDK, MqttWs', client: 'official', transport: 'mqtt-ws', pipeline: false },
  { label: 'ours, mqtt (default)', client: 'ours', transport: 'mqtt', pipeline: false },
  { label: 'ours, mqtt, pipeline: true', client: 'ours', transport: 'mqtt', pipeline: true },
  { label: 'official SDK, Mqtt', client: 'official', transport: 'mqtt', pipeline: false },
];

/** TCP 1 + TLS 1.3 1 (+ WebSocket upgrade 1) + one MQTT exchange 1 + one status poll 1. */
export function minimumRoundTrips(transport: TransportName): number {
  return transport === 'mqtt-ws' ? 5 : 4;
}

export async function benchRoundTrips(context: BenchContext): Promise<RoundTripCase[]> {
  const { emulator } = context;
  const caPem = readFileSync(emulator.caPath, 'utf8');
  const ours = (await import(pathToFileURL(join(REPO_ROOT, 'dist', 'index.js')).href)) as OurModule;
  const runs = context.quick ? 1 : 5;
  const results: RoundTripCase[] = CASES.map((testCase) => ({
    ...testCase,
    minimumRoundTrips: minimumRoundTrips(testCase.transport),
    wallMs: [],
    flights: [],
    connections: [],
  }));
  for (let run = 0; run < runs; run += 1) {
    // Interleaved: every case once per round.
    for (const testCase of results) {
      const proxy = await startDelayProxy({
        targetPort: testCase.transport === 'mqtt' ? emulator.mqttPort : emulator.wssPort,
        oneWayDelayMs: ONE_WAY_DELAY_MS,
      });
      try {
        const registrationId = `rtt-${testCase.client}-${testCase.transport}-${testCase.pipeline ? 'p' : 'd'}-${run}`;
        const deviceKey = context.deviceKey(registrationId);
        const endpoint = `localhost:${proxy.port}`;
        const startedAt = performance.now();
        const result =
          testCase.client === 'ours'
            ? await ours.register({
                idScope: emulator.idScope,
                registrationId,
                security: { symmetricKey: deviceKey },
                endpoint,
                transport: testCase.transport,
                trustedCa: caPem,
                ...(testCase.pipeline ? { pipeline: true } : {}),
              })
            : await registerWithOfficialSdk({
                endpoint,
                idScope: emulator.idScope,
                registrationId,
                deviceKey,
                caPem,
                transport: testCase.transport,
              });
        const doneAt = performance.now();
        if (result.status !== 'assigned') throw new Error(`${testCase.label}: ended ${result.status}`);
        testCase.wallMs.push(doneAt - startedAt);
        testCase.flights.push(proxy.connections.reduce((sum, trace) => sum + countFlights(trace, doneAt), 0));
        testCase.connections.push(proxy.connections.length);
      } finally {
        await proxy.close();
      }
    }
  }
  return results;
}
