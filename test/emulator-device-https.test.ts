// The device API over HTTPS: the official `azure-iot-provisioning-device-http` transport registers
// against the emulator (symmetric key, group key, X.509), and raw node:https requests check the
// refusals, limits, faults and the registrar shared with MQTT.
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { DEVICE_API_ERROR_CODES } from '../src/emulator/device-api/device-api.js';
import type { EmulatorLogEntry } from '../src/emulator/log.js';
import { type CertificateAndKey, createRootCa, issueCertificate } from '../src/emulator/pki/pki.js';
import { buildCsr } from '../src/protocol/csr-builder.js';
import { createSasToken, deriveDeviceKey } from '../src/protocol/sas.js';
import { registerTopic } from '../src/protocol/topics.js';
import {
  parseResponse,
  publishPacket,
  RawMqttClient,
  sasConnectPacket,
  startTestEmulator,
  subscribePacket,
  type TestEmulator,
} from './helpers/emulator.js';

// The SDK packages are CommonJS; createRequire keeps their untyped corners out of the ESM import graph.
const require = createRequire(import.meta.url);
const { ProvisioningDeviceClient } =
  require('azure-iot-provisioning-device') as typeof import('azure-iot-provisioning-device');
const { Http } =
  require('azure-iot-provisioning-device-http') as typeof import('azure-iot-provisioning-device-http');
const { Mqtt } =
  require('azure-iot-provisioning-device-mqtt') as typeof import('azure-iot-provisioning-device-mqtt');
const { MqttBase } = require('azure-iot-mqtt-base') as typeof import('azure-iot-mqtt-base');
const { SymmetricKeySecurityClient } =
  require('azure-iot-security-symmetric-key') as typeof import('azure-iot-security-symmetric-key');
const { X509Security } = require('azure-iot-security-x509') as typeof import('azure-iot-security-x509');
// The HTTP layer under the transport (a dependency of azure-iot-provisioning-device-http). Handing a
// configured one to `new Http(httpBase)` is the SDK's way to set the CA and an agent.
const { Http: HttpBase } = require('azure-iot-http-base') as {
  Http: new () => { setOptions(options: { ca?: string; http?: { agent?: HttpsAgent } }): void };
};

type SecurityClient = Parameters<typeof ProvisioningDeviceClient.create>[3];
type Transport = Parameters<typeof ProvisioningDeviceClient.create>[2];

interface SdkResult {
  assignedHub?: string;
  deviceId?: string;
  registrationId?: string;
  status?: string;
  payload?: unknown;
  substatus?: string;
}

const ID_SCOPE = '0ne0000HTP1';
const INDIVIDUAL_KEY = Buffer.from('https-individual-primary-key-32b').toString('base64');
const GROUP_KEY = Buffer.from('https-symmetric-group-key-32-byt').toString('base64');
const HUBS = ['hub-a.azure-devices.net', 'hub-b.azure-devices.net'];

/**
 * The transport dials `https://{provisioningHost}:443` (azure-iot-http-base never sets a port unless
 * asked). An agent whose own options carry the emulator's address wins over the request's: Node's
 * Agent merges `this.options` over each request's options before it connects.
 */
function sdkHttpTransport(emulator: TestEmulator): Transport {
  const base = new HttpBase();
  base.setOptions({
    ca: emulator.caCertPem,
    http: { agent: new HttpsAgent({ host: emulator.host, port: emulator.wssPort }) },
  });
  return new Http(base as ConstructorParameters<typeof Http>[0]) as unknown as Transport;
}

function registerWithKey(
  emulator: TestEmulator,
  registrationId: string,
  key: string,
  payload?: unknown,
): Promise<SdkResult> {
  const client = ProvisioningDeviceClient.create(
    'localhost',
    emulator.idScope,
    sdkHttpTransport(emulator),
    // Two copies of azure-iot-common in the SDK's tree make the nominal types differ; the objects fit.
    new SymmetricKeySecurityClient(registrationId, key) as unknown as SecurityClient,
  );
  if (payload !== undefined)
    client.setProvisioningPayload(payload as Parameters<typeof client.setProvisioningPayload>[0]);
  return client.register() as Promise<SdkResult>;
}

function registerWithCertificate(
  emulator: TestEmulator,
  registrationId: string,
  certificate: CertificateAndKey,
): Promise<SdkResult> {
  const client = ProvisioningDeviceClient.create(
    'localhost',
    emulator.idScope,
    sdkHttpTransport(emulator),
    new X509Security(registrationId, { cert: certificate.certPem, key: certificate.keyPem }),
  );
  return client.register() as Promise<SdkResult>;
}

interface RawAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  /** Write the body in chunks without a Content-Length (chunked transfer). */
  chunked?: boolean;
  clientCertificate?: CertificateAndKey;
  /** A keep-alive agent, to see whether the emulator keeps the connection; none by default. */
  agent?: HttpsAgent;
}

/** One request on a fresh connection; resolves with the answer, rejects when the socket dies first. */
function raw(emulator: TestEmulator, options: RawRequest): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const request = httpsRequest(
      {
        host: emulator.host,
        port: emulator.wssPort,
        servername: 'localhost',
        ca: emulator.caCertPem,
        method: options.method ?? 'PUT',
        path: options.path,
        agent: options.agent ?? false,
        headers: {
          accept: 'application/json',
          'content-type': 'application/json; charset=utf-8',
          ...(body !== undefined && !options.chunked ? { 'content-length': body.length } : {}),
          ...options.headers,
        },
        ...(options.clientCertificate
          ? { cert: options.clientCertificate.certPem, key: options.clientCertificate.keyPem }
          : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {}
          resolve({ statusCode: response.statusCode ?? 0, headers: response.headers, text, json });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    if (body !== undefined) {
      if (options.chunked) {
        for (let offset = 0; offset < body.length; offset += 1024)
          request.write(body.subarray(offset, offset + 1024));
      } else {
        request.write(body);
      }
    }
    request.end();
  });
}

function sas(
  registrationId: string,
  key: string,
  options: { expiresAtSeconds?: number; raw?: boolean } = {},
) {
  return createSasToken({
    idScope: ID_SCOPE,
    registrationId,
    key,
    expiresAtSeconds: options.expiresAtSeconds ?? Math.floor(Date.now() / 1000) + 3600,
    resourceEncoding: options.raw ? 'raw' : 'encoded',
  });
}

const registerPath = (registrationId: string, apiVersion = '2019-03-31', idScope = ID_SCOPE) =>
  `/${idScope}/registrations/${registrationId}/register?api-version=${apiVersion}`;
const statusPath = (registrationId: string, operationId: string, apiVersion = '2019-03-31') =>
  `/${ID_SCOPE}/registrations/${registrationId}/operations/${encodeURIComponent(operationId)}?api-version=${apiVersion}`;

/** Register, then poll until assigned (bounded), over raw HTTPS with a SAS token. */
async function registerRaw(
  emulator: TestEmulator,
  registrationId: string,
  key: string,
  body: object = { registrationId },
  apiVersion = '2019-03-31',
): Promise<RawAnswer> {
  const authorization = sas(registrationId, key);
  const accepted = await raw(emulator, {
    path: registerPath(registrationId, apiVersion),
    headers: { authorization },
    body: JSON.stringify(body),
  });
  assert.equal(accepted.statusCode, 202, accepted.text);
  const operationId = String(accepted.json.operationId);
  for (let poll = 0; poll < 10; poll++) {
    const status = await raw(emulator, {
      method: 'GET',
      path: statusPath(registrationId, operationId, apiVersion),
      headers: { authorization },
      body: '{}',
    });
    if (status.statusCode !== 202) return status;
  }
  throw new Error('still assigning after 10 polls');
}

function assertErrorBody(answer: RawAnswer, statusCode: number, errorCode: number, message?: RegExp): void {
  assert.equal(answer.statusCode, statusCode, answer.text);
  assert.equal(answer.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(answer.json.errorCode, errorCode);
  assert.equal(typeof answer.json.trackingId, 'string');
  assert.equal(typeof answer.json.message, 'string');
  assert.ok(!Number.isNaN(Date.parse(String(answer.json.timestampUtc))));
  if (message) assert.match(String(answer.json.message), message);
}

describe('the device API over HTTPS', () => {
  let emulator: TestEmulator;
  let groupCa: CertificateAndKey;
  let intermediateCa: CertificateAndKey;
  let individualCertificate: CertificateAndKey;
  const log: EmulatorLogEntry[] = [];

  before(async () => {
    groupCa = await createRootCa({ commonName: 'https test group CA' });
    intermediateCa = await issueCertificate({
      issuer: groupCa,
      commonName: 'https test intermediate',
      usage: 'ca',
    });
    const selfSignedRoot = await createRootCa({ commonName: 'https individual device issuer' });
    individualCertificate = await issueCertificate({
      issuer: selfSignedRoot,
      commonName: 'https-x509-individual',
      usage: 'client',
    });
    const thumbprint = new X509Certificate(individualCertificate.certPem).fingerprint256;
    emulator = await startTestEmulator({
      logger: (entry) => log.push(entry),
      config: {
        idScope: ID_SCOPE,
        iotHubs: HUBS,
        individualEnrollments: [
          {
            registrationId: 'https-individual',
            attestation: { type: 'symmetricKey', primaryKey: INDIVIDUAL_KEY },
            deviceId: 'https-individual-device',
            iotHubs: ['static-hub.azure-devices.net'],
            allocationPolicy: 'static',
          },
          { registrationId: 'https-x509-individual', attestation: { type: 'x509', thumbprint } },
        ],
        enrollmentGroups: [
          {
            enrollmentGroupId: 'https-symmetric-group',
            attestation: { type: 'symmetricKey', primaryKey: GROUP_KEY },
          },
          {
            enrollmentGroupId: 'https-x509-group',
            attestation: { type: 'x509', caCertificate: groupCa.certPem },
          },
        ],
      },
    });
  });

  after(() => emulator.close());

  describe('the official HTTPS transport (azure-iot-provisioning-device-http)', () => {
    test('an individual symmetric-key enrollment registers with its device id and static hub', async () => {
      const result = await registerWithKey(emulator, 'https-individual', INDIVIDUAL_KEY);
      assert.equal(result.status, 'assigned');
      assert.equal(result.deviceId, 'https-individual-device');
      assert.equal(result.assignedHub, 'static-hub.azure-devices.net');
    });

    test('a device of a symmetric-key group registers with its derived key, payload echoed', async () => {
      const registrationId = 'https-group-device';
      const result = await registerWithKey(
        emulator,
        registrationId,
        deriveDeviceKey(GROUP_KEY, registrationId),
        {
          model: 'thermostat',
        },
      );
      assert.equal(result.status, 'assigned');
      assert.equal(result.deviceId, registrationId);
      assert.ok(HUBS.includes(result.assignedHub ?? ''));
      assert.deepEqual(result.payload, { model: 'thermostat' });
    });

    test('an individual X.509 enrollment registers with its TLS client certificate', async () => {
      const result = await registerWithCertificate(emulator, 'https-x509-individual', individualCertificate);
      assert.equal(result.status, 'assigned');
      assert.equal(result.deviceId, 'https-x509-individual');
    });

    test('an X.509 device whose chain leads to the group CA registers as its CN', async () => {
      const registrationId = 'https-x509-group-device';
      const leaf = await issueCertificate({
        issuer: intermediateCa,
        commonName: registrationId,
        usage: 'client',
      });
      const chain = { certPem: leaf.certPem + intermediateCa.certPem, keyPem: leaf.keyPem };
      const result = await registerWithCertificate(emulator, registrationId, chain);
      assert.equal(result.status, 'assigned');
      assert.equal(result.deviceId, registrationId);
    });

    test('a wrong key is refused with 401 (UnauthorizedError), not retried', async () => {
      const wrongKey = Buffer.from('this-is-not-the-enrolled-key-!!!').toString('base64');
      await assert.rejects(registerWithKey(emulator, 'https-individual', wrongKey), (error: Error) => {
        assert.equal(error.name, 'UnauthorizedError');
        const response = (error as Error & { response?: { statusCode?: number } }).response;
        assert.equal(response?.statusCode, 401);
        return true;
      });
    });

    test('the transport does not retry a 429: it ends the registration (docs/emulator.md says so)', async () => {
      const throttling = await startTestEmulator({
        config: { idScope: ID_SCOPE, enrollmentGroups: [groupOf()] },
        throttle: { firstRequests: 1, retryAfterSeconds: 0 },
      });
      try {
        const registrationId = 'https-throttled';
        await assert.rejects(
          registerWithKey(throttling, registrationId, deriveDeviceKey(GROUP_KEY, registrationId)),
          (error: Error) => {
            assert.equal((error as Error & { response?: { statusCode?: number } }).response?.statusCode, 429);
            return true;
          },
        );
        // The next attempt (a new registration by the application) goes through.
        const result = await registerWithKey(
          throttling,
          registrationId,
          deriveDeviceKey(GROUP_KEY, registrationId),
        );
        assert.equal(result.status, 'assigned');
      } finally {
        await throttling.close();
      }
    });

    test('a certificate that chains to no enrolled CA is refused with 401', async () => {
      const stranger = await createRootCa({ commonName: 'https-untrusted' });
      const leaf = await issueCertificate({
        issuer: stranger,
        commonName: 'https-untrusted',
        usage: 'client',
      });
      await assert.rejects(registerWithCertificate(emulator, 'https-untrusted', leaf), (error: Error) => {
        assert.equal(error.name, 'UnauthorizedError');
        return true;
      });
    });
  });

  describe('raw requests', () => {
    test('register answers 202 with operationId and retry-after; the status poll (GET with {}) 200', async () => {
      const authorization = sas('https-individual', INDIVIDUAL_KEY);
      const accepted = await raw(emulator, {
        path: registerPath('https-individual'),
        headers: { authorization },
        body: JSON.stringify({ registrationId: 'https-individual' }),
      });
      assert.equal(accepted.statusCode, 202);
      assert.equal(accepted.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(accepted.headers['retry-after'], '0');
      assert.equal(accepted.json.status, 'assigning');
      const operationId = String(accepted.json.operationId);
      const assigned = await raw(emulator, {
        method: 'GET',
        path: statusPath('https-individual', operationId),
        headers: { authorization },
        body: '{}',
      });
      assert.equal(assigned.statusCode, 200, assigned.text);
      assert.equal(assigned.json.status, 'assigned');
      const state = assigned.json.registrationState as Record<string, unknown>;
      assert.equal(state.deviceId, 'https-individual-device');
      assert.deepEqual(state.symmetricKey, {});
    });

    test('the token resource may be URL-encoded or raw', async () => {
      for (const rawResource of [false, true]) {
        const answer = await raw(emulator, {
          path: registerPath('https-individual'),
          headers: { authorization: sas('https-individual', INDIVIDUAL_KEY, { raw: rawResource }) },
          body: '{"registrationId":"https-individual"}',
        });
        assert.equal(answer.statusCode, 202, answer.text);
      }
    });

    test('a wrong ID scope is 401 with the DPS error body', async () => {
      const answer = await raw(emulator, {
        path: registerPath('https-individual', '2019-03-31', '0ne0000XXXX'),
        headers: { authorization: sas('https-individual', INDIVIDUAL_KEY) },
        body: '{"registrationId":"https-individual"}',
      });
      assertErrorBody(answer, 401, 401002, /ID scope "0ne0000XXXX"/);
    });

    test('no Authorization header and no client certificate is 401', async () => {
      const answer = await raw(emulator, {
        path: registerPath('https-individual'),
        body: '{"registrationId":"https-individual"}',
      });
      assertErrorBody(answer, 401, 401002, /no Authorization header and no TLS client certificate/);
    });

    test('an Authorization header that is not a SAS token is 401', async () => {
      const answer = await raw(emulator, {
        path: registerPath('https-individual'),
        headers: { authorization: 'Bearer abc' },
        body: '{}',
      });
      assertErrorBody(answer, 401, 401002, /not a SharedAccessSignature/);
    });

    test('an expired token is 401', async () => {
      const answer = await raw(emulator, {
        path: registerPath('https-individual'),
        headers: {
          authorization: sas('https-individual', INDIVIDUAL_KEY, {
            expiresAtSeconds: Math.floor(Date.now() / 1000) - 60,
          }),
        },
        body: '{"registrationId":"https-individual"}',
      });
      assertErrorBody(answer, 401, 401002, /expired/);
    });

    test("another device's token is 401", async () => {
      const answer = await raw(emulator, {
        path: registerPath('https-individual'),
        headers: {
          authorization: sas('https-group-device', deriveDeviceKey(GROUP_KEY, 'https-group-device')),
        },
        body: '{}',
      });
      assertErrorBody(answer, 401, 401002);
    });

    test("the body's registrationId must be the path's: 400", async () => {
      const answer = await raw(emulator, {
        path: registerPath('https-individual'),
        headers: { authorization: sas('https-individual', INDIVIDUAL_KEY) },
        body: '{"registrationId":"somebody-else"}',
      });
      assertErrorBody(answer, 400, 400004, /somebody-else/);
    });

    test('a body that is not JSON is 400 with the error body', async () => {
      const answer = await raw(emulator, {
        path: registerPath('https-individual'),
        headers: { authorization: sas('https-individual', INDIVIDUAL_KEY) },
        body: '{"registrationId": ',
      });
      assertErrorBody(answer, 400, 400004, /not JSON/);
    });

    test('a body above the size limit is 413 (declared or chunked), and the emulator carries on', async () => {
      const authorization = sas('https-individual', INDIVIDUAL_KEY);
      const huge = JSON.stringify({ registrationId: 'https-individual', payload: 'x'.repeat(70 * 1024) });
      const declared = await raw(emulator, {
        path: registerPath('https-individual'),
        headers: { authorization },
        body: huge,
      });
      assertErrorBody(declared, 413, DEVICE_API_ERROR_CODES.payloadTooLarge, /65536-byte limit/);
      const chunked = await raw(emulator, {
        path: registerPath('https-individual'),
        headers: { authorization },
        body: huge,
        chunked: true,
      });
      assertErrorBody(chunked, 413, DEVICE_API_ERROR_CODES.payloadTooLarge);
      const after = await raw(emulator, {
        path: registerPath('https-individual'),
        headers: { authorization },
        body: '{}',
      });
      assert.equal(after.statusCode, 202);
    });

    test("an unknown operation id is 404; so is another device's operation", async () => {
      const authorization = sas('https-individual', INDIVIDUAL_KEY);
      const unknown = await raw(emulator, {
        method: 'GET',
        path: statusPath('https-individual', '4.0000000000000000.00000000-0000-0000-0000-000000000000'),
        headers: { authorization },
        body: '{}',
      });
      assertErrorBody(unknown, 404, 404201);

      const other = 'https-other-device';
      const otherKey = deriveDeviceKey(GROUP_KEY, other);
      const accepted = await raw(emulator, {
        path: registerPath(other),
        headers: { authorization: sas(other, otherKey) },
        body: JSON.stringify({ registrationId: other }),
      });
      assert.equal(accepted.statusCode, 202);
      const stolen = await raw(emulator, {
        method: 'GET',
        path: statusPath('https-individual', String(accepted.json.operationId)),
        headers: { authorization },
        body: '{}',
      });
      assertErrorBody(stolen, 404, 404201);
    });

    test('wrong method (405 with Allow), missing api-version (400), invalid registration id (400)', async () => {
      const authorization = sas('https-individual', INDIVIDUAL_KEY);
      const wrongMethod = await raw(emulator, {
        method: 'GET',
        path: registerPath('https-individual'),
        headers: { authorization },
      });
      assertErrorBody(wrongMethod, 405, DEVICE_API_ERROR_CODES.methodNotAllowed);
      assert.equal(wrongMethod.headers.allow, 'PUT');
      const noVersion = await raw(emulator, {
        path: `/${ID_SCOPE}/registrations/https-individual/register`,
        headers: { authorization },
        body: '{}',
      });
      assertErrorBody(noVersion, 400, 400004, /api-version/);
      const badId = await raw(emulator, {
        path: registerPath('UPPER-case'),
        headers: { authorization },
        body: '{}',
      });
      assertErrorBody(badId, 400, 400004, /not a valid registration id/);
    });

    test('a request target that is not a URL gets 400, as a request or an upgrade; the emulator carries on', async () => {
      for (const head of [
        'GET http://[ HTTP/1.1\r\nHost: localhost\r\n\r\n',
        'GET http://[ HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n',
      ]) {
        const socket = tlsConnect({
          host: emulator.host,
          port: emulator.wssPort,
          ca: emulator.caCertPem,
          servername: 'localhost',
        });
        socket.on('error', () => {});
        await once(socket, 'secureConnect');
        socket.write(head);
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        await once(socket, 'close');
        assert.match(text, /^HTTP\/1\.1 (400|404) /);
      }
      const after = await raw(emulator, {
        path: registerPath('https-individual'),
        headers: { authorization: sas('https-individual', INDIVIDUAL_KEY) },
        body: '{}',
      });
      assert.equal(after.statusCode, 202);
    });

    test('a raw request with a TLS client certificate and no Authorization registers by X.509', async () => {
      const accepted = await raw(emulator, {
        path: registerPath('https-x509-individual'),
        body: '{"registrationId":"https-x509-individual"}',
        clientCertificate: individualCertificate,
      });
      assert.equal(accepted.statusCode, 202, accepted.text);
    });

    test('a csr in the body gets an issued chain (leaf, issuing CA, root) for the csr key', async () => {
      const registrationId = 'https-csr-device';
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
      const csr = buildCsr({ commonName: registrationId, privateKey, publicKey }).toString('base64');
      const assigned = await registerRaw(
        emulator,
        registrationId,
        deriveDeviceKey(GROUP_KEY, registrationId),
        { registrationId, csr },
        '2025-07-01-preview',
      );
      assert.equal(assigned.statusCode, 200, assigned.text);
      const state = assigned.json.registrationState as { issuedCertificateChain?: string[] };
      const chain = (state.issuedCertificateChain ?? []).map(
        (der) => new X509Certificate(Buffer.from(der, 'base64')),
      );
      assert.equal(chain.length, 3);
      assert.equal(chain[0]?.subject, `CN=${registrationId}`);
      assert.ok(chain[0]?.publicKey.equals(publicKey));
      assert.ok(chain[0]?.checkIssued(chain[1]!));
      assert.equal(
        chain[1]?.toString().trim(),
        new X509Certificate(emulator.issuingCaCertPem).toString().trim(),
      );
    });

    test('the same registration over MQTT and over HTTPS gets the same assignment', async () => {
      const registrationId = 'https-and-mqtt';
      const key = deriveDeviceKey(GROUP_KEY, registrationId);
      const base = new MqttBase();
      base.setOptions({ ca: emulator.caCertPem });
      const overMqtt = (await ProvisioningDeviceClient.create(
        `localhost:${emulator.mqttPort}`,
        emulator.idScope,
        new Mqtt(base),
        new SymmetricKeySecurityClient(registrationId, key) as unknown as SecurityClient,
      ).register()) as SdkResult;
      assert.equal(overMqtt.status, 'assigned');
      const overHttps = await registerRaw(emulator, registrationId, key);
      assert.equal(overHttps.statusCode, 200);
      const state = overHttps.json.registrationState as Record<string, unknown>;
      assert.equal(state.assignedHub, overMqtt.assignedHub);
      assert.equal(state.deviceId, overMqtt.deviceId);
      assert.deepEqual(state.symmetricKey, { enrollmentGroupId: 'https-symmetric-group' });
      const records = emulator.registrations().filter((record) => record.registrationId === registrationId);
      assert.equal(records.length, 1);
      assert.equal(state.createdDateTimeUtc, records[0]?.createdDateTimeUtc);
    });

    test('the log shows HTTPS requests and never a key or a signature', () => {
      const text = JSON.stringify(log);
      const httpsEntries = log.filter((entry) => entry.transport === 'https' && entry.event === 'request');
      assert.ok(httpsEntries.length > 10);
      assert.ok(httpsEntries.some((entry) => entry.statusCode === 401 && typeof entry.reason === 'string'));
      assert.ok(!text.includes(INDIVIDUAL_KEY));
      assert.ok(!text.includes(GROUP_KEY));
      // The Authorization header is not logged at all, not even redacted.
      assert.ok(!/sig=|skn=/.test(text));
      assert.ok(!text.includes('Bearer abc'));
    });
  });
});

describe('the device API over HTTPS with throttling and faults', () => {
  const key = deriveDeviceKey(GROUP_KEY, 'https-faulty');

  test('a throttled request is 429 with retry-after, counted with MQTT requests', async () => {
    const emulator = await startTestEmulator({
      config: { idScope: ID_SCOPE, enrollmentGroups: [groupOf()] },
      throttle: { firstRequests: 1, retryAfterSeconds: 7 },
    });
    try {
      const authorization = sas('https-faulty', key);
      const throttled = await raw(emulator, {
        path: registerPath('https-faulty'),
        headers: { authorization },
        body: '{}',
      });
      assertErrorBody(throttled, 429, 429001);
      assert.equal(throttled.headers['retry-after'], '7');
      const accepted = await raw(emulator, {
        path: registerPath('https-faulty'),
        headers: { authorization },
        body: '{}',
      });
      assert.equal(accepted.statusCode, 202);
    } finally {
      await emulator.close();
    }
  });

  test('one request count across transports: MQTT takes the throttled 1st and 3rd, HTTPS the 2nd', async () => {
    const emulator = await startTestEmulator({
      config: { idScope: ID_SCOPE, enrollmentGroups: [groupOf()] },
      throttle: { firstRequests: 1, fraction: 0.5, retryAfterSeconds: 3 },
    });
    const client = await RawMqttClient.connect({
      port: emulator.mqttPort,
      transport: 'mqtt',
      ca: emulator.caCertPem,
    });
    try {
      client.send(sasConnectPacket({ idScope: ID_SCOPE, registrationId: 'https-faulty', key }));
      assert.equal((await client.expect('connack')).returnCode, 0);
      client.send(subscribePacket());
      await client.expect('suback');
      const mqttRequest = async (messageId: number) => {
        client.send(publishPacket(registerTopic(`r${messageId}`), {}, { messageId }));
        await client.expect('puback');
        return parseResponse(await client.expect('publish'));
      };
      // Request 1 (MQTT): within firstRequests.
      const first = await mqttRequest(1);
      assert.equal(first.statusCode, 429);
      assert.equal(first.retryAfter, '3');
      // Request 2 (HTTPS): the fraction's first step is request 2 after those, so this one passes.
      const second = await raw(emulator, {
        path: registerPath('https-faulty'),
        headers: { authorization: sas('https-faulty', key) },
        body: '{}',
      });
      assert.equal(second.statusCode, 202, second.text);
      // Request 3 (HTTPS) is throttled, request 4 (MQTT) is not.
      const third = await raw(emulator, {
        path: registerPath('https-faulty'),
        headers: { authorization: sas('https-faulty', key) },
        body: '{}',
      });
      assertErrorBody(third, 429, 429001);
      assert.equal(third.headers['retry-after'], '3');
      assert.equal((await mqttRequest(4)).statusCode, 202);
    } finally {
      client.close();
      await emulator.close();
    }
  });

  test('responseDelayMs holds the answer back; stopping the emulator meanwhile ends the request', async () => {
    let seen: () => void = () => {};
    const requestSeen = new Promise<void>((resolve) => {
      seen = resolve;
    });
    const emulator = await startTestEmulator({
      config: { idScope: ID_SCOPE, enrollmentGroups: [groupOf()] },
      faults: { responseDelayMs: 60_000 },
      logger: (entry) => {
        if (entry.event === 'request' && entry.transport === 'https') seen();
      },
    });
    let stopped = false;
    const pending = raw(emulator, {
      path: registerPath('https-faulty'),
      headers: { authorization: sas('https-faulty', key) },
      body: '{}',
    }).then(
      () => assert.fail('answered despite the delay'),
      (error: Error) => {
        assert.ok(stopped, `failed before the emulator stopped: ${error.message}`);
      },
    );
    // The request is in (and held) once the log shows it; then stop the emulator.
    await requestSeen;
    stopped = true;
    await emulator.close();
    await pending;
  });

  test('dropBeforeRequest destroys the socket unanswered; dropAfterResponse answers then closes', async () => {
    const emulator = await startTestEmulator({
      config: { idScope: ID_SCOPE, enrollmentGroups: [groupOf()] },
      faults: { dropBeforeRequest: 1, dropAfterResponse: 2 },
    });
    try {
      const authorization = sas('https-faulty', key);
      await assert.rejects(
        raw(emulator, { path: registerPath('https-faulty'), headers: { authorization }, body: '{}' }),
        /socket hang up|ECONNRESET/,
      );
      const agent = new HttpsAgent({ keepAlive: true });
      const answered = await raw(emulator, {
        path: registerPath('https-faulty'),
        headers: { authorization },
        body: '{}',
        agent,
      });
      assert.equal(answered.statusCode, 202);
      assert.equal(answered.headers.connection, 'close');
      const next = await raw(emulator, {
        path: registerPath('https-faulty'),
        headers: { authorization },
        body: '{}',
        agent,
      });
      agent.destroy();
      assert.equal(next.statusCode, 202);
      assert.equal(next.headers.connection, 'keep-alive');
    } finally {
      await emulator.close();
    }
  });

  test('a body that does not arrive in time is 408', async () => {
    const emulator = await startTestEmulator({
      config: { idScope: ID_SCOPE, enrollmentGroups: [groupOf()] },
      connectTimeoutMs: 300,
    });
    try {
      const answer = await new Promise<{ statusCode: number; json: Record<string, unknown> }>(
        (resolve, reject) => {
          const request = httpsRequest(
            {
              host: emulator.host,
              port: emulator.wssPort,
              servername: 'localhost',
              ca: emulator.caCertPem,
              method: 'PUT',
              path: registerPath('https-faulty'),
              agent: false,
              headers: { authorization: sas('https-faulty', key), 'content-length': 100 },
            },
            (response) => {
              let text = '';
              response.on('data', (chunk: Buffer) => {
                text += chunk.toString();
              });
              response.on('end', () =>
                resolve({ statusCode: response.statusCode ?? 0, json: JSON.parse(text) }),
              );
            },
          );
          request.on('error', reject);
          request.write('{"regis'); // and never the rest
        },
      );
      assert.equal(answer.statusCode, 408);
      assert.equal(answer.json.errorCode, DEVICE_API_ERROR_CODES.requestTimeout);
    } finally {
      await emulator.close();
    }
  });
});

function groupOf() {
  return {
    enrollmentGroupId: 'faulty-group',
    attestation: { type: 'symmetricKey' as const, primaryKey: GROUP_KEY },
  };
}
