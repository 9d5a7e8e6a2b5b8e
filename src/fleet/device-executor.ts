// Where a fleet's registrations run: in this thread, or spread over worker threads so one machine uses
// all its cores. Either way the scheduler in the main thread decides when each device starts.
import { setMaxListeners } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { FleetDeviceSpec } from './device-source.js';
import type { FleetWorkerData, FromWorker, ToWorker } from './fleet-worker.js';
import { GroupCaIssuer } from './group-ca-issuer.js';
import { type DeviceOutcome, describeDeviceError, runDevice } from './run-device.js';

export interface DeviceExecutor {
  run(device: FleetDeviceSpec, onThrottled: (waitMs: number) => void): Promise<DeviceOutcome>;
  /** Aborts every registration in flight (each still resolves, as an ERR_ABORTED failure). */
  abortAll(): void;
  close(): Promise<void>;
}

export function inThreadExecutor(data: FleetWorkerData): DeviceExecutor {
  const issuer = data.groupCa === undefined ? undefined : new GroupCaIssuer(data.groupCa);
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // one listener per registration in flight
  return {
    run: (device, onThrottled) =>
      runDevice(device, {
        client: data.client,
        issuer,
        includeKeys: data.includeKeys,
        signal: controller.signal,
        onThrottled,
      }),
    abortAll: () => controller.abort(),
    close: async () => {},
  };
}

interface Pending {
  device: FleetDeviceSpec;
  worker: PooledWorker;
  resolve(outcome: DeviceOutcome): void;
  onThrottled(waitMs: number): void;
}

interface PooledWorker {
  worker: Worker;
  inFlight: number;
  failure: Error | undefined;
}

/**
 * A worker thread running fleet-worker next to this module: the compiled .js, or (from source, under
 * tsx: tests and the benchmark's source runs) the .ts through tsx's loader, which workers do not inherit.
 */
function startWorker(data: FleetWorkerData): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./fleet-worker.js', import.meta.url), { workerData: data });
  }
  const tsx = import.meta.resolve('tsx/esm/api');
  const script = new URL('./fleet-worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(script)}); })`;
  return new Worker(bootstrap, { eval: true, workerData: data });
}

export function workerPoolExecutor(data: FleetWorkerData, workers: number): DeviceExecutor {
  const pending = new Map<number, Pending>();
  let nextId = 1;
  const pool: PooledWorker[] = [];

  const failWorker = (pooled: PooledWorker, error: Error): void => {
    if (pooled.failure !== undefined) return;
    pooled.failure = error;
    for (const [id, entry] of pending) {
      if (entry.worker !== pooled) continue;
      pending.delete(id);
      entry.resolve(workerFailure(entry.device, error));
    }
  };

  for (let index = 0; index < workers; index++) {
    const worker = startWorker(data);
    const pooled: PooledWorker = { worker, inFlight: 0, failure: undefined };
    worker.on('message', (message: FromWorker) => {
      const entry = pending.get(message.id);
      if (entry === undefined) return;
      if (message.type === 'throttled') {
        entry.onThrottled(message.waitMs);
        return;
      }
      pending.delete(message.id);
      pooled.inFlight -= 1;
      entry.resolve(message.outcome);
    });
    worker.on('error', (error) => failWorker(pooled, error));
    worker.on('exit', (code) => failWorker(pooled, new Error(`the worker thread exited (code ${code})`)));
    pool.push(pooled);
  }

  return {
    run(device, onThrottled) {
      let target: PooledWorker | undefined;
      for (const pooled of pool) {
        if (pooled.failure === undefined && (target === undefined || pooled.inFlight < target.inFlight)) {
          target = pooled;
        }
      }
      if (target === undefined) {
        return Promise.resolve(
          workerFailure(device, pool[0]?.failure ?? new Error('no worker thread is running')),
        );
      }
      const chosen = target;
      const id = nextId++;
      chosen.inFlight += 1;
      return new Promise<DeviceOutcome>((resolve) => {
        pending.set(id, { device, worker: chosen, resolve, onThrottled });
        chosen.worker.postMessage({ type: 'run', id, device } satisfies ToWorker);
      });
    },
    abortAll() {
      for (const pooled of pool) {
        if (pooled.failure === undefined) pooled.worker.postMessage({ type: 'abort' } satisfies ToWorker);
      }
    },
    async close() {
      for (const pooled of pool) pooled.failure ??= new Error('the fleet is closed');
      await Promise.all(pool.map((pooled) => pooled.worker.terminate()));
    },
  };
}

function workerFailure(device: FleetDeviceSpec, error: Error): DeviceOutcome {
  return {
    index: device.index,
    registrationId: device.registrationId,
    status: 'failed',
    error: describeDeviceError(
      Object.assign(new Error(`the worker thread running this device failed: ${error.message}`), {
        code: 'ERR_INTERNAL',
      }),
    ),
    latencyMs: 0,
    throttled: 0,
  };
}
