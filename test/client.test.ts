// register() end to end over real sockets against the emulator, for both transports.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deviceConnectionString } from '../src/client/connection-string.js';
import { register } from '../src/client/register.js';
import type { ProgressEvent, ProvisioningClientOptions, TransportKind } from '../src/client/types.js';
import { DEMO_DEVICE_ID, DEMO_DEVICE_KEY, DEMO_GROUP_KEY, issueCertificate } from '../src/emulator/index.js';
import {
  AbortError,
  AuthenticationError,
  InvalidInputError,
  NotSupportedError,
  TimeoutError,
} from '../src/protocol/errors.js';
import { deriveDeviceKey } from '../src/protocol/sas.js';
import { startTestEmulator, type TestEmulator } from './helpers/emulator.js';
import { startConnectProxy } from './support/net.js';

const TRANSPORTS: TransportKind[] = ['mqtt-ws', 'mqtt'];

let emulator: TestEmulator;
before(async () => {
  emulator = await startTestEmulator();
});
after(() => emulator.close());

function endpointOf(target: TestEmulator, transport: TransportKind): string {
  return `localhost:${transport === 'mqtt' ? target.mqttPort : target.wssPort}`;
}

function optionsFor(
  target: TestEmulator,
  transport: TransportKind,
  registrationId: string,
  extra: Partial<ProvisioningClientOptions> = {},
): ProvisioningClientOptions {
  return {
    idScope: target.idScope,
    registrationId,
    security: { groupKey: DEMO_GROUP_KEY },
    endpoint: endpointOf(target, transport),
    transport,
    trustedCa: target.caCertPem,
    timeoutMs: 20_000,
    retry: { initialDelayMs: 20, maxDelayMs: 200 },
    ...extra,
  };
}

for (const transport of TRANSPORTS) {
  describe(`register() over ${transport}`, () => {
    test('an individual enrollment with a symmetric key', async () => {
      const result = await register(
        optionsFor(emulator, transport, DEMO_DEVICE_ID, { security: { symmetricKey: DEMO_DEVICE_KEY } }),
      );
      assert.equal(result.status, 'assigned');
      assert.equal(result.registrationId, DEMO_DEVICE_ID);
      assert.ok(result.assignedHub.length > 0);
      assert.equal(
        deviceConnectionString(result, DEMO_DEVICE_KEY),
        `HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${DEMO_DEVICE_KEY}`,
      );
    });

    test('a group enrollment: the device key is derived for the registration id', async () => {
      const events: ProgressEvent[] = [];
      const registrationId = `group-${transport}-1`;
      const result = await register(
        optionsFor(emulator, transport, registrationId, {
          onProgress: (event) => events.push(event),
          payload: { a: 1 },
        }),
      );
      assert.equal(result.deviceId, registrationId);
      assert.equal(result.registrationState.symmetricKey?.enrollmentGroupId, 'demo-group');
      assert.deepEqual(
        events.map((event) => event.type),
        ['connecting', 'connected', 'registering', 'assigning', 'assigned'],
      );
      assert.equal(result.timings.connections, 1);
      assert.equal(result.timings.polls, 1);
    });

    test('an X.509 device: the registration id defaults to the certificate CN', async () => {
      const registrationId = `x509-${transport}-1`;
      const device = await issueCertificate({
        issuer: emulator.pki.ca,
        commonName: registrationId,
        usage: 'client',
      });
      const result = await register({
        ...optionsFor(emulator, transport, registrationId),
        registrationId: undefined,
        security: { certificate: device.certPem, privateKey: device.keyPem },
      });
      assert.equal(result.deviceId, registrationId);
      assert.equal(result.attestation, 'x509');
      assert.equal(
        deviceConnectionString(result),
        `HostName=${result.assignedHub};DeviceId=${registrationId};x509=true`,
      );
    });

    test('through a real CONNECT proxy with Basic auth', async () => {
      const expected = `Basic ${Buffer.from('alice:pr0xy-Pass').toString('base64')}`;
      const proxy = await startConnectProxy({
        authenticate: (request) => request.headers['proxy-authorization'] === expected,
      });
      try {
        const result = await register(
          optionsFor(emulator, transport, `proxied-${transport}`, {
            proxy: `http://alice:pr0xy-Pass@127.0.0.1:${proxy.port}`,
          }),
        );
        assert.equal(result.status, 'assigned');
        assert.deepEqual(proxy.targets, [endpointOf(emulator, transport)]);
      } finally {
        await proxy.close();
      }
    });

    test('a refused key fails at once with an AuthenticationError and a hint', async () => {
      const wrongKey = deriveDeviceKey(DEMO_GROUP_KEY, 'someone-else');
      const started = Date.now();
      await assert.rejects(
        register(
          optionsFor(emulator, transport, `wrong-key-${transport}`, { security: { symmetricKey: wrongKey } }),
        ),
        (error: unknown) => error instanceof AuthenticationError && error.hint !== undefined,
      );
      assert.ok(Date.now() - started < 5000, 'no retry loop');
    });
  });

  describe(`resilience over ${transport}`, () => {
    test('throttling (429 with retry-after) still ends assigned', async () => {
      const throttled = await startTestEmulator({ throttle: { firstRequests: 2, retryAfterSeconds: 0 } });
      try {
        const events: ProgressEvent[] = [];
        const result = await register(
          optionsFor(throttled, transport, `throttled-${transport}`, {
            onProgress: (event) => events.push(event),
          }),
        );
        assert.equal(result.status, 'assigned');
        assert.equal(events.filter((event) => event.type === 'transient').length, 2);
      } finally {
        await throttled.close();
      }
    });

    const drops: Array<[string, object]> = [
      ['before CONNACK', { dropBeforeConnack: 1 }],
      ['after SUBSCRIBE', { dropAfterSuback: 1 }],
      ['after the register publish', { dropBeforeRequest: 1 }],
      ['between polls', { dropAfterResponse: 1 }],
      ['during a poll', { dropBeforeRequest: 2 }],
    ];
    for (const [name, faults] of drops) {
      test(`a connection drop ${name} is survived: reconnect and resume`, async () => {
        const faulty = await startTestEmulator({ faults, pollsBeforeAssignment: 1 });
        try {
          const result = await register(
            optionsFor(faulty, transport, `drop-${transport}-${name.replace(/ /g, '-').toLowerCase()}`),
          );
          assert.equal(result.status, 'assigned');
          assert.equal(result.timings.connections, 2);
        } finally {
          await faulty.close();
        }
      });
    }
  });
}

describe('register(): input, deadline and cleanup', () => {
  const bad: Array<[string, Partial<ProvisioningClientOptions>, string]> = [
    ['a missing ID scope', { idScope: '' }, 'idScope'],
    ['an invalid registration id', { registrationId: 'Not_Valid' }, 'registrationId'],
    ['a truncated key', { security: { symmetricKey: 'abc' } }, 'symmetricKey'],
    ['an endpoint with a scheme', { endpoint: 'https://dps.example' }, 'endpoint'],
    ['an unknown transport', { transport: 'amqp' as TransportKind }, 'transport'],
    ['a proxy password without a user', { proxy: 'http://:secret@127.0.0.1:3128' }, 'proxy'],
    [
      'an unreadable certificate file',
      { security: { certificate: '/nonexistent.pem', privateKey: '/nonexistent.key' } },
      'certificate',
    ],
  ];
  for (const [name, override, field] of bad) {
    test(`${name} is an InvalidInputError before any network I/O`, async () => {
      await assert.rejects(
        register({ ...optionsFor(emulator, 'mqtt-ws', 'dev-bad'), endpoint: 'localhost:1', ...override }),
        (error: unknown) => error instanceof InvalidInputError && error.field === field,
      );
    });
  }

  test('a certificate whose CN is not the registration id is refused before connecting', async () => {
    const device = await issueCertificate({
      issuer: emulator.pki.ca,
      commonName: 'cn-device',
      usage: 'client',
    });
    await assert.rejects(
      register({
        ...optionsFor(emulator, 'mqtt-ws', 'other-id'),
        security: { certificate: device.certPem, privateKey: device.keyPem },
      }),
      (error: unknown) => error instanceof InvalidInputError && /CN/.test(error.message),
    );
  });

  test('a certificate with the wrong private key is refused before connecting', async () => {
    const one = await issueCertificate({ issuer: emulator.pki.ca, commonName: 'key-a', usage: 'client' });
    const two = await issueCertificate({ issuer: emulator.pki.ca, commonName: 'key-b', usage: 'client' });
    await assert.rejects(
      register({
        ...optionsFor(emulator, 'mqtt-ws', 'key-a'),
        security: { certificate: one.certPem, privateKey: two.keyPem },
      }),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'privateKey',
    );
  });

  test('the deadline bounds a server that never answers', async () => {
    const slow = await startTestEmulator({ faults: { responseDelayMs: 60_000 } });
    try {
      await assert.rejects(
        register(optionsFor(slow, 'mqtt-ws', 'deadline-1', { timeoutMs: 300 })),
        (error: unknown) => error instanceof TimeoutError,
      );
    } finally {
      await slow.close();
    }
  });

  test('an aborted register() rejects promptly and closes its socket', async () => {
    const slow = await startTestEmulator({ faults: { responseDelayMs: 60_000 } });
    try {
      const controller = new AbortController();
      const pending = register(
        optionsFor(slow, 'mqtt-ws', 'abort-1', {
          onProgress: (event) => event.type === 'registering' && controller.abort(),
        }),
        { signal: controller.signal },
      );
      await assert.rejects(pending, AbortError);
      const started = Date.now();
      while (slow.connectionCount() > 0 && Date.now() - started < 5000)
        await new Promise((r) => setTimeout(r, 5));
      assert.equal(slow.connectionCount(), 0, 'the emulator saw the connection close');
    } finally {
      await slow.close();
    }
  });

  test('TPM is not offered over MQTT', async () => {
    const { commonMqtt } = await import('../src/transport/common.js');
    assert.throws(
      () =>
        commonMqtt.create(
          { uri: 'x', hsmType: 'tpm', idScope: '0ne1', registrationId: 'd', apiVersion: '2019-03-31' },
          {
            transportIo: async () => {
              throw new Error('unused');
            },
            defaultPort: 443,
            transportName: 't',
          },
        ),
      NotSupportedError,
    );
  });
});
