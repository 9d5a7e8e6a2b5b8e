// buildCsr (issue 11): the PKCS#10 request a device sends DPS. `openssl req -verify` is the independent
// judge; readCsr (the emulator's reader) must read back what the builder wrote.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { buildCsr } from '../src/protocol/csr-builder.js';
import { readCsr } from '../src/protocol/csr-reader.js';
import { derChildren, Oid, readDer, Tag } from '../src/protocol/der.js';
import { isValidRegistrationId } from '../src/protocol/validate.js';
import { openssl } from './support/openssl-ca.js';

interface KeyCase {
  name: string;
  keyType: string;
  signatureAlgorithm: string;
  keys: () => { privateKey: KeyObject; publicKey: KeyObject };
}

const KEY_CASES: KeyCase[] = [
  {
    name: 'EC P-384',
    keyType: 'ec-p384',
    signatureAlgorithm: Oid.ecdsaWithSha384,
    keys: () => generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  },
  {
    name: 'EC P-256',
    keyType: 'ec-p256',
    signatureAlgorithm: Oid.ecdsaWithSha256,
    keys: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  },
  {
    name: 'RSA 2048',
    keyType: 'rsa-2048',
    signatureAlgorithm: Oid.sha256WithRsa,
    keys: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  },
];

/** What the service accepts as a registration id: lowercase letters, digits, - . _ : (1 to 128). */
const registrationIds = fc.stringMatching(/^[a-z0-9\-._:]{1,128}$/);

let dir = '';
let fileCount = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dps-mqtt-csr-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** `openssl req -verify` on the DER request: its subject line, or a rejection. */
async function opensslVerify(der: Uint8Array): Promise<{ subject: string; output: string }> {
  fileCount += 1;
  const file = join(dir, `request-${fileCount}.der`);
  await writeFile(file, der);
  const { stdout, stderr } = await openssl([
    'req',
    '-inform',
    'DER',
    '-in',
    file,
    '-verify',
    '-noout',
    '-subject',
  ]);
  return { subject: stdout.trim(), output: `${stdout}${stderr}` };
}

describe('buildCsr', () => {
  for (const keyCase of KEY_CASES) {
    test(`${keyCase.name}: openssl req -verify accepts the request and shows CN = the registration id`, async () => {
      const { privateKey, publicKey } = keyCase.keys();
      const der = buildCsr({ commonName: 'device-01', privateKey, publicKey });
      const { subject, output } = await opensslVerify(der);
      assert.match(output, /self-signature verify OK/);
      assert.equal(subject, 'subject=CN = device-01');
    });

    test(`${keyCase.name}: readCsr reads back the CN, the key, the signature algorithm and a valid signature`, () => {
      const { privateKey, publicKey } = keyCase.keys();
      const parsed = readCsr(buildCsr({ commonName: 'device-01', privateKey, publicKey }));
      assert.deepEqual(parsed.commonNames, ['device-01']);
      assert.equal(parsed.subjectAttributeCount, 1);
      assert.equal(parsed.keyType, keyCase.keyType);
      assert.equal(parsed.signatureAlgorithm, keyCase.signatureAlgorithm);
      assert.equal(parsed.signatureValid, true);
      assert.deepEqual(parsed.publicKeySpkiDer, publicKey.export({ type: 'spki', format: 'der' }));
    });
  }

  test('the subject is CN only, as a UTF8String, and the attributes are an empty [0]', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = buildCsr({ commonName: 'device-01', privateKey, publicKey });
    const [info] = derChildren(readDer(der));
    const [version, subject, , attributes] = derChildren(info!);
    assert.deepEqual([...version!.content], [0]);
    const [rdn] = derChildren(subject!);
    const [pair] = derChildren(rdn!);
    const [, value] = derChildren(pair!);
    assert.equal(value!.tag, Tag.utf8String);
    assert.equal(value!.content.toString('utf8'), 'device-01');
    assert.equal(attributes!.tag, 0xa0);
    assert.equal(attributes!.content.length, 0);
  });

  test('an RSA signature algorithm carries NULL parameters, an ECDSA one none (RFC 4055, RFC 5758)', () => {
    const algorithmOf = (keys: { privateKey: KeyObject; publicKey: KeyObject }) =>
      derChildren(derChildren(readDer(buildCsr({ commonName: 'd', ...keys })))[1]!).map((node) => node.tag);
    assert.deepEqual(algorithmOf(generateKeyPairSync('rsa', { modulusLength: 2048 })), [Tag.oid, Tag.null]);
    assert.deepEqual(algorithmOf(generateKeyPairSync('ec', { namedCurve: 'P-384' })), [Tag.oid]);
  });

  test('a key of another type or curve is refused with a message naming it', () => {
    const ed = generateKeyPairSync('ed25519');
    assert.throws(() => buildCsr({ commonName: 'd', ...ed }), /ed25519 key is not supported/);
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
    assert.throws(() => buildCsr({ commonName: 'd', ...p521 }), /EC secp521r1 key is not supported/);
  });

  test('an empty common name or a swapped key pair is refused', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.throws(() => buildCsr({ commonName: '', privateKey, publicKey }), TypeError);
    assert.throws(
      () => buildCsr({ commonName: 'd', privateKey: publicKey, publicKey: privateKey }),
      TypeError,
    );
  });

  test('property: for any valid registration id, readCsr reads the same CN back and the signature verifies', () => {
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    fc.assert(
      fc.property(registrationIds, (registrationId) => {
        assert.ok(isValidRegistrationId(registrationId));
        const parsed = readCsr(buildCsr({ commonName: registrationId, ...keys }));
        assert.deepEqual(parsed.commonNames, [registrationId]);
        assert.equal(parsed.signatureValid, true);
      }),
      { numRuns: 300 },
    );
  });

  test('property: for any valid registration id, openssl req -verify accepts the request and shows that CN', async () => {
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    await fc.assert(
      fc.asyncProperty(registrationIds, async (registrationId) => {
        const { subject, output } = await opensslVerify(buildCsr({ commonName: registrationId, ...keys }));
        assert.match(output, /self-signature verify OK/);
        assert.equal(subject, `subject=CN = ${registrationId}`);
      }),
      { numRuns: 25 },
    );
  });
});
