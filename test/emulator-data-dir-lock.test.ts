// One emulator per data directory: a second one is refused and told which process holds it (library
// error and CLI exit code 3); a lock left by a process that is gone is taken over, and the log says so;
// close() releases it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EMULATOR_EXIT_CODES, runEmulatorCli } from '../src/emulator/cli.js';
import { EmulatorDataDirInUseError, type EmulatorLogEntry, LOCK_FILE } from '../src/emulator/index.js';
import { startTestEmulator, temporaryDirectory } from './helpers/emulator.js';

function textSink() {
  let text = '';
  return {
    write(chunk: string) {
      text += chunk;
      return true;
    },
    get text() {
      return text;
    },
  };
}

test('a second emulator on the same data directory is refused with the holder named; close() releases it', async (t) => {
  const dataDir = await temporaryDirectory('dps-mqtt-lock-');
  t.after(() => dataDir.remove());
  const first = await startTestEmulator({ dataDir: dataDir.path });
  let firstClosed = false;
  t.after(() => (firstClosed ? undefined : first.close()));

  const lock = JSON.parse(await readFile(join(dataDir.path, LOCK_FILE), 'utf8'));
  assert.equal(lock.pid, process.pid);
  assert.equal(lock.host, hostname());
  assert.ok(!Number.isNaN(Date.parse(lock.startedAt)));

  await assert.rejects(startTestEmulator({ dataDir: dataDir.path }), (error: unknown) => {
    assert.ok(error instanceof EmulatorDataDirInUseError);
    assert.equal(error.owner.pid, process.pid);
    assert.match(error.message, new RegExp(`in use by another emulator \\(process ${process.pid}, started `));
    return true;
  });

  // The CLI: exit code 3, the holder's pid on stderr, nothing on stdout.
  const stdout = textSink();
  const stderr = textSink();
  const code = await runEmulatorCli(
    ['--mqtt-port', '0', '--wss-port', '0', '--data-dir', dataDir.path, '--quiet'],
    { stdout, stderr, signals: process },
  );
  assert.equal(code, EMULATOR_EXIT_CODES.dataDirInUse);
  assert.equal(code, 3);
  assert.match(stderr.text, new RegExp(`process ${process.pid}`));
  assert.equal(stdout.text, '');

  // The refused starts did not disturb the holder's lock; closing releases it, and another may start.
  assert.equal(JSON.parse(await readFile(join(dataDir.path, LOCK_FILE), 'utf8')).startedAt, lock.startedAt);
  await first.close();
  firstClosed = true;
  const second = await startTestEmulator({ dataDir: dataDir.path });
  await second.close();
});

test('a lock left by a process that is gone is taken over, and the log says whose it was', async (t) => {
  const dataDir = await temporaryDirectory('dps-mqtt-lock-');
  t.after(() => dataDir.remove());
  // A real pid that no longer runs: a process that has exited.
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const deadPid = child.pid!;
  await once(child, 'exit');
  const stale = { pid: deadPid, host: hostname(), startedAt: '2020-01-01T00:00:00.000Z' };
  await writeFile(join(dataDir.path, LOCK_FILE), JSON.stringify(stale));

  const log: EmulatorLogEntry[] = [];
  const emulator = await startTestEmulator({ dataDir: dataDir.path, logger: (entry) => log.push(entry) });
  try {
    const takeover = log.find((entry) => entry.event === 'staleLockTakenOver');
    assert.ok(takeover, JSON.stringify(log));
    assert.equal(takeover.previousPid, deadPid);
    assert.equal(takeover.previousStartedAt, stale.startedAt);
    const lock = JSON.parse(await readFile(join(dataDir.path, LOCK_FILE), 'utf8'));
    assert.equal(lock.pid, process.pid);
  } finally {
    await emulator.close();
  }
});

test('a lock held on another host is not taken over (its pid cannot be checked from here)', async (t) => {
  const dataDir = await temporaryDirectory('dps-mqtt-lock-');
  t.after(() => dataDir.remove());
  const remote = { pid: 1, host: `not-${hostname()}`, startedAt: '2020-01-01T00:00:00.000Z' };
  await writeFile(join(dataDir.path, LOCK_FILE), JSON.stringify(remote));
  await assert.rejects(startTestEmulator({ dataDir: dataDir.path }), (error: unknown) => {
    assert.ok(error instanceof EmulatorDataDirInUseError);
    assert.match(error.message, new RegExp(`process 1 on host ${remote.host}`));
    assert.match(error.message, /delete .*emulator\.lock/);
    return true;
  });
});
