// Certificate issuance end to end through the library: register({ certificate }) against the emulator, for
// every key type over both transports, with openssl as the independent judge of what comes back.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DEMO_GROUP_KEY } from '../src/emulator/index.js';
import { ProvisioningServiceError, register } from '../src/index.js';
import { startTestEmulator, type TestEmulator } from './helpers/emulator.js';

const execFileAsync = promisify(execFile);

let emulator: TestEmulator;
let strictEmulator: TestEmulator;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dps-mqtt-cert-e2e-'));
  emulator = await startTestEmulator();
  strictEmulator = await startTestEmulator({ certificateIssuance: { keyTypes: ['ec-p384'] } });
  await writeFile(join(dir, 'root.pem'), emulator.caCertPem);
});
after(async () => {
  await Promise.all([emulator.close(), strictEmulator.close()]);
  await rm(dir, { recursive: true, force: true });
});

function endpointOf(target: TestEmulator, transport: 'mqtt' | 'mqtt-ws'): string {
  return `127.0.0.1:${transport === 'mqtt' ? target.mqttPort : target.wssPort}`;
}

function splitPem(chainPem: string): string[] {
  return chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
}

describe('register({ certificate }) against the emulator', () => {
  for (const transport of ['mqtt-ws', 'mqtt'] as const) {
    for (const keyType of ['ec-p384', 'ec-p256', 'rsa-2048'] as const) {
      test(`${keyType} over ${transport}: openssl verifies the chain and the key matches the leaf`, async () => {
        const registrationId = `lib-${keyType}-${transport}`;
        const result = await register({
          idScope: emulator.idScope,
          registrationId,
          security: { groupKey: DEMO_GROUP_KEY },
          endpoint: endpointOf(emulator, transport),
          transport,
          trustedCa: emulator.caCertPem,
          certificate: { keyType },
          timeoutMs: 20_000,
        });
        const issued = result.issuedCertificate;
        assert.ok(issued?.privateKeyPem, 'a generated key comes back');
        const certificates = splitPem(issued.chainPem);
        assert.equal(certificates.length, 3, 'leaf, issuing CA, root');
        const [leafPem = '', issuingPem = ''] = certificates;
        const base = join(dir, registrationId);
        await writeFile(`${base}-leaf.pem`, leafPem);
        await writeFile(`${base}-issuing.pem`, issuingPem);
        const { stdout } = await execFileAsync('openssl', [
          'verify',
          '-CAfile',
          join(dir, 'root.pem'),
          '-untrusted',
          `${base}-issuing.pem`,
          `${base}-leaf.pem`,
        ]);
        assert.match(stdout, /: OK/);
        const leaf = new X509Certificate(leafPem);
        assert.equal(leaf.subject, `CN=${registrationId}`);
        assert.equal(
          leaf.publicKey.export({ type: 'spki', format: 'pem' }),
          createPublicKey(createPrivateKey(issued.privateKeyPem)).export({ type: 'spki', format: 'pem' }),
        );
        assert.equal(issued.serialNumber, leaf.serialNumber);
        assert.equal(issued.notAfter.getTime(), new Date(leaf.validTo).getTime());
        assert.equal(result.deviceId, registrationId);
      });
    }
  }

  test('a CSR made by openssl (the caller keeps its key): signed, and no private key comes back', async () => {
    const registrationId = 'lib-own-csr';
    const { stdout: csrPem } = await execFileAsync('openssl', [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-384',
      '-nodes',
      '-keyout',
      join(dir, 'own.key'),
      '-subj',
      `/CN=${registrationId}`,
    ]);
    const result = await register({
      idScope: emulator.idScope,
      registrationId,
      security: { groupKey: DEMO_GROUP_KEY },
      endpoint: endpointOf(emulator, 'mqtt-ws'),
      trustedCa: emulator.caCertPem,
      certificate: { csr: csrPem },
      timeoutMs: 20_000,
    });
    assert.equal(result.issuedCertificate?.privateKeyPem, undefined);
    const leaf = new X509Certificate(splitPem(result.issuedCertificate?.chainPem ?? '')[0] ?? '');
    assert.ok(leaf.checkPrivateKey(createPrivateKey(await readFile(join(dir, 'own.key')))));
  });

  test('a key type the enrollment refuses rejects with the service error and a hint about the CSR', async () => {
    await assert.rejects(
      register({
        idScope: strictEmulator.idScope,
        registrationId: 'lib-refused',
        security: { groupKey: DEMO_GROUP_KEY },
        endpoint: endpointOf(strictEmulator, 'mqtt'),
        transport: 'mqtt',
        trustedCa: strictEmulator.caCertPem,
        certificate: { keyType: 'ec-p256' },
        timeoutMs: 20_000,
      }),
      (error: unknown) => {
        assert.ok(error instanceof ProvisioningServiceError, String(error));
        assert.equal(error.statusCode, 400);
        assert.match(error.message, /P-256/);
        assert.match(error.hint ?? '', /certificate signing request/);
        return true;
      },
    );
  });

  test('a plain registration gets no issued certificate', async () => {
    const result = await register({
      idScope: emulator.idScope,
      registrationId: 'lib-plain',
      security: { groupKey: DEMO_GROUP_KEY },
      endpoint: endpointOf(emulator, 'mqtt'),
      transport: 'mqtt',
      trustedCa: emulator.caCertPem,
      timeoutMs: 20_000,
    });
    assert.equal(result.issuedCertificate, undefined);
    assert.equal(result.registrationState.issuedCertificateChain, undefined);
  });
});
