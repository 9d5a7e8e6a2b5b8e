// After register() settles, nothing it opened keeps Node alive: run in its own file (own process)
// so other tests' servers do not blur the picture.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { register } from '../src/client/register.js';
import { DEMO_GROUP_KEY } from '../src/emulator/index.js';
import { startTestEmulator } from './helpers/emulator.js';

/** Sockets and timers: what would keep the process alive. */
function openHandles(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((name) => /Socket|TLS|Timeout|Immediate/.test(name))
    .sort();
}

/** The emulator closes its side of a connection a moment later; give both sides a bounded moment. */
async function settledHandles(expected: string[]): Promise<string[]> {
  const started = Date.now();
  let handles = openHandles();
  while (JSON.stringify(handles) !== JSON.stringify(expected) && Date.now() - started < 2000) {
    await new Promise((resolve) => setImmediate(resolve));
    handles = openHandles();
  }
  return handles;
}

test('no socket or timer is left open after register() settles, on success and on failure', async () => {
  const emulator = await startTestEmulator();
  const baseline = openHandles();
  try {
    for (const transport of ['mqtt-ws', 'mqtt'] as const) {
      const options = {
        idScope: emulator.idScope,
        registrationId: `handles-${transport}`,
        security: { groupKey: DEMO_GROUP_KEY },
        endpoint: `localhost:${transport === 'mqtt' ? emulator.mqttPort : emulator.wssPort}`,
        transport,
        trustedCa: emulator.caCertPem,
      };
      await register(options);
      assert.deepEqual(await settledHandles(baseline), baseline, `after success over ${transport}`);
      await assert.rejects(register({ ...options, security: { symmetricKey: DEMO_GROUP_KEY } }));
      assert.deepEqual(await settledHandles(baseline), baseline, `after failure over ${transport}`);
    }
  } finally {
    await emulator.close();
  }
});
