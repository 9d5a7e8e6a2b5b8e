// registerFleet(): the public entry, light on purpose. It checks the options at once, and loads the
// scheduler, the workers and the certificate code on first iteration only, so importing dps-mqtt for a
// plain register() does not pay for the fleet (test/fleet-lazy-load.test.ts walks the imports).
import { checkFleetOptions } from './fleet-options.js';
import type { FleetDeviceResult, FleetOptions, FleetRun, FleetSummary } from './types.js';

/**
 * Registers many devices at once and yields one result per device as it completes (an error is a
 * result too, with its phase: the iteration itself throws only for bad options or files).
 *
 * ```ts
 * const run = registerFleet({ idScope, devices: { count: 1000, prefix: 'dev-', groupKey }, rate: 50 });
 * for await (const device of run) console.log(device.registrationId, device.status);
 * console.log(run.summary());
 * ```
 */
export function registerFleet(options: FleetOptions): FleetRun {
  checkFleetOptions(options);
  let pendingStop: 'stop' | 'abort' | undefined;
  const loaded = import('./fleet-run.js').then(({ startFleetRun }) => {
    const run = startFleetRun(options);
    if (pendingStop === 'stop') run.stop();
    if (pendingStop === 'abort') run.abort();
    return run;
  });
  // A rejected load is reported by the iteration, not as an unhandled rejection.
  loaded.catch(() => {});
  let current: FleetRun | undefined;
  void loaded.then((run) => {
    current = run;
  });
  let iterator: AsyncIterator<FleetDeviceResult> | undefined;
  const emptySummary: FleetSummary = {
    devices: 0,
    started: 0,
    assigned: 0,
    failed: 0,
    notStarted: 0,
    throttled: 0,
    wallMs: 0,
    devicesPerSecond: 0,
    latencyMs: { p50: 0, p95: 0, p99: 0, max: 0 },
    failures: [],
  };
  return {
    [Symbol.asyncIterator]: () => ({
      async next() {
        iterator ??= (await loaded)[Symbol.asyncIterator]();
        return iterator.next();
      },
      async return() {
        iterator ??= (await loaded)[Symbol.asyncIterator]();
        return iterator.return?.() ?? { value: undefined, done: true };
      },
    }),
    stop() {
      if (current) current.stop();
      else pendingStop ??= 'stop';
    },
    abort() {
      if (current) current.abort();
      else pendingStop = 'abort';
    },
    summary: () => current?.summary() ?? emptySummary,
  };
}
