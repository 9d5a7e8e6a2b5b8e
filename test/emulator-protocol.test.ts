// The emulator on the wire, packet by packet (mqtt-packet): the paths the official SDK never takes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { DEMO_DEVICE_ID, DEMO_DEVICE_KEY, DEMO_GROUP_KEY } from '../src/emulator/enrollments/config.js';
import type { EmulatorConfigFile } from '../src/emulator/enrollments/config-file.js';
import type { EmulatorLogEntry } from '../src/emulator/log.js';
import { certificateThumbprints, issueCertificate } from '../src/emulator/pki/pki.js';
import { createSasToken, deriveDeviceKey } from '../src/protocol/sas.js';
import { operationStatusTopic, registerTopic } from '../src/protocol/topics.js';
import {
  parseResponse,
  publishPacket,
  RawMqttClient,
  sasConnectPacket,
  startTestEmulator,
  subscribePacket,
  type TestEmulator,
  temporaryDirectory,
  testPki,
} from './helpers/emulator.js';

const ID_SCOPE = '0ne0000RAW1';
const KEY = Buffer.from('raw-protocol-individual-key-0001').toString('base64');
const GROUP_KEY = Buffer.from('raw-protocol-group-key-000000001').toString('base64');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const config: EmulatorConfigFile = {
  idScope: ID_SCOPE,
  iotHubs: ['raw-hub.azure-devices.net'],
  individualEnrollments: [
    { registrationId: 'raw-device', attestation: { type: 'symmetricKey', primaryKey: KEY } },
    { registrationId: 'raw-other', attestation: { type: 'symmetricKey', primaryKey: KEY } },
    {
      registrationId: 'raw-disabled',
      attestation: { type: 'symmetricKey', primaryKey: KEY },
      enabled: false,
    },
    {
      registrationId: 'raw-payload',
      attestation: { type: 'symmetricKey', primaryKey: KEY },
      payload: { firmware: '2.1', region: 'eu' },
    },
  ],
  enrollmentGroups: [
    { enrollmentGroupId: 'raw-group', attestation: { type: 'symmetricKey', primaryKey: GROUP_KEY } },
  ],
};

async function connect(
  emulator: TestEmulator,
  options: { registrationId?: string; key?: string; transport?: 'mqtt' | 'wss'; subscribe?: boolean } = {},
): Promise<RawMqttClient> {
  const client = await RawMqttClient.connect({
    port: options.transport === 'wss' ? emulator.wssPort : emulator.mqttPort,
    transport: options.transport ?? 'mqtt',
    ca: emulator.caCertPem,
  });
  client.send(
    sasConnectPacket({
      idScope: emulator.idScope,
      registrationId: options.registrationId ?? 'raw-device',
      key: options.key ?? KEY,
    }),
  );
  const connack = await client.expect('connack');
  assert.equal(connack.returnCode, 0);
  if (options.subscribe !== false) {
    client.send(subscribePacket());
    await client.expect('suback');
  }
  return client;
}

/** Sends one request at QoS 0 and returns the parsed response. */
async function request(client: RawMqttClient, topic: string, body: string | object = ' ') {
  client.send(publishPacket(topic, body, { qos: 0 }));
  const packet = await client.expect('publish');
  if (packet.qos === 1) client.send({ cmd: 'puback', messageId: packet.messageId ?? 0 });
  return parseResponse(packet);
}

async function connackCode(
  emulator: TestEmulator,
  connectPacket: ReturnType<typeof sasConnectPacket>,
): Promise<number> {
  const client = await RawMqttClient.connect({
    port: emulator.mqttPort,
    transport: 'mqtt',
    ca: emulator.caCertPem,
  });
  client.send(connectPacket);
  const connack = await client.expect('connack');
  assert.ok(await client.closesWithoutAnswer(), 'a refused connection is closed after its CONNACK');
  return connack.returnCode ?? -1;
}

describe('emulator: registration over raw MQTT', () => {
  let emulator: TestEmulator;
  before(async () => {
    emulator = await startTestEmulator({ config });
  });
  after(() => emulator.close());

  test('register answers 202 assigning with an operationId and retry-after; the poll answers 200 assigned', async () => {
    const client = await connect(emulator);
    const accepted = await request(client, registerTopic('r1'), { registrationId: 'raw-device' });
    assert.equal(accepted.statusCode, 202);
    assert.equal(accepted.requestId, 'r1');
    assert.equal(accepted.retryAfter, '0');
    assert.equal(accepted.body.status, 'assigning');
    const operationId = String(accepted.body.operationId);
    assert.match(operationId, /^4\.[0-9a-f]{16}\.[0-9a-f-]{36}$/);

    const assigned = await request(client, operationStatusTopic('r2', operationId));
    assert.equal(assigned.statusCode, 200);
    assert.equal(assigned.requestId, 'r2');
    assert.equal(assigned.body.status, 'assigned');
    assert.equal(assigned.body.operationId, operationId);
    const state = assigned.body.registrationState as Record<string, unknown>;
    assert.equal(state.registrationId, 'raw-device');
    assert.equal(state.assignedHub, 'raw-hub.azure-devices.net');
    assert.equal(state.deviceId, 'raw-device');
    assert.equal(state.status, 'assigned');
    assert.equal(state.substatus, 'initialAssignment');
    assert.ok(!Number.isNaN(Date.parse(String(state.createdDateTimeUtc))));
    assert.ok(!Number.isNaN(Date.parse(String(state.lastUpdatedDateTimeUtc))));
    assert.equal(typeof state.etag, 'string');
    assert.deepEqual(state.symmetricKey, {});
    client.close();
  });

  test('a request published at QoS 1 is acknowledged with PUBACK before its answer', async () => {
    const client = await connect(emulator);
    client.send(
      publishPacket(registerTopic('q1'), { registrationId: 'raw-device' }, { qos: 1, messageId: 77 }),
    );
    const puback = await client.expect('puback');
    assert.equal(puback.messageId, 77);
    const response = await client.expect('publish');
    assert.equal(parseResponse(response).statusCode, 202);
    client.close();
  });

  test('a device that registers again gets its existing assignment with a new operation', async () => {
    const first = await connect(emulator, { registrationId: 'raw-other' });
    const firstAccepted = await request(first, registerTopic('a'), { registrationId: 'raw-other' });
    const firstResult = await request(
      first,
      operationStatusTopic('b', String(firstAccepted.body.operationId)),
    );
    first.close();
    const second = await connect(emulator, { registrationId: 'raw-other' });
    const secondAccepted = await request(second, registerTopic('c'), { registrationId: 'raw-other' });
    assert.notEqual(secondAccepted.body.operationId, firstAccepted.body.operationId);
    const secondResult = await request(
      second,
      operationStatusTopic('d', String(secondAccepted.body.operationId)),
    );
    const before = firstResult.body.registrationState as Record<string, unknown>;
    const again = secondResult.body.registrationState as Record<string, unknown>;
    assert.equal(again.assignedHub, before.assignedHub);
    assert.equal(again.deviceId, before.deviceId);
    assert.equal(again.createdDateTimeUtc, before.createdDateTimeUtc);
    assert.notEqual(again.etag, before.etag);
    second.close();
  });

  test('a group device registers with its derived key and the answer names the group', async () => {
    const registrationId = 'raw-group-member';
    const client = await connect(emulator, {
      registrationId,
      key: deriveDeviceKey(GROUP_KEY, registrationId),
    });
    const accepted = await request(client, registerTopic('g1'), { registrationId });
    const assigned = await request(client, operationStatusTopic('g2', String(accepted.body.operationId)));
    assert.deepEqual((assigned.body.registrationState as Record<string, unknown>).symmetricKey, {
      enrollmentGroupId: 'raw-group',
    });
    client.close();
  });

  test("the enrollment's custom allocation payload is returned as registrationState.payload", async () => {
    const client = await connect(emulator, { registrationId: 'raw-payload' });
    const accepted = await request(client, registerTopic('p1'), {
      registrationId: 'raw-payload',
      payload: { ignored: true },
    });
    const assigned = await request(client, operationStatusTopic('p2', String(accepted.body.operationId)));
    assert.deepEqual((assigned.body.registrationState as Record<string, unknown>).payload, {
      firmware: '2.1',
      region: 'eu',
    });
    client.close();
  });

  test('an unknown operation is a 404 with the service error body', async () => {
    const client = await connect(emulator);
    const response = await request(
      client,
      operationStatusTopic('u1', '4.0000000000000000.00000000-0000-0000-0000-000000000000'),
    );
    assert.equal(response.statusCode, 404);
    assert.equal(response.requestId, 'u1');
    assert.equal(response.body.errorCode, 404201);
    assert.match(String(response.body.trackingId), UUID);
    assert.equal(typeof response.body.message, 'string');
    assert.ok(!Number.isNaN(Date.parse(String(response.body.timestampUtc))));
    client.close();
  });

  test("another device's operation is a 404 too", async () => {
    const owner = await connect(emulator);
    const accepted = await request(owner, registerTopic('o1'), { registrationId: 'raw-device' });
    const stranger = await connect(emulator, { registrationId: 'raw-other' });
    const response = await request(stranger, operationStatusTopic('o2', String(accepted.body.operationId)));
    assert.equal(response.statusCode, 404);
    owner.close();
    stranger.close();
  });

  test('a disabled enrollment is refused with a 401 service error body', async () => {
    const client = await connect(emulator, { registrationId: 'raw-disabled' });
    const response = await request(client, registerTopic('d1'), { registrationId: 'raw-disabled' });
    assert.equal(response.statusCode, 401);
    assert.equal(response.body.errorCode, 401002);
    assert.match(String(response.body.message), /disabled/);
    assert.match(String(response.body.trackingId), UUID);
    client.close();
  });

  test('a malformed register body is a 400', async () => {
    const client = await connect(emulator);
    const notJson = await request(client, registerTopic('m1'), '{"registrationId":');
    assert.equal(notJson.statusCode, 400);
    assert.equal(notJson.body.errorCode, 400004);
    const otherDevice = await request(client, registerTopic('m2'), { registrationId: 'raw-other' });
    assert.equal(otherDevice.statusCode, 400);
    client.close();
  });

  test('a request before SUBSCRIBE gets no answer: DPS answers subscribed connections only', async () => {
    const client = await connect(emulator, { subscribe: false });
    client.send(publishPacket(registerTopic('n1'), { registrationId: 'raw-device' }, { qos: 0 }));
    client.send({ cmd: 'pingreq' });
    // The PINGRESP comes first and alone: nothing was published for the request.
    await client.expect('pingresp');
    client.send(subscribePacket(2));
    await client.expect('suback');
    const answered = await request(client, registerTopic('n2'), { registrationId: 'raw-device' });
    assert.equal(answered.statusCode, 202);
    client.close();
  });

  test('SUBSCRIBE to any other topic is refused in the SUBACK (0x80)', async () => {
    const client = await connect(emulator, { subscribe: false });
    client.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'devices/#', qos: 1 }] });
    const suback = await client.expect('suback');
    assert.deepEqual(suback.granted, [0x80]);
    client.close();
  });

  test('UNSUBSCRIBE is acknowledged and stops the answers', async () => {
    const client = await connect(emulator);
    client.send({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['$dps/registrations/res/#'] });
    await client.expect('unsuback');
    client.send(publishPacket(registerTopic('x1'), { registrationId: 'raw-device' }, { qos: 0 }));
    client.send({ cmd: 'pingreq' });
    await client.expect('pingresp');
    client.close();
  });

  test('a publish to an unknown topic closes the connection', async () => {
    const client = await connect(emulator);
    client.send(publishPacket('devices/raw-device/messages/events/', { hello: 1 }, { qos: 0 }));
    assert.ok(await client.closesWithoutAnswer());
  });

  test('a publish at QoS 2 closes the connection', async () => {
    const client = await connect(emulator);
    client.send({
      cmd: 'publish',
      topic: registerTopic('q2'),
      payload: Buffer.from('{}'),
      qos: 2,
      messageId: 5,
      dup: false,
      retain: false,
    });
    assert.ok(await client.closesWithoutAnswer());
  });

  test('a packet over the size limit closes the connection', async () => {
    const client = await connect(emulator);
    client.send(publishPacket(registerTopic('big'), 'x'.repeat(70 * 1024), { qos: 0 }));
    assert.ok(await client.closesWithoutAnswer());
  });

  test('DISCONNECT closes the connection', async () => {
    const client = await connect(emulator);
    client.send({ cmd: 'disconnect' });
    await client.closed;
  });

  test('the same protocol is served over WebSocket', async () => {
    const client = await connect(emulator, { transport: 'wss' });
    const accepted = await request(client, registerTopic('w1'), { registrationId: 'raw-device' });
    assert.equal(accepted.statusCode, 202);
    client.close();
  });
});

describe('emulator: CONNECT refusals are CONNACK return codes', () => {
  let emulator: TestEmulator;
  before(async () => {
    emulator = await startTestEmulator({ config });
  });
  after(() => emulator.close());

  const base = { idScope: ID_SCOPE, registrationId: 'raw-device', key: KEY };

  test('a token signed over the raw resource (the official Node SDK form) is accepted', async () => {
    const client = await RawMqttClient.connect({
      port: emulator.mqttPort,
      transport: 'mqtt',
      ca: emulator.caCertPem,
    });
    client.send(sasConnectPacket({ ...base, resourceEncoding: 'raw' }));
    assert.equal((await client.expect('connack')).returnCode, 0);
    client.close();
  });

  test('any api-version of the form YYYY-MM-DD[-preview] is accepted', async () => {
    for (const apiVersion of ['2019-03-31', '2021-06-01', '2025-07-01-preview']) {
      const client = await RawMqttClient.connect({
        port: emulator.mqttPort,
        transport: 'mqtt',
        ca: emulator.caCertPem,
      });
      client.send(sasConnectPacket({ ...base, apiVersion }));
      assert.equal((await client.expect('connack')).returnCode, 0, apiVersion);
      client.close();
    }
  });

  test('an expired token: 5 (not authorized)', async () => {
    assert.equal(
      await connackCode(
        emulator,
        sasConnectPacket({ ...base, expiresAtSeconds: Math.floor(Date.now() / 1000) - 10 }),
      ),
      5,
    );
  });

  test('a wrong key: 5 (not authorized)', async () => {
    assert.equal(await connackCode(emulator, sasConnectPacket({ ...base, key: DEMO_DEVICE_KEY })), 5);
  });

  test('a device that is not enrolled: 5 (not authorized)', async () => {
    assert.equal(await connackCode(emulator, sasConnectPacket({ ...base, registrationId: 'nobody' })), 5);
  });

  test('another ID scope: 5 (not authorized)', async () => {
    assert.equal(await connackCode(emulator, sasConnectPacket({ ...base, idScope: '0ne00000BAD' })), 5);
  });

  test('a token whose skn is not "registration": 4 (bad user name or password)', async () => {
    const packet = sasConnectPacket(base);
    packet.password = Buffer.from(String(packet.password).replace('skn=registration', 'skn=device'));
    assert.equal(await connackCode(emulator, packet), 4);
  });

  test('a password that is not a SAS token: 4', async () => {
    const packet = sasConnectPacket(base);
    packet.password = Buffer.from('hunter2');
    assert.equal(await connackCode(emulator, packet), 4);
  });

  test('a user name without api-version: 4', async () => {
    const packet = sasConnectPacket(base);
    packet.username = `${ID_SCOPE}/registrations/raw-device`;
    assert.equal(await connackCode(emulator, packet), 4);
  });

  test('a client id that is not the registration id: 2 (identifier rejected)', async () => {
    const packet = sasConnectPacket(base);
    packet.clientId = 'raw-other';
    assert.equal(await connackCode(emulator, packet), 2);
  });

  test('MQTT 3.1 (protocol level 3): 1 (unacceptable protocol version)', async () => {
    const packet = sasConnectPacket(base);
    packet.protocolId = 'MQIsdp';
    packet.protocolVersion = 3;
    assert.equal(await connackCode(emulator, packet), 1);
  });

  test('no password and no client certificate: 5', async () => {
    const packet = sasConnectPacket(base);
    delete packet.password;
    assert.equal(await connackCode(emulator, packet), 5);
  });

  test('a packet other than CONNECT first closes the connection', async () => {
    const client = await RawMqttClient.connect({
      port: emulator.mqttPort,
      transport: 'mqtt',
      ca: emulator.caCertPem,
    });
    client.send(subscribePacket());
    assert.ok(await client.closesWithoutAnswer());
  });
});

describe('emulator: WebSocket endpoint', () => {
  let emulator: TestEmulator;
  before(async () => {
    emulator = await startTestEmulator();
  });
  after(() => emulator.close());

  async function upgradeStatus(path: string, protocols: string[]): Promise<number> {
    const webSocket = new WebSocket(`wss://127.0.0.1:${emulator.wssPort}${path}`, protocols, {
      ca: emulator.caCertPem,
    });
    webSocket.on('error', () => {});
    const [, response] = (await once(webSocket, 'unexpected-response')) as [unknown, { statusCode: number }];
    webSocket.terminate();
    return response.statusCode;
  }

  test('another path is refused with 404', async () => {
    assert.equal(await upgradeStatus('/mqtt', ['mqtt']), 404);
  });

  test('another subprotocol is refused with 400', async () => {
    assert.equal(await upgradeStatus('/$iothub/websocket', ['wamp']), 400);
  });

  for (const [path, protocol] of [
    ['/$iothub/websocket', 'mqtt'],
    ['/', 'mqtt'],
    ['/$iothub/websocket', 'MQTT'],
  ] as const) {
    test(`path ${path} with subprotocol ${protocol} is served`, async () => {
      const client = await RawMqttClient.connect({
        port: emulator.wssPort,
        transport: 'wss',
        ca: emulator.caCertPem,
        path,
        protocols: [protocol],
      });
      client.send(
        sasConnectPacket({ idScope: emulator.idScope, registrationId: DEMO_DEVICE_ID, key: DEMO_DEVICE_KEY }),
      );
      assert.equal((await client.expect('connack')).returnCode, 0);
      client.close();
    });
  }
});

describe('emulator: X.509 over raw MQTT', () => {
  test('an individual X.509 enrollment matches the leaf by thumbprint and reports the certificate', async () => {
    // Any issuer will do: an individual enrollment trusts the certificate by its thumbprint alone.
    const pki = await testPki();
    const device = await issueCertificate({ issuer: pki.ca, commonName: 'x509-individual', usage: 'client' });
    const emulator = await startTestEmulator({
      config: {
        individualEnrollments: [
          {
            registrationId: 'x509-individual',
            attestation: { type: 'x509', thumbprint: certificateThumbprints(device.certPem).sha256 },
          },
        ],
      },
    });
    try {
      const client = await RawMqttClient.connect({
        port: emulator.mqttPort,
        transport: 'mqtt',
        ca: emulator.caCertPem,
        clientCertificate: device,
      });
      const packet = sasConnectPacket({
        idScope: emulator.idScope,
        registrationId: 'x509-individual',
        key: KEY,
      });
      delete packet.password;
      client.send(packet);
      assert.equal((await client.expect('connack')).returnCode, 0);
      client.send(subscribePacket());
      await client.expect('suback');
      const accepted = await request(client, registerTopic('x1'), { registrationId: 'x509-individual' });
      const assigned = await request(client, operationStatusTopic('x2', String(accepted.body.operationId)));
      const x509 = (
        assigned.body.registrationState as Record<string, Record<string, Record<string, unknown>>>
      ).x509;
      assert.equal(x509?.certificateInfo?.sha256Thumbprint, certificateThumbprints(device.certPem).sha256);
      client.close();
    } finally {
      await emulator.close();
    }
  });
});

describe('emulator: knobs and faults', () => {
  async function registerOnce(emulator: TestEmulator, registrationId = 'knob-device') {
    const client = await connect(emulator, {
      registrationId,
      key: deriveDeviceKey(DEMO_GROUP_KEY, registrationId),
    });
    return { client, registrationId };
  }

  test('throttling answers 429 with retry-after and the service error body, then lets requests through', async () => {
    const emulator = await startTestEmulator({ throttle: { firstRequests: 1, retryAfterSeconds: 7 } });
    try {
      const { client, registrationId } = await registerOnce(emulator);
      const throttled = await request(client, registerTopic('t1'), { registrationId });
      assert.equal(throttled.statusCode, 429);
      assert.equal(throttled.retryAfter, '7');
      assert.equal(throttled.body.errorCode, 429001);
      const accepted = await request(client, registerTopic('t2'), { registrationId });
      assert.equal(accepted.statusCode, 202);
      client.close();
    } finally {
      await emulator.close();
    }
  });

  test('a fraction of 0.5 throttles every second request', async () => {
    const emulator = await startTestEmulator({ throttle: { fraction: 0.5 } });
    try {
      const { client, registrationId } = await registerOnce(emulator);
      const codes: number[] = [];
      for (let index = 0; index < 4; index++) {
        codes.push((await request(client, registerTopic(`f${index}`), { registrationId })).statusCode);
      }
      assert.deepEqual(codes, [202, 429, 202, 429]);
      client.close();
    } finally {
      await emulator.close();
    }
  });

  test('pollsBeforeAssignment answers that many polls with 202 assigning first', async () => {
    const emulator = await startTestEmulator({ pollsBeforeAssignment: 2, retryAfterSeconds: 2 });
    try {
      const { client, registrationId } = await registerOnce(emulator);
      const accepted = await request(client, registerTopic('s0'), { registrationId });
      const operationId = String(accepted.body.operationId);
      const statuses: Array<[number, string | null]> = [];
      for (let index = 1; index <= 3; index++) {
        const polled = await request(client, operationStatusTopic(`s${index}`, operationId));
        statuses.push([polled.statusCode, polled.retryAfter]);
      }
      assert.deepEqual(statuses, [
        [202, '2'],
        [202, '2'],
        [200, null],
      ]);
      client.close();
    } finally {
      await emulator.close();
    }
  });

  test('dropBeforeRequest closes the connection on that request, unanswered', async () => {
    const emulator = await startTestEmulator({ faults: { dropBeforeRequest: 1 } });
    try {
      const { client, registrationId } = await registerOnce(emulator);
      client.send(publishPacket(registerTopic('d1'), { registrationId }, { qos: 1 }));
      assert.ok(await client.closesWithoutAnswer());
    } finally {
      await emulator.close();
    }
  });

  test('dropAfterResponse answers that request, then closes the connection', async () => {
    const emulator = await startTestEmulator({ faults: { dropAfterResponse: 2 } });
    try {
      const { client, registrationId } = await registerOnce(emulator);
      assert.equal((await request(client, registerTopic('a1'), { registrationId })).statusCode, 202);
      assert.equal((await request(client, registerTopic('a2'), { registrationId })).statusCode, 202);
      assert.ok(await client.closesWithoutAnswer());
    } finally {
      await emulator.close();
    }
  });

  test('responseDelayMs holds the answer back', async () => {
    const emulator = await startTestEmulator({ faults: { responseDelayMs: 150 } });
    try {
      const { client, registrationId } = await registerOnce(emulator);
      const started = performance.now();
      await request(client, registerTopic('l1'), { registrationId });
      assert.ok(performance.now() - started >= 140);
      client.close();
    } finally {
      await emulator.close();
    }
  });

  test('an idle connection is closed after 1.5 times its keep-alive', async () => {
    const emulator = await startTestEmulator();
    try {
      const client = await RawMqttClient.connect({
        port: emulator.mqttPort,
        transport: 'mqtt',
        ca: emulator.caCertPem,
      });
      client.send({
        ...sasConnectPacket({
          idScope: emulator.idScope,
          registrationId: DEMO_DEVICE_ID,
          key: DEMO_DEVICE_KEY,
        }),
        keepalive: 1,
      });
      await client.expect('connack');
      const started = performance.now();
      await client.closed;
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 1400 && elapsed < 5000, `closed after ${elapsed} ms`);
    } finally {
      await emulator.close();
    }
  });
});

describe('emulator: operations', () => {
  test('one log entry per connection and request, with no key or signature in it', async () => {
    const entries: EmulatorLogEntry[] = [];
    const emulator = await startTestEmulator({ config, logger: (entry) => entries.push(entry) });
    try {
      const client = await connect(emulator);
      await request(client, registerTopic('log1'), { registrationId: 'raw-device' });
      client.close();
      await client.closed;
      const wrong = await RawMqttClient.connect({
        port: emulator.mqttPort,
        transport: 'mqtt',
        ca: emulator.caCertPem,
      });
      wrong.send(sasConnectPacket({ idScope: ID_SCOPE, registrationId: 'raw-device', key: GROUP_KEY }));
      await wrong.expect('connack');
      await wrong.closed;
    } finally {
      await emulator.close();
    }
    const events = entries.map((entry) => entry.event);
    for (const event of ['listening', 'connection', 'connack', 'request', 'close', 'stopped']) {
      assert.ok(events.includes(event), `logged ${event}`);
    }
    const requestEntry = entries.find((entry) => entry.event === 'request');
    assert.equal(requestEntry?.registrationId, 'raw-device');
    assert.equal(requestEntry?.statusCode, 202);
    const text = JSON.stringify(entries);
    const token = createSasToken({
      idScope: ID_SCOPE,
      registrationId: 'raw-device',
      key: KEY,
      expiresAtSeconds: 1,
    });
    assert.ok(!text.includes(KEY) && !text.includes(GROUP_KEY), 'no key is logged');
    assert.ok(
      !text.includes(token.slice(token.indexOf('sig='), token.indexOf('&se='))),
      'no signature is logged',
    );
  });

  test('with a data directory, an assignment survives a restart', async () => {
    const dataDir = await temporaryDirectory();
    try {
      const registrationId = 'persistent-device';
      const key = deriveDeviceKey(DEMO_GROUP_KEY, registrationId);
      const first = await startTestEmulator({ dataDir: dataDir.path, pki: undefined });
      const firstClient = await connect(first, { registrationId, key });
      const accepted = await request(firstClient, registerTopic('p1'), { registrationId });
      const assigned = await request(
        firstClient,
        operationStatusTopic('p2', String(accepted.body.operationId)),
      );
      firstClient.close();
      await first.close();

      const second = await startTestEmulator({ dataDir: dataDir.path, pki: undefined });
      try {
        assert.equal(second.caCertPem, first.caCertPem, 'the CA is reused from the data directory');
        assert.deepEqual(
          second.registrations().map((record) => record.registrationId),
          [registrationId],
        );
        const secondClient = await connect(second, { registrationId, key });
        const again = await request(secondClient, registerTopic('p3'), { registrationId });
        const reassigned = await request(
          secondClient,
          operationStatusTopic('p4', String(again.body.operationId)),
        );
        const before = assigned.body.registrationState as Record<string, unknown>;
        const after = reassigned.body.registrationState as Record<string, unknown>;
        assert.equal(after.createdDateTimeUtc, before.createdDateTimeUtc);
        assert.equal(after.assignedHub, before.assignedHub);
        secondClient.close();
      } finally {
        await second.close();
      }
    } finally {
      await dataDir.remove();
    }
  });
});
