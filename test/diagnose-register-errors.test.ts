// What `register` learned from diagnose: a plain HTTP endpoint "does not speak TLS", the wrong transport
// for a port is named, the CLI's TLS hint names its flags, aborts and timeouts carry a phase (and an
// AbortSignal.timeout() is a timeout with its reason kept), and every failure on the CLI ends with the
// `npx dps-mqtt diagnose ...` line for the same flags, secrets as placeholders.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { diagnoseCommandFor } from '../src/cli/diagnose-suggestion.js';
import { register } from '../src/client/register.js';
import { createRootCa, DEMO_GROUP_KEY } from '../src/emulator/index.js';
import { AbortError, TimeoutError, TransportError } from '../src/protocol/errors.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';
import { assertNoSecrets, runRegisterCli, writeTemp } from './support/diagnose-cli.js';
import { closeServer, listenOnLoopback, rejectionOf, startSilentServer } from './support/net.js';

describe('register: errors that say what happened and where', () => {
  let emulator: TestEmulator;
  let slowEmulator: TestEmulator;
  let dir: { path: string; remove(): Promise<void> };
  let caPath: string;
  let otherCaPath: string;

  before(async () => {
    dir = await temporaryDirectory('dps-mqtt-register-errors-');
    const otherCa = await createRootCa({ commonName: 'some other CA' });
    [emulator, slowEmulator] = await Promise.all([
      startTestEmulator(),
      startTestEmulator({ pollsBeforeAssignment: 1000, retryAfterSeconds: 1 }),
    ]);
    caPath = await writeTemp(dir.path, 'ca.pem', emulator.caCertPem);
    otherCaPath = await writeTemp(dir.path, 'other-ca.pem', otherCa.certPem);
  });
  after(async () => {
    await Promise.all([emulator.close(), slowEmulator.close()]);
    await dir.remove();
  });

  const library = (endpoint: string, transport: 'mqtt' | 'mqtt-ws') => ({
    idScope: emulator.idScope,
    registrationId: 'errors-device',
    security: { groupKey: DEMO_GROUP_KEY },
    endpoint,
    transport,
    trustedCa: emulator.caCertPem,
    timeoutMs: 20_000,
  });

  test('a plain HTTP endpoint: "does not speak TLS" on one line, a hint about the port, not --ca (exit 6)', async () => {
    const server = http.createServer((_request, response) => response.end('ok'));
    const port = await listenOnLoopback(server);
    try {
      const run = await runRegisterCli([
        '--endpoint',
        `127.0.0.1:${port}`,
        '--id-scope',
        emulator.idScope,
        '--registration-id',
        'errors-device',
        '--group-key',
        DEMO_GROUP_KEY,
        '--timeout',
        '20',
      ]);
      assert.equal(run.code, 6, run.stderr);
      const [errorLine, ...rest] = run.stderr.trimEnd().split('\n');
      assert.deepEqual(rest, [], 'one error line');
      assert.match(errorLine ?? '', /the endpoint 127\.0\.0\.1:\d+ does not speak TLS/);
      assert.match(
        errorLine ?? '',
        /hint: the endpoint does not speak TLS: check the host and port in --endpoint/,
      );
      assert.doesNotMatch(errorLine ?? '', /--ca|ssl3_get_record/);
      assert.match(
        errorLine ?? '',
        /; run "npx dps-mqtt diagnose --endpoint 127\.0\.0\.1:\d+ --id-scope 0ne\w+ --registration-id errors-device --group-key '<group-key>'" for details$/,
      );
      assertNoSecrets(run.stderr, [DEMO_GROUP_KEY], 'errors-device');
    } finally {
      await closeServer(server);
    }
  });

  test('transport mqtt aimed at the WebSocket port: the port probably speaks the other transport, not retried', async () => {
    const error = await rejectionOf(register(library(`127.0.0.1:${emulator.wssPort}`, 'mqtt')));
    assert.ok(error instanceof TransportError, String(error));
    assert.equal(error.reason, 'wrong-transport');
    assert.equal(error.phase, 'connack');
    assert.match(error.message, /answered in HTTP, not MQTT: the port probably speaks MQTT over WebSocket/);
    assert.doesNotMatch(error.message, /PUBACK/);
  });

  test('transport mqtt-ws aimed at the MQTT port: the port probably speaks MQTT over TLS, not retried', async () => {
    const error = await rejectionOf(register(library(`127.0.0.1:${emulator.mqttPort}`, 'mqtt-ws')));
    assert.ok(error instanceof TransportError, String(error));
    assert.equal(error.reason, 'wrong-transport');
    assert.equal(error.phase, 'websocket');
    assert.match(error.message, /the port probably speaks MQTT over TLS \(8883\), the other transport/);
  });

  test('on the CLI, the same: --transport named in the hint (exit 6)', async () => {
    const run = await runRegisterCli([
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--transport',
      'mqtt',
      '--ca',
      caPath,
      '--id-scope',
      emulator.idScope,
      '--registration-id',
      'errors-device',
      '--group-key',
      DEMO_GROUP_KEY,
    ]);
    assert.equal(run.code, 6, run.stderr);
    assert.match(run.stderr, /hint: the port probably speaks the other transport: switch --transport/);
    assert.match(
      run.stderr,
      /run "npx dps-mqtt diagnose --endpoint 127\.0\.0\.1:\d+ --transport mqtt .*--ca /,
    );
  });

  test('a wrong --ca: the message and hint name CLI flags, not library options (exit 6)', async () => {
    const run = await runRegisterCli([
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--ca',
      otherCaPath,
      '--id-scope',
      emulator.idScope,
      '--registration-id',
      'errors-device',
      '--group-key',
      DEMO_GROUP_KEY,
    ]);
    assert.equal(run.code, 6, run.stderr);
    assert.match(run.stderr, /is not trusted/);
    assert.match(run.stderr, /hint: pass the CA that issued the server certificate with --ca FILE/);
    assert.doesNotMatch(run.stderr, /trustedCa|trustMode/);
  });

  test('a refusal names diagnose with the same flags, secrets as placeholders, also in --json (exit 3)', async () => {
    const key = randomBytes(32).toString('base64');
    const run = await runRegisterCli([
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--ca',
      caPath,
      '--id-scope',
      emulator.idScope,
      '--registration-id',
      'errors-refused',
      '--symmetric-key',
      key,
      '--json',
    ]);
    assert.equal(run.code, 3, run.stderr);
    const expected = `npx dps-mqtt diagnose --endpoint 127.0.0.1:${emulator.wssPort} --id-scope ${emulator.idScope} --registration-id errors-refused --symmetric-key '<symmetric-key>' --ca ${caPath}`;
    assert.ok(run.stderr.includes(`run "${expected}" for details`), run.stderr);
    const json = JSON.parse(run.stdout) as { error: { diagnose?: string; code: string } };
    assert.equal(json.error.code, 'ERR_AUTHENTICATION');
    assert.equal(json.error.diagnose, expected);
    assertNoSecrets(run.stdout + run.stderr, [key], 'errors-refused');
  });

  test('the diagnose line replaces every secret: keys, passphrase and the proxy password', () => {
    const line = diagnoseCommandFor([
      '--group-key',
      'R3JvdXBLZXk=',
      '--registration-id',
      'd',
      '--proxy',
      'http://user:pa55@proxy:3128',
      '--cert',
      'c.pem',
      '--key',
      'k.pem',
      '--passphrase',
      'hunter2',
      '--json',
      '--payload',
      '{"a":1}',
    ]);
    assert.equal(
      line,
      "npx dps-mqtt diagnose --registration-id d --group-key '<group-key>' --cert c.pem --key k.pem --passphrase '<passphrase>' --proxy 'http://user:<password>@proxy:3128'",
    );
  });

  test('an abort carries the phase it happened in, and the signal reason as cause', async () => {
    const controller = new AbortController();
    const before = await rejectionOf(
      register(library(`127.0.0.1:${emulator.wssPort}`, 'mqtt-ws'), { signal: AbortSignal.abort('stop') }),
    );
    assert.ok(before instanceof AbortError && before.phase === 'input', String(before));
    const during = await rejectionOf(
      register(
        {
          ...library(`127.0.0.1:${slowEmulator.wssPort}`, 'mqtt-ws'),
          trustedCa: slowEmulator.caCertPem,
          onProgress: (event) => event.type === 'assigning' && controller.abort('enough'),
        },
        { signal: controller.signal },
      ),
    );
    assert.ok(during instanceof AbortError, String(during));
    assert.equal(during.phase, 'poll');
    assert.equal(during.cause, 'enough');
    assert.match(during.message, /aborted by the caller during the poll phase/);
  });

  test('an AbortSignal.timeout() is a TimeoutError with a phase, its reason kept as the cause', async () => {
    const silent = await startSilentServer();
    try {
      const error = await rejectionOf(
        register(library(`127.0.0.1:${silent.port}`, 'mqtt'), { signal: AbortSignal.timeout(100) }),
      );
      assert.ok(error instanceof TimeoutError, String(error));
      assert.equal(error.code, 'ERR_TIMEOUT');
      assert.equal(error.phase, 'tcp');
      assert.ok(error.cause instanceof Error && error.cause.name === 'TimeoutError', String(error.cause));
      assert.match(error.message, /the caller's AbortSignal timed out during the tcp phase/);
    } finally {
      await closeServer(silent.server);
    }
  });
});
