// `dps-mqtt` as a child process against the emulator on loopback: exit codes, output and redaction.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEMO_DEVICE_ID, DEMO_DEVICE_KEY, DEMO_GROUP_KEY } from '../src/emulator/enrollments/config.js';
import { issueCertificate } from '../src/emulator/pki/pki.js';
import { computeSasSignature, deriveDeviceKey, sasResource, uriEncode } from '../src/protocol/sas.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';
import { type CliChild, type CliRun, runCli, startCli } from './support/cli-process.js';

const WRONG_KEY = 'd3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXkhISE=';

type Run = CliRun;

const start = (args: string[], env: Record<string, string> = {}): CliChild => startCli(args, { env });
const run = (args: string[], env: Record<string, string> = {}): Promise<Run> => runCli(args, { env });

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

let emulator: TestEmulator;
let slowEmulator: TestEmulator;

before(async () => {
  emulator = await startTestEmulator();
  // Never assigns within a test: for --timeout and Ctrl+C.
  slowEmulator = await startTestEmulator({ retryAfterSeconds: 1, assignmentDelayMs: 600_000 });
});

after(async () => {
  await emulator.close();
  await slowEmulator.close();
});

function wss(target: TestEmulator = emulator): string[] {
  return [
    '--endpoint',
    `127.0.0.1:${target.wssPort}`,
    '--ca',
    target.pki.caPath,
    '--id-scope',
    target.idScope,
  ];
}

describe('dps-mqtt register against the emulator', () => {
  test('--json with a group key exits 0 and prints one JSON object with the connection string', async () => {
    const { code, stdout, stderr } = await run([
      'register',
      ...wss(),
      '--registration-id',
      'cli-e2e-group',
      '--group-key',
      DEMO_GROUP_KEY,
      '--json',
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(lines(stdout).length, 1);
    const result = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(result.status, 'assigned');
    assert.equal(result.registrationId, 'cli-e2e-group');
    assert.equal(result.deviceId, 'cli-e2e-group');
    assert.equal(result.attestation, 'symmetricKey');
    const deviceKey = deriveDeviceKey(DEMO_GROUP_KEY, 'cli-e2e-group');
    assert.equal(
      result.connectionString,
      `HostName=${String(result.assignedHub)};DeviceId=cli-e2e-group;SharedAccessKey=${deviceKey}`,
    );
    assert.ok(emulator.registrations().some((record) => record.registrationId === 'cli-e2e-group'));
  });

  test('MQTT over TLS with an individual key from DPS_SYMMETRIC_KEY prints the assignment for people', async () => {
    const { code, stdout, stderr } = await run(
      [
        'register',
        '--transport',
        'mqtt',
        '--endpoint',
        `127.0.0.1:${emulator.mqttPort}`,
        '--ca',
        emulator.pki.caPath,
        '--registration-id',
        DEMO_DEVICE_ID,
      ],
      { DPS_ID_SCOPE: emulator.idScope, DPS_SYMMETRIC_KEY: DEMO_DEVICE_KEY },
    );
    assert.equal(code, 0, stderr);
    assert.match(stdout, new RegExp(`^Device ${DEMO_DEVICE_ID} is assigned to \\S+`));
    assert.match(stdout, /HostName=\S+;DeviceId=demo-device;SharedAccessKey=/);
  });

  test('an X.509 device (--cert, --key) registers with its CN and gets an x509 connection string', async () => {
    const dir = await temporaryDirectory();
    try {
      const device = await issueCertificate({
        issuer: emulator.pki.ca,
        commonName: 'cli-x509-device',
        usage: 'client',
      });
      await writeFile(join(dir.path, 'device.pem'), device.certPem);
      await writeFile(join(dir.path, 'device.key'), device.keyPem);
      const { code, stdout, stderr } = await run([
        'register',
        ...wss(),
        '--cert',
        join(dir.path, 'device.pem'),
        '--key',
        join(dir.path, 'device.key'),
        '--json',
      ]);
      assert.equal(code, 0, stderr);
      const result = JSON.parse(stdout) as Record<string, unknown>;
      assert.equal(result.registrationId, 'cli-x509-device');
      assert.equal(result.attestation, 'x509');
      assert.match(String(result.connectionString), /;DeviceId=cli-x509-device;x509=true$/);
    } finally {
      await dir.remove();
    }
  });

  test('a wrong key exits 3 with one error line, and --json prints the error object', async () => {
    const { code, stdout, stderr } = await run([
      'register',
      ...wss(),
      '--registration-id',
      DEMO_DEVICE_ID,
      '--symmetric-key',
      WRONG_KEY,
      '--json',
    ]);
    assert.equal(code, 3, stderr);
    assert.equal(lines(stderr).length, 1, stderr);
    assert.match(stderr, /^dps-mqtt register: error: /);
    const { error } = JSON.parse(stdout) as { error: { code: string; phase: string; message: string } };
    assert.ok(['ERR_AUTHENTICATION', 'ERR_SERVICE'].includes(error.code), error.code);
    assert.ok(!stdout.includes(WRONG_KEY) && !stderr.includes(WRONG_KEY));
  });

  test('bad input exits 2 before any network I/O', async () => {
    let connections = 0;
    const server: Server = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    try {
      const { code, stdout, stderr } = await run([
        'register',
        '--endpoint',
        `127.0.0.1:${address.port}`,
        '--id-scope',
        '0ne00000000',
        '--registration-id',
        'Not_Valid',
        '--symmetric-key',
        DEMO_DEVICE_KEY,
      ]);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.match(stderr, /--registration-id/);
      assert.equal(connections, 0);
    } finally {
      server.close();
    }
  });

  test('an unknown flag exits 2 naming the flag', async () => {
    const { code, stderr } = await run(['register', '--id-scop', 'x']);
    assert.equal(code, 2);
    assert.match(stderr, /unknown option --id-scop/);
  });

  test('--trace prints the packets on stderr without any key or SAS signature', async () => {
    const registrationId = 'cli-e2e-trace';
    const deviceKey = deriveDeviceKey(DEMO_GROUP_KEY, registrationId);
    const startedAt = Math.floor(Date.now() / 1000);
    const { code, stderr } = await run([
      'register',
      ...wss(),
      '--registration-id',
      registrationId,
      '--group-key',
      DEMO_GROUP_KEY,
      '--trace',
      '--json',
    ]);
    const endedAt = Math.floor(Date.now() / 1000);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /CONNECT/);
    assert.match(stderr, /PUBLISH/);
    const forbidden = [DEMO_GROUP_KEY, deviceKey];
    // The SAS token expires an hour after it is made: every signature it could carry.
    const resource = uriEncode(sasResource(emulator.idScope, registrationId));
    for (let expiry = startedAt + 3590; expiry <= endedAt + 3610; expiry += 1) {
      forbidden.push(computeSasSignature(deviceKey, resource, expiry));
    }
    for (const secret of forbidden) {
      assert.ok(!stderr.includes(secret), `stderr contains a secret: ${secret}`);
      assert.ok(!stderr.includes(encodeURIComponent(secret)), `stderr contains a secret: ${secret}`);
    }
  });

  test('a server certificate that is not trusted exits 6 (TLS failure)', async () => {
    const { code, stderr } = await run([
      'register',
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--id-scope',
      emulator.idScope,
      '--registration-id',
      DEMO_DEVICE_ID,
      '--symmetric-key',
      DEMO_DEVICE_KEY,
      '--timeout',
      '10',
    ]);
    assert.equal(code, 6, stderr);
    assert.match(stderr, /ERR_TRANSPORT during tls.*--ca FILE/);
  });

  test('--timeout passing exits 5', async () => {
    const { code, stderr } = await run([
      'register',
      ...wss(slowEmulator),
      '--registration-id',
      'cli-e2e-timeout',
      '--group-key',
      DEMO_GROUP_KEY,
      '--timeout',
      '0.5',
    ]);
    assert.equal(code, 5, stderr);
    assert.match(stderr, /ERR_TIMEOUT/);
  });

  test('Ctrl+C (SIGINT) aborts the registration and exits 130', async () => {
    const child = start([
      'register',
      ...wss(slowEmulator),
      '--registration-id',
      'cli-e2e-sigint',
      '--group-key',
      DEMO_GROUP_KEY,
      '--trace',
    ]);
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr?.on('data', (chunk: string) => {
        seen += chunk;
        // The register request is out: the registration is in flight.
        if (/iotdps-register/.test(seen)) resolve();
      });
      void child.result.then((result) => reject(new Error(`exited early: ${JSON.stringify(result)}`)));
    });
    child.kill('SIGINT');
    const { code, stderr } = await child.result;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted/);
  });
});

describe('dps-mqtt derive-key, demo and help', () => {
  test('derive-key prints the protocol.md vector', async () => {
    const { code, stdout } = await run([
      'derive-key',
      '--group-key',
      'Z3JvdXAtMS10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2g=',
      '--registration-id',
      'sensor-042',
    ]);
    assert.equal(code, 0);
    assert.equal(stdout, '5sPw/DvFsaQGjgFU+MmYeg3Lw+ObvPomtQGeFrL4yjs=\n');
  });

  test('derive-key with a missing registration id exits 2', async () => {
    const { code, stderr } = await run(['derive-key', '--group-key', DEMO_GROUP_KEY]);
    assert.equal(code, 2);
    assert.match(stderr, /--registration-id is required/);
  });

  test('demo starts the emulator, registers over MQTT over WebSocket, prints the hub and exits 0', async () => {
    const pkiDir = await temporaryDirectory();
    try {
      const { code, stdout, stderr } = await run(['demo', '--pki-dir', pkiDir.path]);
      assert.equal(code, 0, stderr);
      assert.match(stdout, /Device demo-sensor-001 is assigned to emulated-hub\.azure-devices\.net/);
      assert.match(
        stdout,
        /HostName=emulated-hub\.azure-devices\.net;DeviceId=demo-sensor-001;SharedAccessKey=/,
      );
      assert.match(stderr, /connecting to 127\.0\.0\.1:\d+ over MQTT over WebSocket/);
    } finally {
      await pkiDir.remove();
    }
  });

  for (const command of ['', 'register ', 'derive-key ', 'emulator ', 'demo ']) {
    test(`dps-mqtt ${command}--help exits 0 with a usage`, async () => {
      const { code, stdout } = await run([...command.split(' ').filter(Boolean), '--help']);
      assert.equal(code, 0);
      assert.match(stdout, /^Usage: dps-mqtt/);
    });
  }

  test('an unknown command exits 2', async () => {
    const { code, stderr } = await run(['regster']);
    assert.equal(code, 2);
    assert.match(stderr, /unknown command "regster"/);
  });
});
