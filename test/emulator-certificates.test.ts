// Certificate issuance in the emulator (issue 11): a register request with a CSR gets a chain signed by
// the emulator's issuing CA, checked by independent tools (openssl, node:tls); bad CSRs get a 400 that
// says exactly what is wrong; the policy comes from the configuration and the flags.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { runEmulatorCli } from '../src/emulator/cli.js';
import { DEMO_DEVICE_ID, DEMO_DEVICE_KEY, parseEmulatorConfig } from '../src/emulator/enrollments/config.js';
import { startEmulator } from '../src/emulator/index.js';
import { ensureEmulatorPki } from '../src/emulator/pki/pki.js';
import { CertificateIssuer, CSR_ERROR_CODES } from '../src/emulator/registrar/certificate-issuer.js';
import { deriveDeviceKey } from '../src/protocol/sas.js';
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

const execFileAsync = promisify(execFile);

const ISSUANCE_API_VERSION = '2025-07-01-preview';
const ID_SCOPE = '0ne0000CERT';
const KEY = Buffer.from('certificate-issuance-test-key-01').toString('base64');
const DAY_MS = 24 * 3600 * 1000;

const config = {
  idScope: ID_SCOPE,
  iotHubs: ['cert-hub.azure-devices.net'],
  individualEnrollments: [
    { registrationId: 'cert-dev', attestation: { type: 'symmetricKey' as const, primaryKey: KEY } },
    {
      registrationId: 'cert-strict',
      attestation: { type: 'symmetricKey' as const, primaryKey: KEY },
      certificateIssuance: { keyTypes: ['ec-p384' as const] },
    },
    {
      registrationId: 'cert-short',
      attestation: { type: 'symmetricKey' as const, primaryKey: KEY },
      certificateIssuance: { validityDays: 7 },
    },
    {
      registrationId: 'cert-long',
      attestation: { type: 'symmetricKey' as const, primaryKey: KEY },
      certificateIssuance: { validityDays: 90 },
    },
  ],
  enrollmentGroups: [
    {
      enrollmentGroupId: 'cert-rsa-only-group',
      attestation: { type: 'symmetricKey' as const, primaryKey: KEY },
      certificateIssuance: { keyTypes: ['rsa' as const] },
    },
  ],
};

type KeyKind = 'ec-p384' | 'ec-p256' | 'rsa-2048' | 'rsa-1024';

const NEW_KEY_ARGS: Record<KeyKind, string> = {
  'ec-p384': '-newkey ec -pkeyopt ec_paramgen_curve:P-384',
  'ec-p256': '-newkey ec -pkeyopt ec_paramgen_curve:P-256',
  'rsa-2048': '-newkey rsa:2048',
  'rsa-1024': '-newkey rsa:1024',
};

let workDir: { path: string; remove(): Promise<void> };
let fileCounter = 0;

/** A CSR from an independent producer: `openssl req -new ... -outform DER | base64 -w0`, and its key. */
async function opensslCsr(kind: KeyKind, commonName: string): Promise<{ csr: string; keyPem: string }> {
  const keyPath = join(workDir.path, `key-${++fileCounter}.pem`);
  const { stdout } = await execFileAsync(
    'sh',
    [
      '-c',
      `openssl req -new ${NEW_KEY_ARGS[kind]} -nodes -keyout "$1" -subj "/CN=$2" -outform DER | base64 -w0`,
      'sh',
      keyPath,
      commonName,
    ],
    { timeout: 30_000 },
  );
  return { csr: stdout.trim(), keyPem: await readFile(keyPath, 'utf8') };
}

async function openssl(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('openssl', args, { timeout: 30_000 });
  return stdout;
}

function pem(base64Der: string): string {
  return `-----BEGIN CERTIFICATE-----\n${base64Der.match(/.{1,64}/g)?.join('\n')}\n-----END CERTIFICATE-----\n`;
}

async function writeTemporary(name: string, text: string): Promise<string> {
  const path = join(workDir.path, `${++fileCounter}-${name}`);
  await writeFile(path, text);
  return path;
}

async function connectDevice(
  emulator: { mqttPort: number; wssPort: number; idScope: string; caCertPem: string },
  options: { registrationId: string; transport?: 'mqtt' | 'wss'; apiVersion?: string; key?: string },
): Promise<RawMqttClient> {
  const client = await RawMqttClient.connect({
    port: options.transport === 'wss' ? emulator.wssPort : emulator.mqttPort,
    transport: options.transport ?? 'mqtt',
    ca: emulator.caCertPem,
  });
  client.send(
    sasConnectPacket({
      idScope: emulator.idScope,
      registrationId: options.registrationId,
      key: options.key ?? KEY,
      apiVersion: options.apiVersion ?? ISSUANCE_API_VERSION,
    }),
  );
  assert.equal((await client.expect('connack')).returnCode, 0);
  client.send(subscribePacket());
  await client.expect('suback');
  return client;
}

async function request(client: RawMqttClient, topic: string, body: string | object = ' ') {
  client.send(publishPacket(topic, body, { qos: 0 }));
  const packet = await client.expect('publish');
  if (packet.qos === 1) client.send({ cmd: 'puback', messageId: packet.messageId ?? 0 });
  return parseResponse(packet);
}

/** Register, then poll until the final answer; the 202 must not carry a chain. */
async function registerWith(client: RawMqttClient, body: object) {
  const accepted = await request(client, registerTopic('reg'), body);
  if (accepted.statusCode !== 202) return accepted;
  assert.equal(JSON.stringify(accepted.body).includes('issuedCertificateChain'), false, 'never in a 202');
  for (let poll = 0; poll < 10; poll++) {
    const answer = await request(
      client,
      operationStatusTopic(`poll${poll}`, String(accepted.body.operationId)),
    );
    if (answer.statusCode !== 202) return answer;
    assert.equal(JSON.stringify(answer.body).includes('issuedCertificateChain'), false, 'never in a 202');
  }
  throw new Error('no final answer after 10 polls');
}

async function registerOnce(
  emulator: TestEmulator,
  options: {
    registrationId: string;
    body: object;
    transport?: 'mqtt' | 'wss';
    apiVersion?: string;
    key?: string;
  },
) {
  const client = await connectDevice(emulator, options);
  try {
    return await registerWith(client, options.body);
  } finally {
    client.close();
  }
}

function chainOf(answer: { body: Record<string, unknown> }): string[] {
  const state = answer.body.registrationState as Record<string, unknown>;
  const chain = state.issuedCertificateChain;
  assert.ok(Array.isArray(chain), `no issuedCertificateChain in ${JSON.stringify(answer.body)}`);
  return chain as string[];
}

/** Resolves with what the server saw of a TLS client connecting with `key` and `certChainPem`. */
async function tlsClientCertificateAccepted(options: {
  serverCert: { certPem: string; keyPem: string };
  trustedRootPem: string;
  keyPem: string;
  certChainPem: string;
}): Promise<{ authorized: boolean; peerCommonName: string | undefined; error?: string }> {
  const server = createTlsServer({
    cert: options.serverCert.certPem,
    key: options.serverCert.keyPem,
    ca: options.trustedRootPem,
    requestCert: true,
    rejectUnauthorized: true,
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const outcome = new Promise<{ authorized: boolean; peerCommonName: string | undefined; error?: string }>(
      (resolve) => {
        server.once('secureConnection', (socket: TLSSocket) => {
          const subject = socket.getPeerCertificate().subject as { CN?: string } | undefined;
          resolve({ authorized: socket.authorized, peerCommonName: subject?.CN });
          socket.end();
        });
        server.once('tlsClientError', (error) =>
          resolve({ authorized: false, peerCommonName: undefined, error: error.message }),
        );
      },
    );
    const { port } = server.address() as { port: number };
    const client = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: options.trustedRootPem,
      key: options.keyPem,
      cert: options.certChainPem,
    });
    client.on('error', () => {});
    const result = await outcome;
    client.destroy();
    return result;
  } finally {
    server.close();
  }
}

before(async () => {
  workDir = await temporaryDirectory('dps-mqtt-cert-test-');
});
after(() => workDir.remove());

describe('emulator: certificate issuance over raw MQTT', () => {
  let emulator: TestEmulator;
  before(async () => {
    emulator = await startTestEmulator({ config });
  });
  after(() => emulator.close());

  const cases: Array<{ kind: KeyKind; transport: 'mqtt' | 'wss'; publicKeyText: RegExp }> = [
    { kind: 'ec-p384', transport: 'mqtt', publicKeyText: /Public-Key: \(384 bit\)[\s\S]*NIST CURVE: P-384/ },
    { kind: 'ec-p384', transport: 'wss', publicKeyText: /Public-Key: \(384 bit\)[\s\S]*NIST CURVE: P-384/ },
    { kind: 'ec-p256', transport: 'mqtt', publicKeyText: /Public-Key: \(256 bit\)[\s\S]*NIST CURVE: P-256/ },
    { kind: 'ec-p256', transport: 'wss', publicKeyText: /Public-Key: \(256 bit\)[\s\S]*NIST CURVE: P-256/ },
    { kind: 'rsa-2048', transport: 'mqtt', publicKeyText: /Public-Key: \(2048 bit\)/ },
    { kind: 'rsa-2048', transport: 'wss', publicKeyText: /Public-Key: \(2048 bit\)/ },
  ];
  for (const { kind, transport, publicKeyText } of cases) {
    test(`an openssl ${kind} CSR over ${transport} gets leaf, issuing CA, root: openssl verifies it, it has the DPS profile, and it works as a TLS client certificate`, async () => {
      const { csr, keyPem } = await opensslCsr(kind, 'cert-dev');
      const answer = await registerOnce(emulator, {
        registrationId: 'cert-dev',
        transport,
        body: { registrationId: 'cert-dev', csr },
      });
      assert.equal(answer.statusCode, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.status, 'assigned');
      const chain = chainOf(answer);
      assert.equal(chain.length, 3, 'exactly three certificates: leaf, issuing CA, root');
      for (const element of chain) assert.match(element, /^[A-Za-z0-9+/]+={0,2}$/, 'base64 on one line');
      const [leafB64, issuingB64, rootB64] = chain as [string, string, string];
      assert.equal(pem(rootB64), new X509Certificate(emulator.caCertPem).toString());
      assert.equal(pem(issuingB64), new X509Certificate(emulator.issuingCaCertPem).toString());

      const rootPath = await writeTemporary('root.pem', pem(rootB64));
      const issuingPath = await writeTemporary('issuing.pem', pem(issuingB64));
      const leafPath = await writeTemporary('leaf.pem', pem(leafB64));
      const verified = await openssl(['verify', '-CAfile', rootPath, '-untrusted', issuingPath, leafPath]);
      assert.equal(verified.trim(), `${leafPath}: OK`);

      const text = await openssl(['x509', '-in', leafPath, '-noout', '-text']);
      assert.match(text, /Version: 3 \(0x2\)/);
      assert.match(text, /Signature Algorithm: ecdsa-with-SHA384/);
      assert.match(text, /Issuer: CN = dps-mqtt emulator issuing CA/);
      assert.match(text, /Subject: CN = cert-dev\n/, 'the subject is CN=registrationId only');
      assert.doesNotMatch(text, /Subject Alternative Name/);
      assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
      assert.match(text, /X509v3 Extended Key Usage: \n?\s*TLS Web Client Authentication\n/);
      assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
      assert.match(text, /X509v3 Subject Key Identifier/);
      assert.match(text, /X509v3 Authority Key Identifier/);
      assert.match(text, publicKeyText);

      const leaf = new X509Certificate(pem(leafB64));
      const lifetimeMs = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
      assert.equal(lifetimeMs, 30 * DAY_MS, 'the default policy: 30 days');
      assert.ok(Date.parse(leaf.validFrom) <= Date.now(), 'valid now');
      assert.equal(leaf.serialNumber.length, 32, 'a 16-byte serial');
      assert.ok(Number.parseInt(leaf.serialNumber.slice(0, 2), 16) < 0x80, 'a positive serial');
      assert.equal(
        leaf.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        createPublicKey(keyPem).export({ type: 'spki', format: 'der' }).toString('base64'),
        "the leaf carries the CSR's key",
      );

      const seen = await tlsClientCertificateAccepted({
        serverCert: emulator.pki.server,
        trustedRootPem: emulator.caCertPem,
        keyPem,
        certChainPem: pem(leafB64) + pem(issuingB64),
      });
      assert.deepEqual(seen, { authorized: true, peerCommonName: 'cert-dev' });
    });
  }

  test('registrationId may be left out of the body when csr is there', async () => {
    const { csr } = await opensslCsr('ec-p384', 'cert-dev');
    const answer = await registerOnce(emulator, { registrationId: 'cert-dev', body: { csr } });
    assert.equal(answer.statusCode, 200);
    assert.equal(chainOf(answer).length, 3);
  });

  test('a registration without csr gets no issuedCertificateChain, even with the issuance api-version', async () => {
    const answer = await registerOnce(emulator, {
      registrationId: 'cert-dev',
      body: { registrationId: 'cert-dev' },
    });
    assert.equal(answer.statusCode, 200);
    const state = answer.body.registrationState as Record<string, unknown>;
    assert.equal(state.status, 'assigned');
    assert.equal('issuedCertificateChain' in state, false);
  });

  test('re-registering with a new CSR renews: a new certificate for the new key, same hub and device id', async () => {
    const first = await opensslCsr('ec-p256', 'cert-dev');
    const second = await opensslCsr('ec-p256', 'cert-dev');
    const one = await registerOnce(emulator, { registrationId: 'cert-dev', body: { csr: first.csr } });
    const two = await registerOnce(emulator, { registrationId: 'cert-dev', body: { csr: second.csr } });
    const leafOne = new X509Certificate(pem(chainOf(one)[0]!));
    const leafTwo = new X509Certificate(pem(chainOf(two)[0]!));
    assert.notEqual(leafOne.serialNumber, leafTwo.serialNumber);
    assert.ok(leafTwo.checkPrivateKey(createPrivateKey(second.keyPem)));
    const stateOne = one.body.registrationState as Record<string, unknown>;
    const stateTwo = two.body.registrationState as Record<string, unknown>;
    assert.equal(stateTwo.assignedHub, stateOne.assignedHub);
    assert.equal(stateTwo.deviceId, stateOne.deviceId);
    assert.equal(stateTwo.createdDateTimeUtc, stateOne.createdDateTimeUtc);
    const record = emulator.registrations().find((entry) => entry.registrationId === 'cert-dev');
    assert.equal(record?.issuedCertificate?.serialNumber, leafTwo.serialNumber);
  });

  test('a status query for the same operation returns the same chain (no second certificate)', async () => {
    const { csr } = await opensslCsr('ec-p384', 'cert-dev');
    const client = await connectDevice(emulator, { registrationId: 'cert-dev' });
    try {
      const accepted = await request(client, registerTopic('r'), { csr });
      const operationId = String(accepted.body.operationId);
      const first = await request(client, operationStatusTopic('p1', operationId));
      const again = await request(client, operationStatusTopic('p2', operationId));
      assert.deepEqual(chainOf(again), chainOf(first));
    } finally {
      client.close();
    }
  });

  test('the enrollment policy sets the validity: 7 days and 90 days are honoured', async () => {
    for (const [registrationId, days] of [
      ['cert-short', 7],
      ['cert-long', 90],
    ] as const) {
      const { csr } = await opensslCsr('ec-p384', registrationId);
      const answer = await registerOnce(emulator, { registrationId, body: { csr } });
      const leafPath = await writeTemporary('leaf.pem', pem(chainOf(answer)[0]!));
      const dates = await openssl(['x509', '-in', leafPath, '-noout', '-startdate', '-enddate']);
      const notBefore = Date.parse(/notBefore=(.*)/.exec(dates)?.[1] ?? '');
      const notAfter = Date.parse(/notAfter=(.*)/.exec(dates)?.[1] ?? '');
      assert.equal(notAfter - notBefore, days * DAY_MS, `${registrationId}: ${days} days`);
    }
  });

  test('strict keyTypes ["ec-p384"] signs P-384 and refuses P-256 with 400053', async () => {
    const p384 = await opensslCsr('ec-p384', 'cert-strict');
    const accepted = await registerOnce(emulator, { registrationId: 'cert-strict', body: { csr: p384.csr } });
    assert.equal(accepted.statusCode, 200);
    const p256 = await opensslCsr('ec-p256', 'cert-strict');
    const refused = await registerOnce(emulator, { registrationId: 'cert-strict', body: { csr: p256.csr } });
    assert.equal(refused.statusCode, 400);
    assert.equal(refused.body.errorCode, CSR_ERROR_CODES.keyTypeRefused);
    assert.equal(
      refused.body.message,
      `the csr's key is EC P-256: this enrollment accepts EC P-384 ("ec-p384") only`,
    );
  });

  test("a group's policy applies to its devices: an RSA-only group refuses EC", async () => {
    const ec = await opensslCsr('ec-p384', 'group-cert-device');
    const refused = await registerOnce(emulator, {
      registrationId: 'group-cert-device',
      key: deriveDeviceKey(KEY, 'group-cert-device'),
      body: { csr: ec.csr },
    });
    assert.equal(refused.statusCode, 400);
    assert.equal(
      refused.body.message,
      `the csr's key is EC P-384: this enrollment accepts RSA of at least 2048 bits ("rsa") only`,
    );
  });
});

describe("emulator: CSR refusals are 400 answers with the emulator's own codes", () => {
  let emulator: TestEmulator;
  before(async () => {
    emulator = await startTestEmulator({ config });
  });
  after(() => emulator.close());

  async function refusal(body: object, options: { apiVersion?: string } = {}) {
    const answer = await registerOnce(emulator, { registrationId: 'cert-dev', body, ...options });
    assert.equal(answer.statusCode, 400, JSON.stringify(answer.body));
    assert.equal(typeof answer.body.trackingId, 'string');
    assert.ok(!Number.isNaN(Date.parse(String(answer.body.timestampUtc))));
    return { errorCode: answer.body.errorCode, message: answer.body.message };
  }

  test('400050: csr that is not base64', async () => {
    assert.deepEqual(await refusal({ csr: 'not base64!' }), {
      errorCode: 400050,
      message:
        'csr is not base64 (standard alphabet A-Z a-z 0-9 + /, one line, no spaces): send the DER PKCS#10 request base64-encoded',
    });
  });

  test('400050: csr that is base64 but not DER PKCS#10', async () => {
    const result = await refusal({ csr: Buffer.from('hello, certificate authority').toString('base64') });
    assert.equal(result.errorCode, 400050);
    assert.match(String(result.message), /^csr is base64 but not a DER PKCS#10 request: /);
  });

  test('400050: csr in PEM armour, or not a string', async () => {
    const { csr } = await opensslCsr('ec-p256', 'cert-dev');
    const armoured = `-----BEGIN CERTIFICATE REQUEST-----\n${csr}\n-----END CERTIFICATE REQUEST-----`;
    assert.deepEqual(await refusal({ csr: armoured }), {
      errorCode: 400050,
      message: 'csr is PEM: send the DER bytes base64-encoded on one line, without the BEGIN/END lines',
    });
    assert.deepEqual(await refusal({ csr: 42 }), {
      errorCode: 400050,
      message: 'csr must be a string (a DER PKCS#10 request, base64 on one line), not number',
    });
  });

  test('400051: a CSR whose self-signature does not verify', async () => {
    const { csr } = await opensslCsr('ec-p256', 'cert-dev');
    const der = Buffer.from(csr, 'base64');
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01; // the last byte of the signature's s
    assert.deepEqual(await refusal({ csr: der.toString('base64') }), {
      errorCode: 400051,
      message:
        "the csr's self-signature (ecdsa-with-SHA256) does not verify with its own public key: the request was altered, or signed with another key",
    });
  });

  test('400052: the CN is not the registration id (both shown)', async () => {
    const { csr } = await opensslCsr('ec-p384', 'someone-else');
    assert.deepEqual(await refusal({ csr }), {
      errorCode: 400052,
      message: `the csr's subject has CN "someone-else", but it must be the registration id: CN="cert-dev"`,
    });
  });

  test('400053: a key type or size the enrollment does not accept (RSA 1024)', async () => {
    const { csr } = await opensslCsr('rsa-1024', 'cert-dev');
    assert.deepEqual(await refusal({ csr }), {
      errorCode: 400053,
      message:
        `the csr's key is RSA 1024 bits: this enrollment accepts EC P-256 ("ec-p256"), EC P-384 ("ec-p384"), ` +
        'RSA of at least 2048 bits ("rsa")',
    });
  });

  test('400054: csr with an api-version older than 2025-07-01-preview', async () => {
    const { csr } = await opensslCsr('ec-p384', 'cert-dev');
    assert.deepEqual(await refusal({ csr }, { apiVersion: '2021-06-01' }), {
      errorCode: 400054,
      message:
        'csr needs api-version 2025-07-01-preview or later; this connection uses 2021-06-01 (set it in the CONNECT user name)',
    });
  });

  test('a refusal leaves the connection usable: the same device then registers with a good CSR', async () => {
    const client = await connectDevice(emulator, { registrationId: 'cert-dev' });
    try {
      const bad = await request(client, registerTopic('bad'), { csr: '%%%' });
      assert.equal(bad.statusCode, 400);
      const { csr } = await opensslCsr('ec-p384', 'cert-dev');
      const good = await registerWith(client, { csr });
      assert.equal(good.statusCode, 200);
      assert.equal(chainOf(good).length, 3);
    } finally {
      client.close();
    }
  });
});

describe('emulator: certificate issuance policy in the configuration, options and flags', () => {
  test('validityDays 6 and 91 are refused at config load, at the top level and per enrollment', async () => {
    for (const days of [6, 91, 30.5]) {
      await assert.rejects(parseEmulatorConfig({ certificateIssuance: { validityDays: days } }), {
        message: `emulator configuration: certificateIssuance.validityDays: ${days} is not allowed: expected a whole number of days from 7 to 90 (DPS's policy range)`,
      });
    }
    await assert.rejects(
      parseEmulatorConfig({
        individualEnrollments: [
          {
            registrationId: 'd',
            attestation: { type: 'symmetricKey', primaryKey: KEY },
            certificateIssuance: { validityDays: 91 },
          },
        ],
      }),
      /individualEnrollments\[0\]\.certificateIssuance\.validityDays: 91 is not allowed/,
    );
  });

  test('validityDays 7 and 90 load; the defaults are 30 days and all three key types', async () => {
    assert.equal(
      (await parseEmulatorConfig({ certificateIssuance: { validityDays: 7 } })).certificateIssuance
        .validityDays,
      7,
    );
    assert.equal(
      (await parseEmulatorConfig({ certificateIssuance: { validityDays: 90 } })).certificateIssuance
        .validityDays,
      90,
    );
    assert.deepEqual((await parseEmulatorConfig({})).certificateIssuance, {
      validityDays: 30,
      keyTypes: ['ec-p256', 'ec-p384', 'rsa'],
    });
  });

  test('unknown key types, an empty list and unknown policy fields are errors', async () => {
    await assert.rejects(parseEmulatorConfig({ certificateIssuance: { keyTypes: ['ec-p521'] } }), {
      message:
        'emulator configuration: certificateIssuance.keyTypes[0]: "ec-p521" is not a key type: expected a non-empty array of "ec-p256", "ec-p384", "rsa" ("rsa" = RSA of at least 2048 bits)',
    });
    await assert.rejects(
      parseEmulatorConfig({ certificateIssuance: { keyTypes: [] } }),
      /keyTypes: expected a non-empty array/,
    );
    await assert.rejects(
      parseEmulatorConfig({
        enrollmentGroups: [
          {
            enrollmentGroupId: 'g',
            attestation: { type: 'symmetricKey', primaryKey: KEY },
            certificateIssuance: { validity: 30 },
          },
        ],
      }),
      /enrollmentGroups\[0\]\.certificateIssuance\.validity: unknown field \(expected one of: validityDays, keyTypes\)/,
    );
  });

  test('the certificateIssuance option lays over the file policy field by field, and is validated', async () => {
    const emulator = await startTestEmulator({
      config: { certificateIssuance: { validityDays: 10 } },
      certificateIssuance: { keyTypes: ['ec-p384'] },
    });
    try {
      assert.deepEqual(emulator.config.certificateIssuance, { validityDays: 10, keyTypes: ['ec-p384'] });
    } finally {
      await emulator.close();
    }
    await assert.rejects(
      startTestEmulator({ certificateIssuance: { validityDays: 91 } }),
      /certificateIssuance option: certificateIssuance\.validityDays: 91 is not allowed/,
    );
  });

  test('--cert-validity-days and --cert-key-types out of range are usage errors (exit 2)', async () => {
    for (const [argv, expected] of [
      [
        ['--cert-validity-days', '6'],
        '--cert-validity-days expects 7 to 90 days (DPS\'s policy range), got "6"',
      ],
      [
        ['--cert-validity-days', '91'],
        '--cert-validity-days expects 7 to 90 days (DPS\'s policy range), got "91"',
      ],
      [
        ['--cert-key-types', 'ec-p384,ed25519'],
        '--cert-key-types: "ed25519" is not a key type: list some of ec-p256,ec-p384,rsa (rsa = RSA of at least 2048 bits)',
      ],
    ] as const) {
      let stderr = '';
      const code = await runEmulatorCli([...argv], {
        stdout: { write: () => true },
        stderr: { write: (text: string) => (stderr += text) },
        signals: new EventEmitter() as unknown as NodeJS.Process,
      });
      assert.equal(code, 2);
      assert.ok(stderr.includes(expected), stderr);
    }
  });

  test('the flags set the emulator-wide policy: --cert-key-types ec-p384 refuses P-256, --cert-validity-days 7 is the lifetime', async () => {
    const pkiDir = await temporaryDirectory();
    const signals = new EventEmitter();
    let stdout = '';
    const written = new EventEmitter();
    const exit = runEmulatorCli(
      [
        '--mqtt-port',
        '0',
        '--wss-port',
        '0',
        '--pki-dir',
        pkiDir.path,
        '--quiet',
        '--cert-validity-days',
        '7',
        '--cert-key-types',
        'ec-p384',
      ],
      {
        stdout: {
          write: (text: string) => {
            stdout += text;
            written.emit('write');
            return true;
          },
        },
        stderr: { write: () => true },
        signals: signals as unknown as NodeJS.Process,
      },
    );
    try {
      while (!stdout.includes('\n'))
        await Promise.race([
          once(written, 'write'),
          exit.then(() => {
            throw new Error('exited early');
          }),
        ]);
      const ready = JSON.parse(stdout.slice(0, stdout.indexOf('\n'))) as {
        mqttPort: number;
        wssPort: number;
        idScope: string;
        ca: string;
      };
      const target = { ...ready, caCertPem: await readFile(ready.ca, 'utf8') };
      const registerDemo = async (csr: string) => {
        const client = await connectDevice(target, { registrationId: DEMO_DEVICE_ID, key: DEMO_DEVICE_KEY });
        try {
          return await registerWith(client, { csr });
        } finally {
          client.close();
        }
      };
      const refused = await registerDemo((await opensslCsr('ec-p256', DEMO_DEVICE_ID)).csr);
      assert.equal(refused.statusCode, 400);
      assert.equal(refused.body.errorCode, 400053);
      const issued = await registerDemo((await opensslCsr('ec-p384', DEMO_DEVICE_ID)).csr);
      const leaf = new X509Certificate(pem(chainOf(issued)[0]!));
      assert.equal(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom), 7 * DAY_MS);
    } finally {
      signals.emit('SIGTERM', 'SIGTERM');
      assert.equal(await exit, 0);
      await pkiDir.remove();
    }
  });
});

describe('emulator PKI: the issuing CA', () => {
  test('is an EC P-384 CA (path length 0) issued by the root, made on first start and reused afterwards', async () => {
    const dir = await temporaryDirectory();
    try {
      const first = await ensureEmulatorPki({ dataDir: dir.path });
      assert.equal(first.issuingCaPath, join(dir.path, 'issuing-ca.pem'));
      assert.equal(await readFile(first.issuingCaPath, 'utf8'), first.issuingCa.certPem);
      const text = await openssl(['x509', '-in', first.issuingCaPath, '-noout', '-text']);
      assert.match(text, /NIST CURVE: P-384/);
      assert.match(text, /CA:TRUE, pathlen:0/);
      assert.match(text, /Certificate Sign/);
      const verified = await openssl(['verify', '-CAfile', first.caPath, first.issuingCaPath]);
      assert.equal(verified.trim(), `${first.issuingCaPath}: OK`);
      const second = await ensureEmulatorPki({ dataDir: dir.path });
      assert.equal(second.issuingCa.certPem, first.issuingCa.certPem);
      assert.equal(second.ca.certPem, first.ca.certPem);
    } finally {
      await dir.remove();
    }
  });

  test('a PKI directory from before certificate issuance gains an issuing CA and keeps its root', async () => {
    const dir = await temporaryDirectory();
    try {
      const before = await ensureEmulatorPki({ dataDir: dir.path });
      await rm(join(dir.path, 'issuing-ca.pem'));
      await rm(join(dir.path, 'issuing-ca-key.pem'));
      const emulator = await startEmulator({ host: '127.0.0.1', mqttPort: 0, wssPort: 0, pkiDir: dir.path });
      try {
        assert.equal(emulator.caCertPem, before.ca.certPem, 'the root devices trust is unchanged');
        assert.equal(emulator.issuingCaPath, join(dir.path, 'issuing-ca.pem'));
        assert.equal(await readFile(join(dir.path, 'issuing-ca.pem'), 'utf8'), emulator.issuingCaCertPem);
        assert.ok(
          new X509Certificate(emulator.issuingCaCertPem).verify(
            new X509Certificate(before.ca.certPem).publicKey,
          ),
        );
      } finally {
        await emulator.close();
      }
    } finally {
      await dir.remove();
    }
  });

  test('a PKI brought without an issuing CA gets one in memory, issued by its root', async () => {
    const pki = await testPki();
    const emulator = await startTestEmulator({ pki: { ca: pki.ca, server: pki.server, caPath: pki.caPath } });
    try {
      assert.equal(emulator.issuingCaPath, undefined);
      const issuing = new X509Certificate(emulator.issuingCaCertPem);
      assert.ok(issuing.ca);
      assert.ok(issuing.verify(new X509Certificate(pki.ca.certPem).publicKey));
      assert.notEqual(emulator.issuingCaCertPem, pki.issuingCa?.certPem);
    } finally {
      await emulator.close();
    }
  });

  test('signing happens in-process and is cheap: 200 certificates, each with a new serial, in under 5 s', async () => {
    const pki = await testPki();
    const issuer = new CertificateIssuer(pki.issuingCa!, pki.ca.certPem);
    const spki = createPublicKey(pki.server.keyPem).export({ type: 'spki', format: 'der' });
    const startedAt = performance.now();
    const serials = new Set<string>();
    for (let index = 0; index < 200; index++) {
      serials.add(
        issuer.issue({ registrationId: `bulk-${index}`, publicKeySpkiDer: spki, validityDays: 30 })
          .serialNumber,
      );
    }
    const elapsedMs = performance.now() - startedAt;
    assert.equal(serials.size, 200, 'every serial is new');
    assert.ok(elapsedMs < 5000, `200 certificates took ${elapsedMs} ms`);
  });

  test('persisted registrations keep what was issued, not the certificate', async () => {
    const dataDir = await temporaryDirectory();
    const pki = await testPki();
    const emulator = await startTestEmulator({ config, dataDir: dataDir.path, pki });
    try {
      const { csr } = await opensslCsr('ec-p384', 'cert-dev');
      const answer = await registerOnce(emulator, { registrationId: 'cert-dev', body: { csr } });
      const [leaf] = chainOf(answer);
      await emulator.close();
      const file = await readFile(join(dataDir.path, 'registrations.json'), 'utf8');
      assert.equal(file.includes(String(leaf).slice(0, 60)), false, 'no certificate bytes on disk');
      const [record] = (
        JSON.parse(file) as { registrations: Array<{ issuedCertificate?: { serialNumber: string } }> }
      ).registrations;
      assert.equal(
        record?.issuedCertificate?.serialNumber,
        new X509Certificate(pem(String(leaf))).serialNumber,
      );
    } finally {
      await emulator.close();
      await dataDir.remove();
    }
  });
});
