// `dps-mqtt emulator` as a command: the ready line on stdout, clean stop on SIGTERM, usage errors.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runEmulatorCli } from '../src/emulator/cli.js';
import { DEMO_DEVICE_ID, DEMO_DEVICE_KEY } from '../src/emulator/enrollments/config.js';
import { RawMqttClient, sasConnectPacket, temporaryDirectory } from './helpers/emulator.js';

const CLI_ENTRY = fileURLToPath(new URL('../src/emulator/cli-entry.ts', import.meta.url));

interface ReadyLine {
  event: string;
  host: string;
  mqttPort: number;
  wssPort: number;
  idScope: string;
  ca: string;
}

function collector() {
  let text = '';
  const written = new EventEmitter();
  return {
    write(chunk: string) {
      text += chunk;
      written.emit('write');
      return true;
    },
    get text() {
      return text;
    },
    /** Resolves with the first complete line. */
    async firstLine(): Promise<string> {
      while (!text.includes('\n')) await once(written, 'write');
      return text.slice(0, text.indexOf('\n'));
    },
  };
}

test('dps-mqtt emulator, run as a child process, prints the ready line, serves devices and stops on SIGTERM', async () => {
  const dataDir = await temporaryDirectory();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CLI_ENTRY, '--mqtt-port', '0', '--wss-port', '0', '--data-dir', dataDir.path],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    const lines = createInterface({ input: child.stdout });
    const [firstLine] = (await Promise.race([
      once(lines, 'line'),
      exited.then(() => {
        throw new Error(`the emulator exited before it was ready:\n${stderr}`);
      }),
    ])) as [string];
    const ready = JSON.parse(firstLine) as ReadyLine;
    assert.equal(ready.event, 'ready');
    assert.equal(ready.host, '127.0.0.1');
    assert.equal(ready.idScope, '0ne00000000');
    assert.ok(ready.mqttPort > 0 && ready.wssPort > 0);
    assert.equal(ready.ca, `${dataDir.path}/ca.pem`);

    // The CA it names is the one to trust, and the demo device gets in with it.
    const ca = await readFile(ready.ca, 'utf8');
    const client = await RawMqttClient.connect({ port: ready.mqttPort, transport: 'mqtt', ca });
    client.send(
      sasConnectPacket({ idScope: ready.idScope, registrationId: DEMO_DEVICE_ID, key: DEMO_DEVICE_KEY }),
    );
    assert.equal((await client.expect('connack')).returnCode, 0);
    client.close();
    assert.match(stderr, /Trust its CA/);

    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /"event":"stopped"/);
  } finally {
    child.kill('SIGKILL');
    await dataDir.remove();
  }
});

test('runEmulatorCli stops on SIGINT and resolves 0', async () => {
  const dataDir = await temporaryDirectory();
  const stdout = collector();
  const stderr = collector();
  const signals = new EventEmitter();
  try {
    const running = runEmulatorCli(
      [
        '--mqtt-port',
        '0',
        '--wss-port',
        '0',
        '--pki-dir',
        dataDir.path,
        '--quiet',
        '--id-scope',
        '0ne0000C11A',
      ],
      { stdout, stderr, signals: signals as unknown as NodeJS.Process },
    );
    const ready = JSON.parse(await stdout.firstLine()) as ReadyLine;
    assert.equal(ready.idScope, '0ne0000C11A');
    signals.emit('SIGINT', 'SIGINT');
    assert.equal(await running, 0);
    assert.doesNotMatch(stderr.text, /"event"/, '--quiet prints no log lines');
  } finally {
    await dataDir.remove();
  }
});

test('an unknown flag is a usage error: exit code 2 and a hint', async () => {
  const stdout = collector();
  const stderr = collector();
  const code = await runEmulatorCli(['--no-such-flag'], {
    stdout,
    stderr,
    signals: new EventEmitter() as unknown as NodeJS.Process,
  });
  assert.equal(code, 2);
  assert.match(stderr.text, /--help/);
});

test('a malformed --device is a usage error naming the expected form', async () => {
  const stderr = collector();
  const code = await runEmulatorCli(['--device', 'no-key-here'], {
    stdout: collector(),
    stderr,
    signals: new EventEmitter() as unknown as NodeJS.Process,
  });
  assert.equal(code, 2);
  assert.match(stderr.text, /ID=KEY/);
});

test('--help prints the flags and exits 0', async () => {
  const stdout = collector();
  const code = await runEmulatorCli(['--help'], {
    stdout,
    stderr: collector(),
    signals: new EventEmitter() as unknown as NodeJS.Process,
  });
  assert.equal(code, 0);
  for (const flag of [
    '--host',
    '--mqtt-port',
    '--wss-port',
    '--id-scope',
    '--config',
    '--data-dir',
    '--retry-after',
  ]) {
    assert.ok(stdout.text.includes(flag), flag);
  }
});

test('a configuration error stops the start with exit code 1 and the field named', async () => {
  const dataDir = await temporaryDirectory();
  const stderr = collector();
  try {
    // A bad --device is a usage error (exit 2, issue 10): a configuration file's error is not.
    const configPath = `${dataDir.path}/enrollments.json`;
    await writeFile(
      configPath,
      JSON.stringify({
        individualEnrollments: [
          { registrationId: 'Bad_Id', attestation: { type: 'symmetricKey', primaryKey: DEMO_DEVICE_KEY } },
        ],
      }),
    );
    const code = await runEmulatorCli(
      ['--mqtt-port', '0', '--wss-port', '0', '--pki-dir', dataDir.path, '--config', configPath],
      { stdout: collector(), stderr, signals: new EventEmitter() as unknown as NodeJS.Process },
    );
    assert.equal(code, 1);
    assert.match(stderr.text, /individualEnrollments\[0\]\.registrationId/);
  } finally {
    await dataDir.remove();
  }
});
