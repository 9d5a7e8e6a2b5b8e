// The fleet scheduler: starts each device of the slice when the concurrency window, the rate and the
// service's back-pressure all allow it, runs it in this thread or a worker, and hands each result to the
// iterator as it completes. The main thread keeps every global: rate, concurrency, counts.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { InvalidInputError } from '../protocol/errors.js';
import { BackPressure } from './back-pressure.js';
import { type DeviceExecutor, inThreadExecutor, workerPoolExecutor } from './device-executor.js';
import { checkDeviceSource, type FleetDeviceSpec, fleetDevices, fleetSize } from './device-source.js';
import { DEFAULT_FLEET_CONCURRENCY } from './fleet-options.js';
import { FleetStats } from './fleet-stats.js';
import type { FleetWorkerData } from './fleet-worker.js';
import { GroupCaIssuer } from './group-ca-issuer.js';
import type { FleetClientOptions } from './run-device.js';
import { TokenBucket } from './token-bucket.js';
import type { FleetDeviceResult, FleetOptions, FleetRun, GroupCaOptions } from './types.js';

/** PEM text as is, or the content of the file it names (read once, not once per device). */
function pemText(value: string, field: string): string {
  if (value.includes('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (error) {
    const reason = (error as { code?: unknown }).code ?? (error as Error).message;
    throw new InvalidInputError(field, `${field}: cannot read ${JSON.stringify(value)} (${String(reason)})`);
  }
}

function epochMs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 10) / 10;
}

/** Resolves `wait()` after `ms` or at the next `wake()`, whichever is first. */
class Waker {
  private wakeUp: (() => void) | undefined;
  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.wake(), Math.max(0, ms));
      this.wakeUp = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
    });
  }
  wake(): void {
    const wakeUp = this.wakeUp;
    this.wakeUp = undefined;
    wakeUp?.();
  }
}

export function startFleetRun(options: FleetOptions): FleetRun {
  checkDeviceSource(options.devices);
  const source = options.devices;
  const groupCa: GroupCaOptions | undefined =
    'groupCa' in source
      ? {
          certificate: pemText(source.groupCa.certificate, 'devices.groupCa.certificate'),
          privateKey: pemText(source.groupCa.privateKey, 'devices.groupCa.privateKey'),
          ...(source.groupCa.passphrase === undefined ? {} : { passphrase: source.groupCa.passphrase }),
        }
      : undefined;
  if (groupCa !== undefined) new GroupCaIssuer(groupCa); // fail fast on a CA that cannot sign
  const client: FleetClientOptions = { idScope: options.idScope };
  for (const name of [
    'endpoint',
    'transport',
    'proxy',
    'apiVersion',
    'payload',
    'pipeline',
    'timeoutMs',
  ] as const) {
    if (options[name] !== undefined) Object.assign(client, { [name]: options[name] });
  }
  if (options.trustedCa !== undefined) client.trustedCa = pemText(options.trustedCa, 'trustedCa');
  const data: FleetWorkerData = { client, groupCa, includeKeys: options.includeKeys === true };

  const concurrency = options.concurrency ?? DEFAULT_FLEET_CONCURRENCY;
  const stats = new FleetStats(fleetSize(source, options.shard));
  const backPressure = new BackPressure();
  const waker = new Waker();
  const results: FleetDeviceResult[] = [];
  let resultWaiter: (() => void) | undefined;
  let stopped = false;
  let aborted = false;
  let executor: DeviceExecutor | undefined;
  let finished = false;
  let failure: unknown;
  let running: Promise<void> | undefined;

  const notify = (): void => {
    const waiter = resultWaiter;
    resultWaiter = undefined;
    waiter?.();
  };
  const stop = (): void => {
    stopped = true;
    waker.wake();
  };
  const abort = (): void => {
    stop();
    aborted = true;
    executor?.abortAll();
  };
  const onAbortSignal = (): void => abort();
  options.signal?.addEventListener('abort', onAbortSignal, { once: true });

  async function schedule(): Promise<void> {
    const workers = options.workers ?? 0;
    executor = workers > 0 ? workerPoolExecutor(data, workers) : inThreadExecutor(data);
    if (aborted) executor.abortAll();
    const bucket = options.rate === undefined ? undefined : new TokenBucket(options.rate, performance.now());
    let inFlight = 0;
    const start = (device: FleetDeviceSpec): void => {
      inFlight += 1;
      const startedAt = epochMs();
      stats.deviceStarted(startedAt);
      let throttledHere = false;
      void (executor as DeviceExecutor)
        .run(device, (waitMs) => {
          throttledHere = true;
          backPressure.throttled(waitMs, performance.now());
        })
        .then((outcome) => {
          inFlight -= 1;
          const result = { ...outcome, startedAt, finishedAt: epochMs() } as FleetDeviceResult;
          if (!throttledHere && result.status === 'assigned') backPressure.completedUnthrottled();
          stats.add(result);
          results.push(result);
          notify();
          waker.wake();
        });
    };
    try {
      for (const device of fleetDevices(source, options.shard)) {
        let ready = false;
        while (!stopped && !ready) {
          const now = performance.now();
          if (inFlight >= backPressure.concurrency(concurrency)) {
            await waker.wait();
          } else if (backPressure.pausedUntil > now) {
            await waker.wait(backPressure.pausedUntil - now);
          } else if (bucket !== undefined) {
            bucket.setRate((options.rate as number) * backPressure.factor, now);
            const delay = bucket.delayMs(now);
            if (delay > 0) await waker.wait(delay);
            else {
              bucket.take();
              ready = true;
            }
          } else {
            ready = true;
          }
        }
        if (stopped) break;
        start(device);
      }
      while (inFlight > 0) await waker.wait();
    } finally {
      await executor.close();
    }
  }

  const ensureRunning = (): Promise<void> => {
    running ??= (async () => {
      try {
        await schedule();
      } catch (error) {
        failure = error;
      } finally {
        finished = true;
        options.signal?.removeEventListener('abort', onAbortSignal);
        notify();
      }
    })();
    return running;
  };
  if (options.signal?.aborted) abort();

  const iterator: AsyncIterator<FleetDeviceResult> = {
    async next() {
      void ensureRunning();
      for (;;) {
        const result = results.shift();
        if (result !== undefined) return { value: result, done: false };
        if (finished) {
          if (failure !== undefined) throw failure;
          return { value: undefined, done: true };
        }
        await new Promise<void>((resolve) => {
          resultWaiter = resolve;
        });
      }
    },
    async return() {
      abort();
      if (running !== undefined) await running;
      return { value: undefined, done: true };
    },
  };

  return {
    [Symbol.asyncIterator]: () => iterator,
    stop,
    abort,
    summary: () => stats.summary(),
  };
}
