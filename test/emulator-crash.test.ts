// Durable state: the emulator, a child process, is killed with SIGKILL while devices register and the
// service API creates enrollments. After a restart on the same data directory every registration whose
// assignment a device received, and every enrollment the service API acknowledged, is there, and the
// store reads back. Three rounds on one data directory; DPS_MQTT_CRASH_ROUNDS=N for more.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHmac, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEMO_GROUP_KEY } from '../src/emulator/enrollments/config.js';
import type { RunningEmulator } from '../src/emulator/index.js';
import { register } from '../src/index.js';
import { temporaryDirectory } from './helpers/emulator.js';
import { serviceRequest } from './support/service-api.js';

const CLI_ENTRY = fileURLToPath(new URL('../src/emulator/cli-entry.ts', import.meta.url));
const ROUNDS = Number(process.env.DPS_MQTT_CRASH_ROUNDS ?? 3);
const API = 'api-version=2021-10-01';
const KEY = Buffer.alloc(32, 7).toString('base64');
/** Registrations and enrollment creations kept in flight at once. */
const IN_FLIGHT = 12;

interface ReadyLine {
  mqttPort: number;
  wssPort: number;
  idScope: string;
  ca: string;
  serviceConnectionString: string;
}

interface EmulatorChild {
  child: ChildProcessWithoutNullStreams;
  ready: ReadyLine;
  caPem: string;
  stderr: () => string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** What the service API helpers need of a RunningEmulator. */
  asEmulator: RunningEmulator;
}

async function startChild(dataDir: string): Promise<EmulatorChild> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI_ENTRY,
      '--mqtt-port',
      '0',
      '--wss-port',
      '0',
      '--retry-after',
      '0',
      '--data-dir',
      dataDir,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const lines = createInterface({ input: child.stdout });
  const [firstLine] = (await Promise.race([
    once(lines, 'line'),
    exited.then(() => {
      throw new Error(`the emulator exited before it was ready:\n${stderr}`);
    }),
  ])) as [string];
  const ready = JSON.parse(firstLine) as ReadyLine;
  const caPem = await readFile(ready.ca, 'utf8');
  const asEmulator = {
    wssPort: ready.wssPort,
    caCertPem: caPem,
    serviceConnectionString: ready.serviceConnectionString,
  } as RunningEmulator;
  return { child, ready, caPem, stderr: () => stderr, exited, asEmulator };
}

function deviceKey(registrationId: string): string {
  return createHmac('sha256', Buffer.from(DEMO_GROUP_KEY, 'base64')).update(registrationId).digest('base64');
}

test('registrations and enrollments acknowledged before a SIGKILL are there after the restart', async (t) => {
  const dataDir = await temporaryDirectory('dps-mqtt-crash-');
  t.after(() => dataDir.remove());
  /** Every acknowledged registration (registration id -> what the device was told), over all rounds. */
  const registered = new Map<string, { deviceId: string; assignedHub: string }>();
  /** Every enrollment whose creation the service API acknowledged with 200. */
  const enrolled = new Set<string>();
  let emulator = await startChild(dataDir.path);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const abort = new AbortController();
      // The kill comes after a random number of acknowledgements in this round: at a random moment of
      // the traffic, with requests of both kinds in flight.
      const killAfter = randomInt(5, 40);
      let acknowledged = 0;
      let killed = false;
      const target = emulator;
      const acknowledge = (): void => {
        acknowledged++;
        if (!killed && acknowledged >= killAfter) {
          killed = true;
          target.child.kill('SIGKILL');
          abort.abort();
        }
      };
      let sequence = 0;
      const worker = async (): Promise<void> => {
        while (!abort.signal.aborted) {
          const n = sequence++;
          if (n % 3 === 2) {
            const registrationId = `crash-enrollment-${round}-${n}`;
            const response = await serviceRequest(target.asEmulator, {
              method: 'PUT',
              path: `/enrollments/${registrationId}?${API}`,
              body: {
                registrationId,
                attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: KEY, secondaryKey: KEY } },
              },
            }).catch((error: unknown) => {
              if (!abort.signal.aborted) throw error; // before the kill every request must succeed
              return undefined;
            });
            if (response?.statusCode === 200) {
              enrolled.add(registrationId);
              acknowledge();
            }
          } else {
            const registrationId = `crash-device-${round}-${n}`;
            const result = await register(
              {
                idScope: target.ready.idScope,
                registrationId,
                security: { symmetricKey: deviceKey(registrationId) },
                endpoint: `127.0.0.1:${target.ready.mqttPort}`,
                transport: 'mqtt',
                trustedCa: target.caPem,
                timeoutMs: 20_000,
              },
              { signal: abort.signal },
            ).catch((error: unknown) => {
              if (!abort.signal.aborted) throw error;
              return undefined;
            });
            if (result !== undefined) {
              registered.set(registrationId, { deviceId: result.deviceId, assignedHub: result.assignedHub });
              acknowledge();
            }
          }
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      const [, signal] = await target.exited;
      assert.equal(signal, 'SIGKILL');

      // Restart on the same directory: the killed process's lock is taken over, the store reads back.
      emulator = await startChild(dataDir.path);
      assert.match(emulator.stderr(), /"event":"staleLockTakenOver"/);
      for (const [registrationId, expected] of registered) {
        const response = await serviceRequest(emulator.asEmulator, {
          method: 'GET',
          path: `/registrations/${registrationId}?${API}`,
        });
        assert.equal(response.statusCode, 200, `round ${round}: registration ${registrationId} was lost`);
        const state = response.json as { deviceId: string; assignedHub: string };
        assert.equal(state.deviceId, expected.deviceId);
        assert.equal(state.assignedHub, expected.assignedHub);
      }
      for (const registrationId of enrolled) {
        const response = await serviceRequest(emulator.asEmulator, {
          method: 'GET',
          path: `/enrollments/${registrationId}?${API}`,
        });
        assert.equal(response.statusCode, 200, `round ${round}: enrollment ${registrationId} was lost`);
      }
    }
    assert.ok(registered.size > 0 && enrolled.size > 0, 'some requests were acknowledged');

    // A clean stop folds the journals into readable snapshots.
    emulator.child.kill('SIGTERM');
    const [code] = await emulator.exited;
    assert.equal(code, 0, emulator.stderr());
    const snapshot = JSON.parse(await readFile(join(dataDir.path, 'registrations.json'), 'utf8')) as {
      registrations: Array<{ registrationId: string }>;
    };
    const stored = new Set(snapshot.registrations.map((record) => record.registrationId));
    for (const registrationId of registered.keys()) assert.ok(stored.has(registrationId), registrationId);
    assert.equal(await readFile(join(dataDir.path, 'registrations.journal'), 'utf8'), '');
  } finally {
    emulator.child.kill('SIGKILL');
  }
});
