// The common DPS-over-MQTT transport against a scripted MQTT peer (in-memory streams). Socket-level
// behaviour against the emulator is in transport-sockets.test.ts.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { describe, test } from 'node:test';
import type { IoOptions } from '../src/io/types.js';
import {
  AuthenticationError,
  InvalidInputError,
  InvalidStateError,
  NotSupportedError,
  ProtocolError,
  ProvisioningServiceError,
  RegistrationFailedError,
  TimeoutError,
  TransportError,
} from '../src/protocol/errors.js';
import { createSasToken } from '../src/protocol/sas.js';
import { commonMqtt, type MqttTransportHandle } from '../src/transport/common.js';
import type { RegistrationOutcome, TransportCreateOptions, TransportStatus } from '../src/transport/types.js';
import { createScriptedPeer, requestIdOf, type ScriptedPeer, streamPair } from './support/scripted-peer.js';

const KEY = 'Z3JvdXAtMS10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2g=';
const CREATE: TransportCreateOptions = {
  uri: 'dps.example.net',
  hsmType: 'symmetricKey',
  idScope: '0ne00000A0A',
  registrationId: 'dev-1',
  apiVersion: '2019-03-31',
};
const challenge = () =>
  createSasToken({
    idScope: CREATE.idScope,
    registrationId: CREATE.registrationId,
    key: KEY,
    expiresAtSeconds: 1798761600,
  });

const ASSIGNING = { operationId: '4.op', status: 'assigning' };
const ASSIGNED = {
  operationId: '4.op',
  status: 'assigned',
  registrationState: {
    registrationId: 'dev-1',
    assignedHub: 'hub.example.net',
    deviceId: 'dev-1',
    status: 'assigned',
  },
};

function harness(create: Partial<TransportCreateOptions> = {}) {
  const events = new EventEmitter();
  const peers: ScriptedPeer[] = [];
  const ioOptions: IoOptions[] = [];
  const outcomes: RegistrationOutcome[] = [];
  const statuses: TransportStatus[] = [];
  const handle = commonMqtt.create(
    { ...CREATE, ...create },
    {
      transportName: 'test',
      defaultPort: 443,
      transportIo: async (options) => {
        ioOptions.push(options);
        const [clientSide, serverSide] = streamPair();
        const peer = createScriptedPeer(serverSide);
        peers.push(peer);
        events.emit('peer', peer);
        return clientSide;
      },
    },
  );
  commonMqtt.open(handle, {
    onRegistrationData: (outcome) => {
      outcomes.push(outcome);
      events.emit('outcome', outcome);
    },
    onStatus: (status) => {
      statuses.push(status);
      events.emit('status', status);
    },
  });
  // Events may fire synchronously inside a peer's write, so each waiter first looks at what was
  // already recorded and not yet consumed.
  let peersTaken = 0;
  let outcomesTaken = 0;
  let statusesTaken = 0;
  const nextPeer = async (): Promise<ScriptedPeer> => {
    while (peers.length <= peersTaken) await once(events, 'peer');
    return peers[peersTaken++]!;
  };
  const nextOutcome = async (): Promise<RegistrationOutcome> => {
    while (outcomes.length <= outcomesTaken) await once(events, 'outcome');
    return outcomes[outcomesTaken++]!;
  };
  const waitStatus = async (name: TransportStatus['status']): Promise<TransportStatus> => {
    for (;;) {
      while (statuses.length <= statusesTaken) await once(events, 'status');
      const status = statuses[statusesTaken++]!;
      if (status.status === name) return status;
    }
  };
  /** Accepts CONNECT and SUBSCRIBE, returns the first request publish. */
  const acceptSession = async (peer: ScriptedPeer) => {
    await peer.next('connect');
    peer.send({ cmd: 'connack', returnCode: 0, sessionPresent: false });
    const subscribe = await peer.next('subscribe');
    peer.send({ cmd: 'suback', messageId: subscribe.messageId, granted: [1] });
    return (await peer.next('publish')) as {
      topic: string;
      payload: Buffer;
      qos: number;
      messageId?: number;
    };
  };
  return { handle, peers, ioOptions, outcomes, statuses, nextPeer, nextOutcome, waitStatus, acceptSession };
}

function startRegistration(handle: MqttTransportHandle, payload?: unknown) {
  commonMqtt.registerDevice(
    handle,
    payload === undefined ? { challenge } : { challenge, payload: payload as never },
  );
  commonMqtt.doWork(handle);
}

describe('common transport: create and open', () => {
  const missing: Array<[string, Partial<TransportCreateOptions>]> = [
    ['uri', { uri: '' }],
    ['scope', { idScope: '' }],
    ['registration id', { registrationId: '' }],
    ['api version', { apiVersion: '' }],
  ];
  for (const [name, override] of missing) {
    test(`PROV_TRANSPORT_MQTT_COMMON_07_001: create refuses a missing ${name}`, () => {
      assert.throws(
        () =>
          commonMqtt.create(
            { ...CREATE, ...override },
            { transportIo: async () => streamPair()[0], defaultPort: 1, transportName: 't' },
          ),
        InvalidInputError,
      );
    });
  }

  test('PROV_TRANSPORT_MQTT_COMMON_07_002: create refuses a missing IO factory', () => {
    assert.throws(() => commonMqtt.create(CREATE, undefined as never), InvalidInputError);
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_062: TPM attestation is refused with a clear error', () => {
    assert.throws(
      () =>
        commonMqtt.create(
          { ...CREATE, hsmType: 'tpm' },
          { transportIo: async () => streamPair()[0], defaultPort: 1, transportName: 't' },
        ),
      (error: unknown) => error instanceof NotSupportedError && /TPM/.test(error.message),
    );
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_007: open needs both callbacks', () => {
    const handle = commonMqtt.create(CREATE, {
      transportIo: async () => streamPair()[0],
      defaultPort: 1,
      transportName: 't',
    });
    assert.throws(() => commonMqtt.open(handle, { onStatus: () => {} } as never), InvalidInputError);
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_005: destroy on nothing is a no-op', () => {
    assert.doesNotThrow(() => commonMqtt.destroy(undefined));
  });

  test('the endpoint may carry a port; a scheme is refused', () => {
    const { ioOptions, handle, nextPeer } = harness({ uri: 'localhost:8443' });
    startRegistration(handle);
    return nextPeer().then(() => {
      assert.equal(ioOptions[0]?.host, 'localhost');
      assert.equal(ioOptions[0]?.port, 8443);
      commonMqtt.destroy(handle);
      assert.throws(() => harness({ uri: 'wss://dps.example.net' }), InvalidInputError);
    });
  });
});

describe('common transport: a registration', () => {
  test('PROV_TRANSPORT_MQTT_COMMON_07_047, PROV_TRANSPORT_MQTT_COMMON_07_050, PROV_TRANSPORT_MQTT_COMMON_07_052, PROV_TRANSPORT_MQTT_COMMON_07_053: connects, subscribes, registers and polls to assigned', async () => {
    const t = harness();
    startRegistration(t.handle, { room: 4 });
    const peer = await t.nextPeer();
    const connect = (await peer.next('connect')) as unknown as {
      clientId: string;
      username: string;
      password: Buffer;
      clean: boolean;
      protocolVersion: number;
      keepalive: number;
    };
    assert.equal(connect.clientId, 'dev-1');
    assert.match(
      connect.username,
      /^0ne00000A0A\/registrations\/dev-1\/api-version=2019-03-31&ClientVersion=dps-mqtt/,
    );
    assert.equal(connect.password.toString(), challenge());
    assert.equal(connect.clean, true);
    assert.equal(connect.protocolVersion, 4);
    assert.equal(connect.keepalive, 180);
    peer.send({ cmd: 'connack', returnCode: 0, sessionPresent: false });
    const subscribe = (await peer.next('subscribe')) as unknown as {
      messageId: number;
      subscriptions: Array<{ topic: string; qos: number }>;
    };
    assert.deepEqual(subscribe.subscriptions, [{ topic: '$dps/registrations/res/#', qos: 1 }]);
    assert.equal(
      peer.received.some((packet) => packet.cmd === 'publish'),
      false,
      'nothing published before SUBACK',
    );
    peer.send({ cmd: 'suback', messageId: subscribe.messageId, granted: [1] });
    const register = (await peer.next('publish')) as unknown as {
      topic: string;
      payload: Buffer;
      qos: number;
    };
    assert.match(register.topic, /^\$dps\/registrations\/PUT\/iotdps-register\/\?\$rid=.+/);
    assert.equal(register.qos, 1);
    assert.deepEqual(JSON.parse(register.payload.toString()), {
      registrationId: 'dev-1',
      payload: { room: 4 },
    });
    peer.respond(202, requestIdOf(register.topic), ASSIGNING, '0');
    const assigning = await t.waitStatus('assigning');
    assert.deepEqual(assigning.status === 'assigning' && [assigning.operationId, assigning.retryAfterMs], [
      '4.op',
      0,
    ]);

    commonMqtt.getOperationStatus(t.handle);
    commonMqtt.doWork(t.handle);
    const poll = (await peer.next('publish')) as unknown as { topic: string; payload: Buffer };
    assert.match(
      poll.topic,
      /^\$dps\/registrations\/GET\/iotdps-get-operationstatus\/\?\$rid=.+&operationId=4\.op$/,
    );
    assert.notEqual(requestIdOf(poll.topic), requestIdOf(register.topic), 'every request has a fresh $rid');
    peer.respond(200, requestIdOf(poll.topic), ASSIGNED);
    const outcome = await t.nextOutcome();
    assert.equal(outcome.kind, 'assigned');
    assert.deepEqual(outcome.kind === 'assigned' && [outcome.assignedHub, outcome.deviceId], [
      'hub.example.net',
      'dev-1',
    ]);
    assert.deepEqual(
      t.statuses.map((status) => status.status),
      ['connecting', 'connected', 'authenticated', 'registering', 'assigning'],
    );
    commonMqtt.close(t.handle);
    await peer.next('disconnect');
    await peer.closed;
  });

  test('responses with a foreign $rid are ignored', async () => {
    const t = harness();
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    const register = await t.acceptSession(peer);
    peer.respond(200, 'someone-else', ASSIGNED);
    peer.respond(200, requestIdOf(register.topic), ASSIGNED);
    const outcome = await t.nextOutcome();
    assert.equal(outcome.kind, 'assigned');
    assert.equal(t.outcomes.length, 1);
    commonMqtt.destroy(t.handle);
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_047: doWork is safe at any call rate', async () => {
    const t = harness();
    startRegistration(t.handle);
    for (let i = 0; i < 10_000; i++) commonMqtt.doWork(t.handle);
    const peer = await t.nextPeer();
    const register = await t.acceptSession(peer);
    for (let i = 0; i < 10_000; i++) commonMqtt.doWork(t.handle);
    peer.respond(200, requestIdOf(register.topic), ASSIGNED);
    await t.nextOutcome();
    assert.equal(t.peers.length, 1, 'one connection');
    assert.equal(
      peer.received.filter((packet) => packet.cmd === 'publish').length,
      1,
      'one register request',
    );
    commonMqtt.destroy(t.handle);
  });

  test('a transient 429 is retried after retry-after with the same request and a fresh $rid', async () => {
    const t = harness();
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    const first = await t.acceptSession(peer);
    peer.respond(429, requestIdOf(first.topic), { errorCode: 429001, message: 'throttled' }, '0');
    const transient = await t.waitStatus('transient');
    assert.deepEqual(
      transient.status === 'transient' && [transient.statusCode, transient.retryAfterMs, transient.attempt],
      [429, 0, 1],
    );
    const second = (await peer.next('publish')) as unknown as { topic: string; payload: Buffer };
    assert.equal(second.payload.toString(), first.payload.toString());
    assert.notEqual(requestIdOf(second.topic), requestIdOf(first.topic));
    peer.respond(200, requestIdOf(second.topic), ASSIGNED);
    assert.equal((await t.nextOutcome()).kind, 'assigned');
    commonMqtt.destroy(t.handle);
  });

  test('transient answers beyond maxTransientRetries end in a ProvisioningServiceError, not a loop', async () => {
    const t = harness();
    commonMqtt.setOption(t.handle, 'maxTransientRetries', 2);
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    let request = await t.acceptSession(peer);
    const outcome = t.nextOutcome();
    for (let attempt = 0; attempt < 3; attempt++) {
      peer.respond(503, requestIdOf(request.topic), '', '0');
      if (attempt < 2) request = (await peer.next('publish')) as typeof request;
    }
    const result = await outcome;
    assert.ok(result.kind === 'error' && result.error instanceof ProvisioningServiceError);
    assert.equal(result.error.statusCode, 503);
    assert.equal(result.error.retryable, true);
    commonMqtt.destroy(t.handle);
  });

  test('a 401 answer is a ProvisioningServiceError carrying the service body', async () => {
    const t = harness();
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    const register = await t.acceptSession(peer);
    peer.respond(401, requestIdOf(register.topic), {
      errorCode: 401002,
      trackingId: 'track-1',
      message: 'Unauthorized',
      timestampUtc: '2026-11-24T10:00:00.000Z',
    });
    const outcome = await t.nextOutcome();
    assert.ok(outcome.kind === 'error' && outcome.error instanceof ProvisioningServiceError);
    assert.deepEqual(
      [
        outcome.error.statusCode,
        outcome.error.errorCode,
        outcome.error.trackingId,
        outcome.error.phase,
        outcome.error.retryable,
      ],
      [401, 401002, 'track-1', 'register', false],
    );
    assert.match(outcome.error.message, /401.*Unauthorized/);
    await peer.closed;
  });

  test('a refused CONNACK is an AuthenticationError, reported once, not retried', async () => {
    const t = harness();
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    await peer.next('connect');
    peer.send({ cmd: 'connack', returnCode: 5, sessionPresent: false });
    const outcome = await t.nextOutcome();
    assert.ok(outcome.kind === 'error' && outcome.error instanceof AuthenticationError);
    assert.equal(outcome.error.returnCode, 5);
    assert.equal(outcome.error.phase, 'connack');
    await peer.closed;
    assert.equal(t.peers.length, 1);
    assert.equal(t.outcomes.length, 1);
  });

  test('a status "failed" is a RegistrationFailedError with the service reason', async () => {
    const t = harness();
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    const register = await t.acceptSession(peer);
    peer.respond(200, requestIdOf(register.topic), {
      operationId: '4.op',
      status: 'failed',
      registrationState: {
        registrationId: 'dev-1',
        status: 'failed',
        errorCode: 400209,
        errorMessage: 'Custom allocation failed',
      },
    });
    const outcome = await t.nextOutcome();
    assert.ok(outcome.kind === 'error' && outcome.error instanceof RegistrationFailedError);
    assert.equal(outcome.error.errorCode, 400209);
    assert.match(outcome.error.message, /Custom allocation failed/);
    commonMqtt.destroy(t.handle);
  });

  test('a malformed body is a ProtocolError', async () => {
    const t = harness();
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    const register = await t.acceptSession(peer);
    peer.respond(200, requestIdOf(register.topic), '{"status":"sleeping"}');
    const outcome = await t.nextOutcome();
    assert.ok(outcome.kind === 'error' && outcome.error instanceof ProtocolError);
    await peer.closed;
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_049, PROV_TRANSPORT_MQTT_COMMON_07_057: a drop mid-poll is reported once, then a status query reconnects and resumes the same operation', async () => {
    const t = harness();
    startRegistration(t.handle);
    const first = await t.nextPeer();
    const register = await t.acceptSession(first);
    first.respond(202, requestIdOf(register.topic), ASSIGNING, '0');
    await t.waitStatus('assigning');
    commonMqtt.getOperationStatus(t.handle);
    commonMqtt.doWork(t.handle);
    await first.next('publish');
    first.close();
    const outcome = await t.nextOutcome();
    assert.ok(outcome.kind === 'error' && outcome.error instanceof TransportError);
    assert.equal(outcome.error.phase, 'poll');
    assert.equal(outcome.error.retryable, true);

    commonMqtt.getOperationStatus(t.handle);
    commonMqtt.doWork(t.handle);
    const second = await t.nextPeer();
    const poll = await t.acceptSession(second);
    assert.match(poll.topic, /operationId=4\.op$/);
    second.respond(200, requestIdOf(poll.topic), ASSIGNED);
    assert.equal((await t.nextOutcome()).kind, 'assigned');
    commonMqtt.destroy(t.handle);
  });

  test('a request that gets no answer ends in a TimeoutError naming the phase', async () => {
    const t = harness();
    commonMqtt.setOption(t.handle, 'responseTimeoutMs', 30);
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    await t.acceptSession(peer);
    const outcome = await t.nextOutcome();
    assert.ok(outcome.kind === 'error' && outcome.error instanceof TimeoutError);
    assert.equal(outcome.error.phase, 'register');
    await peer.closed;
  });

  test('pipelining sends CONNECT, SUBSCRIBE and the register request in one flight', async () => {
    const t = harness();
    commonMqtt.setOption(t.handle, 'pipeline', true);
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    const register = (await peer.next('publish')) as unknown as { topic: string };
    assert.deepEqual(
      peer.received.map((packet) => packet.cmd),
      ['connect', 'subscribe', 'publish'],
    );
    const subscribe = peer.received[1] as unknown as { messageId: number };
    peer.send({ cmd: 'connack', returnCode: 0, sessionPresent: false });
    peer.send({ cmd: 'suback', messageId: subscribe.messageId, granted: [1] });
    peer.respond(200, requestIdOf(register.topic), ASSIGNED);
    assert.equal((await t.nextOutcome()).kind, 'assigned');
    commonMqtt.destroy(t.handle);
  });
});

describe('common transport: misuse and settings', () => {
  test('PROV_TRANSPORT_MQTT_COMMON_07_014, PROV_TRANSPORT_MQTT_COMMON_07_015: register_device refuses while a registration is in flight', async () => {
    const t = harness();
    startRegistration(t.handle);
    assert.throws(() => commonMqtt.registerDevice(t.handle, { challenge }), InvalidStateError);
    commonMqtt.destroy(t.handle);
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_018: get_operation_status needs an operation id', () => {
    const t = harness();
    assert.throws(() => commonMqtt.getOperationStatus(t.handle), InvalidStateError);
    commonMqtt.destroy(t.handle);
  });

  test('symmetric-key registration needs the challenge callback', () => {
    const t = harness();
    assert.throws(() => commonMqtt.registerDevice(t.handle, {}), InvalidInputError);
    commonMqtt.destroy(t.handle);
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_011: close on a transport that is not open is misuse', () => {
    const handle = commonMqtt.create(CREATE, {
      transportIo: async () => streamPair()[0],
      defaultPort: 1,
      transportName: 't',
    });
    assert.throws(() => commonMqtt.close(handle), InvalidStateError);
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_034, PROV_TRANSPORT_MQTT_COMMON_07_040: set_proxy validates and replaces', () => {
    const t = harness();
    assert.throws(() => commonMqtt.setProxy(t.handle, { host: '', port: 3128 }), InvalidInputError);
    assert.throws(() => commonMqtt.setProxy(t.handle, { host: 'proxy', port: 0 }), InvalidInputError);
    assert.throws(
      () => commonMqtt.setProxy(t.handle, { host: 'proxy', port: 3128, password: 'secret' }),
      (error: unknown) => error instanceof InvalidInputError && /without a user name/.test(error.message),
    );
    commonMqtt.setProxy(t.handle, { host: 'proxy-a', port: 3128 });
    commonMqtt.setProxy(t.handle, { host: 'proxy-b', port: 8080, username: 'u', password: 'p' });
    startRegistration(t.handle);
    return t.nextPeer().then(() => {
      assert.deepEqual(t.ioOptions[0]?.proxy, { host: 'proxy-b', port: 8080, username: 'u', password: 'p' });
      commonMqtt.destroy(t.handle);
    });
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_030: set_trusted_cert refuses what is not a PEM certificate', () => {
    const t = harness();
    assert.throws(() => commonMqtt.setTrustedCert(t.handle, 'not a certificate'), InvalidInputError);
    commonMqtt.destroy(t.handle);
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_023, PROV_TRANSPORT_MQTT_COMMON_07_059: set_trace toggles tracing on a live connection, with secrets redacted', async () => {
    const t = harness();
    const lines: string[] = [];
    commonMqtt.setOption(t.handle, 'traceSink', (line) => lines.push(line));
    commonMqtt.setTrace(t.handle, true);
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    const register = await t.acceptSession(peer);
    assert.ok(lines.some((line) => line.includes('-> CONNECT')));
    assert.ok(lines.some((line) => line.includes('<- CONNACK')));
    const signature = /sig=([^&]+)/.exec(challenge())![1]!;
    assert.equal(lines.join('\n').includes(decodeURIComponent(signature)), false);
    assert.equal(lines.join('\n').includes(signature), false);
    commonMqtt.setTrace(t.handle, false);
    const before = lines.length;
    peer.respond(200, requestIdOf(register.topic), ASSIGNED);
    await t.nextOutcome();
    assert.equal(lines.length, before, 'no trace once turned off');
    commonMqtt.destroy(t.handle);
  });

  test('setOption refuses unknown names and bad values', () => {
    const t = harness();
    assert.throws(() => commonMqtt.setOption(t.handle, 'keepAliveSeconds', -1), InvalidInputError);
    assert.throws(() => commonMqtt.setOption(t.handle, 'nonsense' as never, 1 as never), InvalidInputError);
    commonMqtt.destroy(t.handle);
  });

  test('PROV_TRANSPORT_MQTT_COMMON_07_006: destroy closes the connection and the handle is unusable afterwards', async () => {
    const t = harness();
    startRegistration(t.handle);
    const peer = await t.nextPeer();
    await t.acceptSession(peer);
    commonMqtt.destroy(t.handle);
    await peer.closed;
    assert.throws(() => commonMqtt.registerDevice(t.handle, { challenge }), InvalidStateError);
  });
});
