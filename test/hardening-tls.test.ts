// Issue 6, TLS defaults: the server certificate is verified by default; turning that off takes the loudly
// named insecureSkipVerify and prints a DPS_MQTT_INSECURE_TLS warning; TLS 1.2 is the floor on both sides;
// a pinned CA replaces the trust store in the default trustMode "replace".
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createServer as createTlsServer,
  type TLSSocket,
  type TlsOptions,
  connect as tlsConnect,
} from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from '../src/client/register.js';
import type { ProvisioningClientOptions } from '../src/client/types.js';
import { DEMO_DEVICE_ID, DEMO_DEVICE_KEY } from '../src/emulator/enrollments/config.js';
import {
  type CertificateAndKey,
  createRootCa,
  createSelfSignedCertificate,
} from '../src/emulator/pki/pki.js';
import { TransportError } from '../src/protocol/errors.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';

const REGISTER_MODULE = pathToFileURL(
  fileURLToPath(new URL('../src/client/register.ts', import.meta.url)),
).href;

function device(port: number, transport: 'mqtt' | 'mqtt-ws'): ProvisioningClientOptions {
  return {
    idScope: '0ne00000000',
    registrationId: DEMO_DEVICE_ID,
    security: { symmetricKey: DEMO_DEVICE_KEY },
    endpoint: `127.0.0.1:${port}`,
    transport,
    proxy: false,
    timeoutMs: 10_000,
  };
}

/** A TLS server that only completes handshakes (enough to see whether the client accepts it). */
async function startTlsServer(options: TlsOptions): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<TLSSocket>();
  const server = createTlsServer(options, (socket) => {
    // Kept open until the client closes (destroying at once races the client's own handshake end).
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

async function refusal(promise: Promise<unknown>): Promise<TransportError> {
  const error = await promise.then(
    () => assert.fail('the client connected'),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof TransportError, `expected a TransportError, got ${String(error)}`);
  assert.equal(error.phase, 'tls');
  assert.equal(error.retryable, false, 'a certificate or version failure cannot heal by retrying');
  return error;
}

describe('TLS defaults', () => {
  let emulator: TestEmulator;
  let selfSigned: CertificateAndKey;
  let otherCa: CertificateAndKey;

  before(async () => {
    [emulator, selfSigned, otherCa] = await Promise.all([
      startTestEmulator(),
      createSelfSignedCertificate({
        commonName: 'localhost',
        usage: 'server',
        altNames: ['localhost', '127.0.0.1'],
      }),
      createRootCa({ commonName: 'dps-mqtt hardening other CA' }),
    ]);
  });
  after(() => emulator.close());

  test('the server certificate is verified by default: a self-signed server is refused', async () => {
    const server = await startTlsServer({ cert: selfSigned.certPem, key: selfSigned.keyPem });
    try {
      for (const transport of ['mqtt', 'mqtt-ws'] as const) {
        const error = await refusal(register(device(server.port, transport)));
        assert.match(error.message, /not trusted/);
      }
    } finally {
      await server.close();
    }
  });

  test('without the CA the emulator is refused; insecureSkipVerify registers and warns DPS_MQTT_INSECURE_TLS', async () => {
    await refusal(register(device(emulator.mqttPort, 'mqtt')));
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const result = await register({ ...device(emulator.wssPort, 'mqtt-ws'), insecureSkipVerify: true });
      assert.equal(result.registrationId, DEMO_DEVICE_ID);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    const warning = warnings.find((item) => (item as NodeJS.ErrnoException).code === 'DPS_MQTT_INSECURE_TLS');
    assert.ok(warning, 'no DPS_MQTT_INSECURE_TLS warning');
    assert.match(warning.message, /NOT verified/);
  });

  test('TLS 1.2 is the client floor: a TLS 1.1 server is refused', async () => {
    const server = await startTlsServer({
      cert: emulator.pki.server.certPem,
      key: emulator.pki.server.keyPem,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    try {
      // The server really speaks TLS 1.1: a permissive client gets it.
      const probe = tlsConnect({
        port: server.port,
        host: '127.0.0.1',
        ca: emulator.caCertPem,
        servername: 'localhost',
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      });
      await once(probe, 'secureConnect');
      assert.equal(probe.getProtocol(), 'TLSv1.1');
      probe.destroy();
      const error = await refusal(
        register({ ...device(server.port, 'mqtt'), trustedCa: emulator.caCertPem }),
      );
      assert.match(error.message, /share no TLS version/);
    } finally {
      await server.close();
    }
  });

  test('TLS 1.2 is the emulator floor: a TLS 1.1 client is refused on both listeners', async () => {
    for (const port of [emulator.mqttPort, emulator.wssPort]) {
      const socket = tlsConnect({
        port,
        host: '127.0.0.1',
        ca: emulator.caCertPem,
        servername: 'localhost',
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      });
      const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
      assert.match(String(error.code), /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS/);
      socket.destroy();
    }
  });

  test('trustMode "replace" (the default) trusts the pinned CA only; "extend" adds it to the bundled roots', async (t) => {
    // A child process whose own trust store holds the emulator CA (NODE_EXTRA_CA_CERTS): without a pinned
    // CA it registers; pinning another CA replaces that store, so the emulator is no longer trusted.
    const dir = await temporaryDirectory('dps-mqtt-trust-');
    t.after(() => dir.remove());
    const otherCaPath = join(dir.path, 'other-ca.pem');
    await writeFile(otherCaPath, otherCa.certPem);
    const script = join(dir.path, 'trust.mts');
    await writeFile(
      script,
      `const { register } = await import(${JSON.stringify(REGISTER_MODULE)});
const options = JSON.parse(process.env.DPS_OPTIONS);
const outcome = await register(options).then((r) => 'assigned ' + r.deviceId, (e) => e.code + ' ' + e.message);
process.stdout.write(outcome);\n`,
    );
    const run = async (extra: Partial<ProvisioningClientOptions>): Promise<string> => {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        env: {
          ...process.env,
          NODE_EXTRA_CA_CERTS: emulator.pki.caPath,
          DPS_OPTIONS: JSON.stringify({ ...device(emulator.mqttPort, 'mqtt'), ...extra }),
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      await once(child, 'exit');
      return output;
    };
    assert.match(await run({}), /^assigned /, 'the system store (with NODE_EXTRA_CA_CERTS) is the default');
    assert.match(await run({ trustedCa: otherCaPath }), /^ERR_TRANSPORT .*not trusted/, 'replace');
    assert.match(await run({ trustedCa: emulator.pki.caPath }), /^assigned /);
    assert.match(await run({ trustedCa: emulator.pki.caPath, trustMode: 'extend' }), /^assigned /);
    // extend = Node's bundled Mozilla roots + the pinned CA (Node 20 exposes no way to add NODE_EXTRA_CA_CERTS).
    assert.match(await run({ trustedCa: otherCaPath, trustMode: 'extend' }), /^ERR_TRANSPORT .*not trusted/);
  });
});
