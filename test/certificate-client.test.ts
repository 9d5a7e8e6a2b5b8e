// Certificate issuance on the client (issue 11): createCertificateRequest, the checks of an issued chain
// (verifyIssuedChain, one failing test per check), and register({ certificate }) end to end against a
// scripted DPS on loopback whose answers carry chains signed by the openssl binary from the received CSR.
// The emulator is not involved: this proves the client path on its own.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { createCertificateRequest, verifyIssuedChain } from '../src/client/certificate-request.js';
import { ProvisioningClient, register } from '../src/client/register.js';
import type {
  CertificateRequestOptions,
  ProgressEvent,
  ProvisioningClientOptions,
} from '../src/client/types.js';
import { buildCsr } from '../src/protocol/csr-builder.js';
import { readCsr } from '../src/protocol/csr-reader.js';
import { CertificateChainError, InvalidInputError, ProtocolError } from '../src/protocol/errors.js';
import { parseRegistrationState } from '../src/protocol/responses.js';
import { parseUsername } from '../src/protocol/username.js';
import { commonMqtt } from '../src/transport/common.js';
import { rejectionOf } from './support/net.js';
import { createOpensslCa, type OpensslCa, openssl, pemBody } from './support/openssl-ca.js';

mqttPacket.writeToStream.cacheNumbers = false;

const REGISTRATION_ID = 'cert-device-01';
const DEVICE_KEY = Buffer.from('certificate-client-test-device-key').toString('base64');
const TIMEOUT_MS = 15_000;

let ca: OpensslCa;
before(async () => {
  ca = await createOpensslCa();
});
after(() => ca?.close());

function spkiOf(csrDer: Uint8Array): Buffer {
  return readCsr(csrDer).publicKeySpkiDer;
}

function assertChainError(error: unknown, check: string): CertificateChainError {
  assert.ok(error instanceof CertificateChainError, `expected a CertificateChainError, got ${String(error)}`);
  assert.equal(error.check, check, error.message);
  assert.equal(error.code, 'ERR_CERTIFICATE_CHAIN');
  assert.equal(error.phase, 'response');
  return error;
}

describe('createCertificateRequest', () => {
  for (const keyType of ['ec-p384', 'ec-p256', 'rsa-2048'] as const) {
    test(`${keyType}: a new key pair whose CSR openssl accepts, with CN = the registration id`, async () => {
      const request = await createCertificateRequest({ registrationId: REGISTRATION_ID, keyType });
      assert.equal(request.keyType, keyType);
      const parsed = readCsr(request.csrDer);
      assert.equal(parsed.keyType, keyType);
      assert.deepEqual(parsed.commonNames, [REGISTRATION_ID]);
      assert.equal(request.csrBase64, request.csrDer.toString('base64'));
      assert.match(request.csrBase64, /^[A-Za-z0-9+/]+={0,2}$/);
      assert.match(request.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/); // PKCS#8
      const publicFromPrivate = createPublicKey(createPrivateKey(request.privateKeyPem));
      assert.deepEqual(publicFromPrivate.export({ type: 'spki', format: 'der' }), parsed.publicKeySpkiDer);
      const file = `${ca.dir}/created-${keyType}.csr`;
      await import('node:fs/promises').then((fs) => fs.writeFile(file, request.csrPem));
      const { stdout, stderr } = await openssl(['req', '-in', file, '-verify', '-noout', '-subject']);
      assert.match(stderr + stdout, /verify OK/);
      assert.match(stdout, new RegExp(`CN = ${REGISTRATION_ID}`));
    });
  }

  test('the key type defaults to ec-p384, the type the DPS docs name', async () => {
    const request = await createCertificateRequest({ registrationId: REGISTRATION_ID });
    assert.equal(request.keyType, 'ec-p384');
    assert.equal(readCsr(request.csrDer).keyType, 'ec-p384');
  });

  test('an invalid registration id or an unknown key type is an InvalidInputError', async () => {
    const badId = await rejectionOf(createCertificateRequest({ registrationId: 'My_Device' }));
    assert.ok(badId instanceof InvalidInputError);
    assert.equal(badId.field, 'registrationId');
    const badType = await rejectionOf(
      createCertificateRequest({ registrationId: REGISTRATION_ID, keyType: 'ec-p521' as never }),
    );
    assert.ok(badType instanceof InvalidInputError);
    assert.match(badType.message, /use ec-p384 .*ec-p256 or rsa-2048/);
  });

  test('createCertificateRequest is exported from the package entry point', async () => {
    const entry = await import('../src/index.js');
    const request = await entry.createCertificateRequest({
      registrationId: REGISTRATION_ID,
      keyType: 'ec-p256',
    });
    assert.equal(readCsr(request.csrDer).keyType, 'ec-p256');
  });
});

describe('verifyIssuedChain', () => {
  let csrDer: Buffer;
  let chain: string[];

  before(async () => {
    const request = await createCertificateRequest({ registrationId: REGISTRATION_ID, keyType: 'ec-p256' });
    csrDer = request.csrDer;
    chain = await ca.issueChain(csrDer);
  });

  const verify = (chainBase64: readonly string[], overrides: { now?: Date; registrationId?: string } = {}) =>
    verifyIssuedChain({
      chainBase64,
      registrationId: overrides.registrationId ?? REGISTRATION_ID,
      expectedPublicKeySpkiDer: spkiOf(csrDer),
      ...(overrides.now ? { now: overrides.now } : {}),
    });

  test('a chain openssl issued for the CSR passes: PEM leaf first, validity and serial of the leaf', () => {
    const issued = verify(chain);
    const leaf = new X509Certificate(Buffer.from(chain[0]!, 'base64'));
    const pems =
      issued.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
    assert.equal(pems.length, 3);
    assert.deepEqual(pems.map(pemBody), chain);
    assert.equal(issued.serialNumber, leaf.serialNumber.toUpperCase());
    assert.match(issued.serialNumber, /^[0-9A-F]+$/);
    assert.equal(issued.notBefore.getTime(), new Date(leaf.validFrom).getTime());
    assert.equal(issued.notAfter.getTime(), new Date(leaf.validTo).getTime());
  });

  test('chain-format: an empty chain', () => {
    assertChainError(
      captureThrow(() => verify([])),
      'chain-format',
    );
  });

  test('chain-format: an element that is not base64, or base64 of something that is not a certificate', () => {
    assertChainError(
      captureThrow(() => verify(['not base64!', ...chain.slice(1)])),
      'chain-format',
    );
    const garbage = Buffer.from('certainly not DER').toString('base64');
    assertChainError(
      captureThrow(() => verify([garbage, ...chain.slice(1)])),
      'chain-format',
    );
  });

  test('chain-format: PEM text in base64, or DER with bytes after the certificate', () => {
    const leafPem = new X509Certificate(Buffer.from(chain[0]!, 'base64')).toString();
    const pemInBase64 = Buffer.from(leafPem).toString('base64');
    assertChainError(
      captureThrow(() => verify([pemInBase64, ...chain.slice(1)])),
      'chain-format',
    );
    const trailing = Buffer.concat([Buffer.from(chain[0]!, 'base64'), Buffer.of(0)]).toString('base64');
    assertChainError(
      captureThrow(() => verify([trailing, ...chain.slice(1)])),
      'chain-format',
    );
  });

  test('leaf-public-key: a leaf for another key, with the right CN and a good chain', async () => {
    const other = await createCertificateRequest({ registrationId: REGISTRATION_ID, keyType: 'ec-p256' });
    const otherChain = await ca.issueChain(other.csrDer);
    const error = assertChainError(
      captureThrow(() => verify(otherChain)),
      'leaf-public-key',
    );
    assert.deepEqual(error.chainBase64, otherChain);
  });

  test('leaf-common-name: a leaf for the CSR key whose CN is another registration id', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ownCsr = buildCsr({ commonName: REGISTRATION_ID, privateKey, publicKey });
    const otherNameCsr = buildCsr({ commonName: 'another-device', privateKey, publicKey });
    const otherNameChain = await ca.issueChain(otherNameCsr);
    const error = captureThrow(() =>
      verifyIssuedChain({
        chainBase64: otherNameChain,
        registrationId: REGISTRATION_ID,
        expectedPublicKeySpkiDer: spkiOf(ownCsr),
      }),
    );
    assertChainError(error, 'leaf-common-name');
    assert.match((error as Error).message, /"another-device", not the registration id "cert-device-01"/);
  });

  test('chain-issuer: a leaf signed by another CA than the next certificate, or the chain out of order', async () => {
    const leafByOther = (await ca.signCsr(csrDer, { other: true })).toString('base64');
    assertChainError(
      captureThrow(() => verify([leafByOther, ...chain.slice(1)])),
      'chain-issuer',
    );
    assertChainError(
      captureThrow(() => verify([chain[0]!, chain[2]!, chain[1]!])),
      'chain-issuer',
    );
  });

  test('chain-issuer: a CA certificate that names the right issuer but is signed by another key', () => {
    // The other issuing CA is signed by the root, but it is not the leaf's issuer: swap it in the middle.
    const otherIssuing = pemBody(ca.otherIssuingPem);
    assertChainError(
      captureThrow(() => verify([chain[0]!, otherIssuing, chain[2]!])),
      'chain-issuer',
    );
  });

  test('leaf-validity: expired, or not yet valid', () => {
    const issued = verify(chain);
    const day = 24 * 3600_000;
    const expired = captureThrow(() => verify(chain, { now: new Date(issued.notAfter.getTime() + day) }));
    assert.match((assertChainError(expired, 'leaf-validity') as Error).message, /expired/);
    const early = captureThrow(() => verify(chain, { now: new Date(issued.notBefore.getTime() - day) }));
    assert.match((assertChainError(early, 'leaf-validity') as Error).message, /not valid before/);
  });

  test('the service chain is attached to every check failure, as received', () => {
    const broken = ['%%%', ...chain.slice(1)];
    assert.deepEqual(
      assertChainError(
        captureThrow(() => verify(broken)),
        'chain-format',
      ).chainBase64,
      broken,
    );
  });
});

describe('registration state parsing for certificate issuance', () => {
  test('issuedCertificateChain (array of strings) and connectionProfile are parsed', () => {
    const state = parseRegistrationState({
      registrationId: 'd',
      issuedCertificateChain: ['QQ==', 'Qg=='],
      connectionProfile: 'mqttV5',
    });
    assert.deepEqual(state.issuedCertificateChain, ['QQ==', 'Qg==']);
    assert.equal(state.connectionProfile, 'mqttV5');
  });

  test('null means absent; a chain that is not an array of strings, or a non-string profile, is a ProtocolError', () => {
    const state = parseRegistrationState({
      registrationId: 'd',
      issuedCertificateChain: null,
      connectionProfile: null,
    });
    assert.equal(state.issuedCertificateChain, undefined);
    assert.equal(state.connectionProfile, undefined);
    for (const value of ['QQ==', { 0: 'QQ==' }, ['QQ==', 5], 7]) {
      assert.throws(
        () => parseRegistrationState({ registrationId: 'd', issuedCertificateChain: value }),
        ProtocolError,
      );
    }
    assert.throws(() => parseRegistrationState({ registrationId: 'd', connectionProfile: 5 }), ProtocolError);
  });
});

describe('the transport sends csr in the register body', () => {
  test('registerDevice refuses a csr that is not base64 on one line', () => {
    const handle = commonMqtt.create(
      {
        uri: '127.0.0.1:1',
        hsmType: 'symmetricKey',
        idScope: '0ne00000000',
        registrationId: REGISTRATION_ID,
        apiVersion: '2025-07-01-preview',
      },
      // Never called: registerDevice() refuses before any IO.
      { transportName: 'test', defaultPort: 443, transportIo: () => new Promise(() => {}) },
    );
    try {
      commonMqtt.open(handle, { onRegistrationData: () => {}, onStatus: () => {} });
      const challenge = () => 'token';
      for (const csr of ['', 'QUJD\nREVG', 'not base64!', 5 as unknown as string]) {
        assert.throws(() => commonMqtt.registerDevice(handle, { challenge, csr }), InvalidInputError);
      }
    } finally {
      commonMqtt.destroy(handle);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// End to end: register() against a scripted DPS (TLS and WebSocket) that signs the CSR it receives.

interface RegisterRequest {
  connection: number;
  username: string;
  body: { registrationId?: string; payload?: unknown; csr?: string };
}

/** What the DPS answers to a register request: the assigned registration state, or drop the connection. */
type Answer = (request: RegisterRequest) => Promise<Record<string, unknown> | 'drop'>;

class ScriptedDps {
  answer: Answer = async () => ({});
  readonly requests: RegisterRequest[] = [];
  connections = 0;
  readonly openSockets = new Set<Socket>();

  track(server: Server): void {
    server.on('connection', (socket: Socket) => {
      this.openSockets.add(socket);
      socket.once('close', () => this.openSockets.delete(socket));
    });
  }

  reset(answer: Answer): void {
    this.answer = answer;
    this.requests.length = 0;
    this.connections = 0;
  }

  serve(stream: Duplex): void {
    this.connections += 1;
    const connection = this.connections;
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const send = (packet: Packet): void => {
      if (!stream.destroyed) stream.write(mqttPacket.generate(packet));
    };
    const respond = (status: number, requestId: string, body: unknown, query = '') =>
      send({
        cmd: 'publish',
        topic: `$dps/registrations/res/${status}/?$rid=${requestId}${query}`,
        payload: Buffer.from(JSON.stringify(body)),
        qos: 0,
        retain: false,
        dup: false,
      });
    let username = '';
    const assigned = new Map<string, Record<string, unknown>>();
    stream.on('error', () => {});
    stream.on('data', (chunk: Buffer) => parser.parse(chunk));
    parser.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connect') {
        username = packet.username ?? '';
        send({ cmd: 'connack', returnCode: 0, sessionPresent: false });
      } else if (packet.cmd === 'subscribe') {
        send({ cmd: 'suback', messageId: packet.messageId ?? 1, granted: [1] });
      } else if (packet.cmd === 'publish') {
        if (packet.qos === 1) send({ cmd: 'puback', messageId: packet.messageId ?? 1 });
        const query = new URLSearchParams(packet.topic.split('?')[1] ?? '');
        const requestId = query.get('$rid') ?? '';
        if (packet.topic.startsWith('$dps/registrations/PUT/iotdps-register/')) {
          const request: RegisterRequest = {
            connection,
            username,
            body: JSON.parse(packet.payload.toString()),
          };
          this.requests.push(request);
          void this.answer(request).then((state) => {
            if (state === 'drop') {
              stream.destroy();
              return;
            }
            // Like DPS: 202 first, the chain only in the final assigned answer of the status query.
            const operationId = `4.op.${connection}`;
            assigned.set(operationId, state);
            respond(202, requestId, { operationId, status: 'assigning' }, '&retry-after=0');
          });
        } else if (packet.topic.startsWith('$dps/registrations/GET/iotdps-get-operationstatus/')) {
          const operationId = query.get('operationId') ?? '';
          respond(200, requestId, {
            operationId,
            status: 'assigned',
            registrationState: {
              registrationId: REGISTRATION_ID,
              assignedHub: 'hub.example.net',
              deviceId: REGISTRATION_ID,
              status: 'assigned',
              ...assigned.get(operationId),
            },
          });
        }
      }
    });
  }
}

describe('register({ certificate }) against a scripted DPS that signs the CSR with openssl', () => {
  const dps = new ScriptedDps();
  const servers: Server[] = [];
  let mqttPort = 0;
  let wssPort = 0;

  before(async () => {
    const tlsOptions = { cert: ca.serverPem, key: ca.serverKeyPem, minVersion: 'TLSv1.2' as const };
    const mqttServer = createTlsServer(tlsOptions, (socket) => dps.serve(socket));
    const httpsServer = createHttpsServer(tlsOptions);
    new WebSocketServer({ server: httpsServer }).on('connection', (webSocket) =>
      dps.serve(createWebSocketStream(webSocket)),
    );
    for (const server of [mqttServer, httpsServer]) {
      dps.track(server);
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    }
    mqttPort = (mqttServer.address() as AddressInfo).port;
    wssPort = (httpsServer.address() as AddressInfo).port;
  });

  after(async () => {
    for (const socket of dps.openSockets) socket.destroy();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  const options = (
    certificate: CertificateRequestOptions,
    extra: Partial<ProvisioningClientOptions> = {},
  ): ProvisioningClientOptions => ({
    idScope: '0ne00000000',
    registrationId: REGISTRATION_ID,
    security: { symmetricKey: DEVICE_KEY },
    endpoint: `127.0.0.1:${extra.transport === 'mqtt-ws' ? wssPort : mqttPort}`,
    transport: 'mqtt',
    trustedCa: ca.rootPem,
    proxy: false,
    timeoutMs: TIMEOUT_MS,
    retry: { initialDelayMs: 1, maxDelayMs: 5 },
    certificate,
    ...extra,
  });

  /** The DPS of the happy path: signs whatever CSR arrives. */
  const signing = async (request: RegisterRequest): Promise<Record<string, unknown>> => ({
    issuedCertificateChain: await ca.issueChain(Buffer.from(request.body.csr ?? '', 'base64')),
  });

  for (const [keyType, transport] of [
    ['ec-p384', 'mqtt'],
    ['ec-p256', 'mqtt-ws'],
    ['rsa-2048', 'mqtt'],
  ] as const) {
    test(`${keyType} over ${transport}: the CSR goes in the register body and the checked chain and key come back`, async () => {
      dps.reset(signing);
      const result = await register(options({ keyType }, { transport }));
      assert.equal(dps.requests.length, 1);
      const [request] = dps.requests;
      // The api-version with certificate issuance, in the CONNECT user name.
      assert.equal(parseUsername(request!.username)?.apiVersion, '2025-07-01-preview');
      const csr = request!.body.csr ?? '';
      assert.match(csr, /^[A-Za-z0-9+/]+={0,2}$/, 'one line of base64');
      assert.equal(request!.body.registrationId, REGISTRATION_ID);
      const parsed = readCsr(Buffer.from(csr, 'base64'));
      assert.equal(parsed.keyType, keyType);
      assert.deepEqual(parsed.commonNames, [REGISTRATION_ID]);

      const issued = result.issuedCertificate;
      assert.ok(issued, 'issuedCertificate is set');
      const leaf = new X509Certificate(issued.chainPem);
      assert.equal(leaf.subject, `CN=${REGISTRATION_ID}`);
      assert.equal(leaf.serialNumber.toUpperCase(), issued.serialNumber);
      assert.ok(issued.notBefore instanceof Date && issued.notAfter instanceof Date);
      assert.ok(issued.notAfter > new Date());
      assert.ok(issued.privateKeyPem, 'the generated key comes back');
      assert.ok(leaf.checkPrivateKey(createPrivateKey(issued.privateKeyPem)), 'the key matches the leaf');
      assert.equal(result.status, 'assigned');
      assert.equal(result.connectionProfile, undefined);
    });
  }

  test('openssl verify accepts the returned chain (root trusted, issuing CA untrusted)', async () => {
    dps.reset(signing);
    const result = await register(options({ keyType: 'ec-p256' }));
    const pems = result.issuedCertificate!.chainPem.match(
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g,
    )!;
    const fs = await import('node:fs/promises');
    await fs.writeFile(`${ca.dir}/e2e-leaf.pem`, pems[0]!);
    await fs.writeFile(`${ca.dir}/e2e-issuing.pem`, pems[1]!);
    await fs.writeFile(`${ca.dir}/e2e-root.pem`, pems[2]!);
    const { stdout } = await openssl([
      'verify',
      '-CAfile',
      `${ca.dir}/e2e-root.pem`,
      '-untrusted',
      `${ca.dir}/e2e-issuing.pem`,
      `${ca.dir}/e2e-leaf.pem`,
    ]);
    assert.match(stdout, /e2e-leaf\.pem: OK/);
  });

  test('connectionProfile from the registration state is on the result (2026-11-02-preview, caller-chosen)', async () => {
    dps.reset(async (request) => ({ ...(await signing(request)), connectionProfile: 'mqttV5' }));
    const result = await register(options({ keyType: 'ec-p256' }, { apiVersion: '2026-11-02-preview' }));
    assert.equal(parseUsername(dps.requests[0]!.username)?.apiVersion, '2026-11-02-preview');
    assert.equal(result.connectionProfile, 'mqttV5');
    assert.equal(result.registrationState.connectionProfile, 'mqttV5');
  });

  for (const form of ['PEM', 'DER'] as const) {
    test(`the caller's own CSR (${form}) is sent as it is and no private key comes back`, async () => {
      const own = await createCertificateRequest({ registrationId: REGISTRATION_ID, keyType: 'ec-p256' });
      dps.reset(signing);
      const result = await register(
        options({ csr: form === 'PEM' ? own.csrPem : new Uint8Array(own.csrDer) }),
      );
      assert.equal(dps.requests[0]!.body.csr, own.csrBase64);
      assert.ok(result.issuedCertificate);
      assert.equal(result.issuedCertificate.privateKeyPem, undefined);
      assert.ok('privateKeyPem' in result.issuedCertificate === false);
      const leaf = new X509Certificate(result.issuedCertificate.chainPem);
      assert.ok(leaf.checkPrivateKey(createPrivateKey(own.privateKeyPem)));
    });
  }

  test("the caller's CSR for another CN, or with a broken signature, is an InvalidInputError before the network", async () => {
    dps.reset(signing);
    const other = await createCertificateRequest({ registrationId: 'another-device', keyType: 'ec-p256' });
    const wrongName = await rejectionOf(register(options({ csr: other.csrPem })));
    assert.ok(wrongName instanceof InvalidInputError);
    assert.equal(wrongName.field, 'certificate.csr');
    assert.match(
      wrongName.message,
      /has CN "another-device": DPS issues certificates only for CN=cert-device-01/,
    );

    const own = await createCertificateRequest({ registrationId: REGISTRATION_ID, keyType: 'ec-p256' });
    const tampered = Buffer.from(own.csrDer);
    tampered[tampered.length - 3] = (tampered[tampered.length - 3] ?? 0) ^ 0x01; // inside the signature
    const badSignature = await rejectionOf(register(options({ csr: tampered })));
    assert.ok(badSignature instanceof InvalidInputError);
    assert.match(badSignature.message, /self-signature does not verify/);

    const notCsr = await rejectionOf(register(options({ csr: 'hello' })));
    assert.ok(notCsr instanceof InvalidInputError);
    assert.equal(dps.connections, 0, 'no connection was made');
  });

  test('a leaf for another key is CertificateChainError leaf-public-key, with the raw chain attached', async () => {
    const stranger = await createCertificateRequest({ registrationId: REGISTRATION_ID, keyType: 'ec-p256' });
    const strangerChain = await ca.issueChain(stranger.csrDer);
    dps.reset(async () => ({ issuedCertificateChain: strangerChain }));
    const events: ProgressEvent['type'][] = [];
    const error = await rejectionOf(
      register(options({ keyType: 'ec-p256' }, { onProgress: (event) => events.push(event.type) })),
    );
    assert.deepEqual(assertChainError(error, 'leaf-public-key').chainBase64, strangerChain);
    assert.ok((error as CertificateChainError).hint, 'the error carries a hint');
    assert.ok(!events.includes('assigned'), 'no "assigned" progress event for a refused chain');
  });

  test('an assignment without issuedCertificateChain is CertificateChainError missing-chain', async () => {
    dps.reset(async () => ({}));
    assertChainError(await rejectionOf(register(options({ keyType: 'ec-p256' }))), 'missing-chain');
  });

  test('a resend after a dropped connection carries the same CSR, not a new key', async () => {
    dps.reset(async (request) => (request.connection === 1 ? 'drop' : signing(request)));
    const result = await register(options({ keyType: 'ec-p256' }));
    assert.equal(dps.requests.length, 2);
    assert.equal(dps.requests[1]!.connection, 2);
    assert.equal(dps.requests[0]!.body.csr, dps.requests[1]!.body.csr);
    assert.ok(result.issuedCertificate);
    assert.equal(result.timings.connections, 2);
  });

  test('a caller-chosen api-version older than 2025-07-01 with certificate is an InvalidInputError', async () => {
    dps.reset(signing);
    for (const apiVersion of ['2019-03-31', '2021-06-01', '2025-06-30-preview']) {
      const error = await rejectionOf(register(options({ keyType: 'ec-p256' }, { apiVersion })));
      assert.ok(error instanceof InvalidInputError, String(error));
      assert.equal(error.field, 'apiVersion');
      assert.match(error.message, /has no certificate issuance: use 2025-07-01-preview or later/);
    }
    assert.equal(dps.connections, 0);
  });

  test('a malformed certificate option is an InvalidInputError when the client is made', () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [{ keyType: 'ec-p521' }, 'certificate.keyType', /is unknown: use ec-p384/],
      [{ keytype: 'ec-p256' }, 'certificate.keytype', /did you mean "certificate.keyType"/],
      [{ keyType: 'ec-p256', csr: 'x' }, 'certificate', /both keyType and csr/],
      [{ csr: 42 }, 'certificate.csr', /PEM text .* or DER bytes/],
      ['ec-p256', 'certificate', /must be an object/],
    ];
    for (const [certificate, field, message] of cases) {
      assert.throws(
        () => new ProvisioningClient(options(certificate as CertificateRequestOptions)),
        (error: unknown) =>
          error instanceof InvalidInputError && error.field === field && message.test(error.message),
        JSON.stringify(certificate),
      );
    }
  });

  test('without certificate, the register body has no csr and the api-version is unchanged', async () => {
    dps.reset(async () => ({}));
    const { certificate: _, ...plain } = options({});
    const result = await register(plain);
    assert.equal(dps.requests[0]!.body.csr, undefined);
    assert.equal(parseUsername(dps.requests[0]!.username)?.apiVersion, '2019-03-31');
    assert.equal(result.issuedCertificate, undefined);
  });
});

function captureThrow(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return assert.fail('expected an exception');
}
