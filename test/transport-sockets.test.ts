// The two providers over real sockets on loopback: MQTT over WSS and over TLS against the emulator,
// through a real HTTP CONNECT proxy (npm `proxy`), with real certificates.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createRootCa,
  DEMO_GROUP_KEY,
  type EmulatorLogEntry,
  issueCertificate,
} from '../src/emulator/index.js';
import { ProxyError, TransportError } from '../src/protocol/errors.js';
import { createSasToken, deriveDeviceKey } from '../src/protocol/sas.js';
import { commonMqtt, type MqttTransportHandle } from '../src/transport/common.js';
import { mqttProtocol } from '../src/transport/mqtt-tls.js';
import { mqttWsProtocol } from '../src/transport/mqtt-ws.js';
import type { HsmType, TransportProvider, TransportStatus } from '../src/transport/types.js';
import { startTestEmulator, type TestEmulator } from './helpers/emulator.js';
import { driveRegistration } from './support/drive.js';
import { freePort, startConnectProxy } from './support/net.js';

let emulator: TestEmulator;
const log: EmulatorLogEntry[] = [];

before(async () => {
  emulator = await startTestEmulator({ logger: (entry) => log.push(entry) });
});
after(() => emulator.close());

const ws = mqttWsProtocol();
const tls = mqttProtocol();

function challengeFor(registrationId: string) {
  const key = deriveDeviceKey(DEMO_GROUP_KEY, registrationId);
  return () =>
    createSasToken({
      idScope: emulator.idScope,
      registrationId,
      key,
      expiresAtSeconds: Math.floor(Date.now() / 1000) + 600,
    });
}

function createHandle(
  provider: TransportProvider<MqttTransportHandle>,
  registrationId: string,
  options: { port?: number; hsmType?: HsmType; host?: string } = {},
): MqttTransportHandle {
  const port = options.port ?? (provider === tls ? emulator.mqttPort : emulator.wssPort);
  const handle = provider.create({
    uri: `${options.host ?? 'localhost'}:${port}`,
    hsmType: options.hsmType ?? 'symmetricKey',
    idScope: emulator.idScope,
    registrationId,
    apiVersion: '2019-03-31',
  });
  provider.setTrustedCert(handle, emulator.caCertPem);
  return handle;
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > 5000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('mqttWsProtocol: the provider of the spec over a real WebSocket', () => {
  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_001, PROV_TRANSPORT_MQTT_WS_CLIENT_07_003, PROV_TRANSPORT_MQTT_WS_CLIENT_07_005, PROV_TRANSPORT_MQTT_WS_CLIENT_07_006, PROV_TRANSPORT_MQTT_WS_CLIENT_07_007, PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: create, open, register_device, get_operation_status and dowork carry a registration over WSS', async () => {
    const registrationId = 'ws-basic-1';
    const handle = createHandle(ws, registrationId);
    const statuses: TransportStatus[] = [];
    try {
      const outcome = await driveRegistration(
        ws,
        handle,
        { challenge: challengeFor(registrationId) },
        statuses,
      );
      assert.equal(outcome.kind, 'assigned', outcome.kind === 'error' ? outcome.error.message : '');
      assert.equal(outcome.kind === 'assigned' && outcome.deviceId, registrationId);
      assert.deepEqual(
        statuses.map((status) => status.status),
        ['connecting', 'connected', 'authenticated', 'registering', 'assigning'],
      );
      const connections = log.filter(
        (entry) => entry.event === 'connection' && entry.registrationId === undefined,
      );
      assert.ok(connections.length > 0);
      const connack = log.find(
        (entry) => entry.event === 'connack' && entry.registrationId === registrationId,
      );
      assert.equal(connack?.transport, 'wss', 'the registration came in over the WebSocket listener');
    } finally {
      ws.destroy(handle);
    }
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_004: close sends DISCONNECT and closes the WebSocket', async () => {
    const registrationId = 'ws-close-1';
    const handle = createHandle(ws, registrationId);
    const outcome = await driveRegistration(ws, handle, { challenge: challengeFor(registrationId) });
    assert.equal(outcome.kind, 'assigned');
    assert.ok(emulator.connectionCount() >= 1);
    ws.close(handle);
    await waitFor(
      () => log.some((entry) => entry.event === 'close' && entry.registrationId === registrationId),
      'the emulator to see the close',
    );
    ws.destroy(handle);
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_002: destroy tears down a live connection and the handle is spent', async () => {
    const registrationId = 'ws-destroy-1';
    const handle = createHandle(ws, registrationId);
    const connected = new Promise<void>((resolve) => {
      ws.open(handle, {
        onRegistrationData: () => {},
        onStatus: (status) => status.status === 'authenticated' && resolve(),
      });
    });
    ws.registerDevice(handle, { challenge: challengeFor(registrationId) });
    ws.doWork(handle);
    await connected;
    ws.destroy(handle);
    await waitFor(
      () => log.some((entry) => entry.event === 'close' && entry.registrationId === registrationId),
      'the emulator to see the close',
    );
    assert.throws(() => ws.doWork(handle) ?? ws.setTrace(handle, true));
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_008: set_trace prints the packets of a live WebSocket session, redacted', async () => {
    const registrationId = 'ws-trace-1';
    const handle = createHandle(ws, registrationId);
    const lines: string[] = [];
    ws.setOption(handle, 'traceSink', (line) => lines.push(line));
    ws.setTrace(handle, true);
    try {
      const challenge = challengeFor(registrationId);
      const outcome = await driveRegistration(ws, handle, { challenge });
      assert.equal(outcome.kind, 'assigned');
      const text = lines.join('\n');
      assert.match(text, /-> CONNECT/);
      assert.match(text, /<- PUBLISH .*res\/200/);
      const signature = decodeURIComponent(/sig=([^&]+)/.exec(challenge())![1]!);
      assert.equal(text.includes(signature.slice(0, 20)), false, 'no SAS signature in the trace');
    } finally {
      ws.destroy(handle);
    }
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_009: x509_cert presents the device certificate and X.509 registration succeeds', async () => {
    const registrationId = 'ws-x509-1';
    const device = await issueCertificate({
      issuer: emulator.pki.ca,
      commonName: registrationId,
      usage: 'client',
    });
    const handle = createHandle(ws, registrationId, { hsmType: 'x509' });
    ws.x509Cert(handle, device.certPem, device.keyPem);
    try {
      const outcome = await driveRegistration(ws, handle, {});
      assert.equal(outcome.kind, 'assigned', outcome.kind === 'error' ? outcome.error.message : '');
      assert.ok(outcome.kind === 'assigned' && outcome.registrationState.x509 !== undefined);
    } finally {
      ws.destroy(handle);
    }
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_010, PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: a wrong trusted CA fails TLS once, reported as not retryable', async () => {
    const otherCa = await createRootCa({ commonName: 'not the emulator' });
    const registrationId = 'ws-wrong-ca-1';
    const handle = createHandle(ws, registrationId);
    ws.setTrustedCert(handle, otherCa.certPem);
    try {
      const outcome = await driveRegistration(ws, handle, { challenge: challengeFor(registrationId) });
      assert.ok(outcome.kind === 'error' && outcome.error instanceof TransportError, 'a TransportError');
      assert.equal(outcome.error.phase, 'tls');
      assert.equal((outcome.error as TransportError).retryable, false);
    } finally {
      ws.destroy(handle);
    }
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: nothing listening is a typed error, not a hang', async () => {
    const port = await freePort();
    const handle = createHandle(ws, 'ws-refused-1', { port });
    try {
      const outcome = await driveRegistration(ws, handle, { challenge: challengeFor('ws-refused-1') });
      assert.ok(outcome.kind === 'error' && outcome.error instanceof TransportError);
      assert.equal(outcome.error.phase, 'tcp');
    } finally {
      ws.destroy(handle);
    }
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_011, PROV_TRANSPORT_MQTT_WS_CLIENT_07_012: set_proxy tunnels the WebSocket through a real CONNECT proxy with Basic auth', async () => {
    const expected = `Basic ${Buffer.from('dev-user:pr0xy-Secret').toString('base64')}`;
    const proxy = await startConnectProxy({
      authenticate: (request) => request.headers['proxy-authorization'] === expected,
    });
    const registrationId = 'ws-proxy-1';
    const handle = createHandle(ws, registrationId);
    ws.setProxy(handle, {
      host: '127.0.0.1',
      port: proxy.port,
      username: 'dev-user',
      password: 'pr0xy-Secret',
    });
    try {
      const outcome = await driveRegistration(ws, handle, { challenge: challengeFor(registrationId) });
      assert.equal(outcome.kind, 'assigned', outcome.kind === 'error' ? outcome.error.message : '');
      assert.deepEqual(proxy.targets, [`localhost:${emulator.wssPort}`]);
    } finally {
      ws.destroy(handle);
      await proxy.close();
    }
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_012: a proxy without auth works too', async () => {
    const proxy = await startConnectProxy();
    const registrationId = 'ws-proxy-2';
    const handle = createHandle(ws, registrationId);
    ws.setProxy(handle, { host: '127.0.0.1', port: proxy.port });
    try {
      const outcome = await driveRegistration(ws, handle, { challenge: challengeFor(registrationId) });
      assert.equal(outcome.kind, 'assigned');
      assert.equal(proxy.targets.length, 1);
    } finally {
      ws.destroy(handle);
      await proxy.close();
    }
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: wrong proxy credentials are a ProxyError naming the answer, without the password', async () => {
    const proxy = await startConnectProxy({ authenticate: () => false });
    const handle = createHandle(ws, 'ws-proxy-3');
    ws.setProxy(handle, {
      host: '127.0.0.1',
      port: proxy.port,
      username: 'dev-user',
      password: 'wr0ng-Secret',
    });
    try {
      const outcome = await driveRegistration(ws, handle, { challenge: challengeFor('ws-proxy-3') });
      assert.ok(outcome.kind === 'error' && outcome.error instanceof ProxyError);
      assert.equal(outcome.error.statusCode, 407);
      assert.match(outcome.error.message, /407/);
      assert.equal(outcome.error.message.includes('wr0ng-Secret'), false);
    } finally {
      ws.destroy(handle);
      await proxy.close();
    }
  });
});

describe('mqttProtocol: the TLS sibling on the same common transport', () => {
  test('registers over MQTT/TLS with the same operations', async () => {
    const registrationId = 'tls-basic-1';
    const handle = createHandle(tls, registrationId);
    try {
      const outcome = await driveRegistration(tls, handle, { challenge: challengeFor(registrationId) });
      assert.equal(outcome.kind, 'assigned', outcome.kind === 'error' ? outcome.error.message : '');
      const connack = log.find(
        (entry) => entry.event === 'connack' && entry.registrationId === registrationId,
      );
      assert.equal(connack?.transport, 'mqtt');
    } finally {
      tls.destroy(handle);
    }
  });

  test('tunnels MQTT/TLS through a CONNECT proxy as well', async () => {
    const proxy = await startConnectProxy();
    const registrationId = 'tls-proxy-1';
    const handle = createHandle(tls, registrationId);
    tls.setProxy(handle, { host: '127.0.0.1', port: proxy.port });
    try {
      const outcome = await driveRegistration(tls, handle, { challenge: challengeFor(registrationId) });
      assert.equal(outcome.kind, 'assigned');
      assert.deepEqual(proxy.targets, [`localhost:${emulator.mqttPort}`]);
    } finally {
      tls.destroy(handle);
      await proxy.close();
    }
  });

  test('an X.509 device over TLS', async () => {
    const registrationId = 'tls-x509-1';
    const device = await issueCertificate({
      issuer: emulator.pki.ca,
      commonName: registrationId,
      usage: 'client',
    });
    const handle = createHandle(tls, registrationId, { hsmType: 'x509' });
    tls.x509Cert(handle, device.certPem, device.keyPem);
    try {
      const outcome = await driveRegistration(tls, handle, {});
      assert.equal(outcome.kind, 'assigned', outcome.kind === 'error' ? outcome.error.message : '');
    } finally {
      tls.destroy(handle);
    }
  });

  test('the providers share every operation but create', () => {
    for (const name of Object.keys(commonMqtt) as Array<keyof typeof commonMqtt>) {
      if (name === 'create') continue;
      assert.equal(tls[name], commonMqtt[name], name);
      assert.equal(ws[name], commonMqtt[name], name);
    }
  });
});
