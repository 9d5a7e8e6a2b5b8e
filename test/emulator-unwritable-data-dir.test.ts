// A data directory that becomes unwritable while the emulator runs: the failed writes are in
// storeErrors() after close(), and the CLI says so on stderr and exits 4, not only in a log line.
// (Tests run as root, where permissions do not stop a write: the directory is replaced by a file.)
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { EMULATOR_EXIT_CODES, runEmulatorCli } from '../src/emulator/cli.js';
import { DEMO_GROUP_KEY } from '../src/emulator/enrollments/config.js';
import { EmulatorDirectoryError } from '../src/emulator/index.js';
import { register } from '../src/index.js';
import { startTestEmulator, temporaryDirectory } from './helpers/emulator.js';

function deviceKey(registrationId: string): string {
  return createHmac('sha256', Buffer.from(DEMO_GROUP_KEY, 'base64')).update(registrationId).digest('base64');
}

async function registerDevice(
  target: { idScope: string; mqttPort: number; caPem: string },
  registrationId: string,
) {
  return register({
    idScope: target.idScope,
    registrationId,
    security: { symmetricKey: deviceKey(registrationId) },
    endpoint: `127.0.0.1:${target.mqttPort}`,
    transport: 'mqtt',
    trustedCa: target.caPem,
    timeoutMs: 20_000,
  });
}

/** The data directory gone and a file in its place: every later write in it fails with ENOTDIR. */
async function replaceWithFile(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
  await writeFile(path, 'not a directory any more\n');
}

test('library: writes that fail are in storeErrors() once close() resolves', async (t) => {
  const dataDir = await temporaryDirectory('dps-mqtt-unwritable-');
  t.after(() => rm(dataDir.path, { recursive: true, force: true }));
  const emulator = await startTestEmulator({ dataDir: dataDir.path });
  await registerDevice({ ...emulator, caPem: emulator.caCertPem }, 'unwritable-lib-1');
  assert.deepEqual(emulator.storeErrors(), []);

  await replaceWithFile(dataDir.path);
  await emulator.close();
  const errors = emulator.storeErrors();
  assert.ok(errors.length > 0);
  for (const error of errors) {
    assert.ok(error instanceof EmulatorDirectoryError, String(error));
    assert.equal(error.reason, 'ENOTDIR');
    assert.equal(error.directory, dataDir.path);
  }
});

test('CLI: a data directory that became unwritable is reported on stderr at exit, exit code 4', async (t) => {
  const dataDir = await temporaryDirectory('dps-mqtt-unwritable-');
  t.after(() => rm(dataDir.path, { recursive: true, force: true }));
  let stdoutText = '';
  let stderrText = '';
  const written = new EventEmitter();
  const stdout = {
    write(chunk: string) {
      stdoutText += chunk;
      written.emit('write');
      return true;
    },
  };
  const stderr = {
    write(chunk: string) {
      stderrText += chunk;
      return true;
    },
  };
  const signals = new EventEmitter();
  const exitCode = runEmulatorCli(
    ['--mqtt-port', '0', '--wss-port', '0', '--retry-after', '0', '--data-dir', dataDir.path, '--quiet'],
    { stdout, stderr, signals: signals as unknown as NodeJS.Process },
  );
  while (!stdoutText.includes('\n')) await once(written, 'write');
  const ready = JSON.parse(stdoutText.slice(0, stdoutText.indexOf('\n'))) as {
    idScope: string;
    mqttPort: number;
    ca: string;
  };
  const caPem = await readFile(ready.ca, 'utf8');
  await registerDevice({ ...ready, caPem }, 'unwritable-cli-1');

  await replaceWithFile(dataDir.path);
  signals.emit('SIGTERM', 'SIGTERM');
  const code = await exitCode;
  assert.equal(code, EMULATOR_EXIT_CODES.stateNotSaved);
  assert.equal(code, 4);
  assert.match(stderrText, /stopped, but \d+ writes? to the data directory failed/);
  assert.match(stderrText, /a part of the path is a file, not a directory \(ENOTDIR\)/);
  assert.ok(stderrText.includes(JSON.stringify(dataDir.path)), stderrText);
});

test('CLI: a clean stop with a writable data directory exits 0 and says nothing of the store', async (t) => {
  const dataDir = await temporaryDirectory('dps-mqtt-unwritable-');
  t.after(() => dataDir.remove());
  let stdoutText = '';
  let stderrText = '';
  const written = new EventEmitter();
  const signals = new EventEmitter();
  const exitCode = runEmulatorCli(
    ['--mqtt-port', '0', '--wss-port', '0', '--data-dir', dataDir.path, '--quiet'],
    {
      stdout: {
        write(chunk: string) {
          stdoutText += chunk;
          written.emit('write');
          return true;
        },
      },
      stderr: {
        write(chunk: string) {
          stderrText += chunk;
          return true;
        },
      },
      signals: signals as unknown as NodeJS.Process,
    },
  );
  while (!stdoutText.includes('\n')) await once(written, 'write');
  signals.emit('SIGTERM', 'SIGTERM');
  assert.equal(await exitCode, 0);
  assert.doesNotMatch(stderrText, /data directory failed/);
});
