// A fleet worker thread: runs the registrations the main thread hands it (which keeps the fleet's rate,
// concurrency and back-pressure) and posts each outcome back; 429s are reported as they happen.
import { setMaxListeners } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import type { FleetDeviceSpec } from './device-source.js';
import { GroupCaIssuer } from './group-ca-issuer.js';
import { type FleetClientOptions, runDevice } from './run-device.js';
import type { GroupCaOptions } from './types.js';

export interface FleetWorkerData {
  client: FleetClientOptions;
  groupCa: GroupCaOptions | undefined;
  includeKeys: boolean;
}

export type ToWorker = { type: 'run'; id: number; device: FleetDeviceSpec } | { type: 'abort' };

export type FromWorker =
  | { type: 'throttled'; id: number; waitMs: number }
  | { type: 'done'; id: number; outcome: Awaited<ReturnType<typeof runDevice>> };

const port = parentPort;
if (port !== null) {
  const data = workerData as FleetWorkerData;
  const issuer = data.groupCa === undefined ? undefined : new GroupCaIssuer(data.groupCa);
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // one listener per registration in flight
  port.on('message', (message: ToWorker) => {
    if (message.type === 'abort') {
      controller.abort();
      return;
    }
    const { id, device } = message;
    void runDevice(device, {
      client: data.client,
      issuer,
      includeKeys: data.includeKeys,
      signal: controller.signal,
      onThrottled: (waitMs) => port.postMessage({ type: 'throttled', id, waitMs } satisfies FromWorker),
    }).then((outcome) => port.postMessage({ type: 'done', id, outcome } satisfies FromWorker));
  });
}
