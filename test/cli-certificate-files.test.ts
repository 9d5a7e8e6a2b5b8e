// Issue 11, CLI pieces without a network: --renew-before parsing, the certificate flags, and the
// certificate directory (its layout, its checks, and its replacement as one set).
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseRegisterArgs, UsageError, withBareCertificateFlag } from '../src/cli/args.js';
import {
  CertificateDirectoryError,
  REGISTRATION_FILE_FORMAT,
  readCertificateDirectory,
  replaceCertificateFiles,
} from '../src/cli/certificate-files.js';
import { isBeyondThreshold, parseRenewThreshold } from '../src/cli/duration.js';
import { ExitCode, exitCodeFor } from '../src/cli/exit-codes.js';
import { issueCertificate } from '../src/emulator/pki/pki.js';
import { CertificateChainError } from '../src/protocol/errors.js';
import { temporaryDirectory, testPki } from './helpers/emulator.js';

const DAY = 86_400_000;

describe('--renew-before DURATION|PERCENT', () => {
  const valid: Array<[string, ReturnType<typeof parseRenewThreshold>]> = [
    ['7d', { kind: 'duration', ms: 7 * DAY, text: '7d' }],
    ['36h', { kind: 'duration', ms: 36 * 3_600_000, text: '36h' }],
    ['90m', { kind: 'duration', ms: 90 * 60_000, text: '90m' }],
    ['1.5d', { kind: 'duration', ms: 1.5 * DAY, text: '1.5d' }],
    ['2w', { kind: 'duration', ms: 14 * DAY, text: '2w' }],
    ['20%', { kind: 'percent', percent: 20, text: '20%' }],
    ['12.5%', { kind: 'percent', percent: 12.5, text: '12.5%' }],
  ];
  for (const [text, expected] of valid) {
    test(`${text} is accepted`, () => assert.deepEqual(parseRenewThreshold(text), expected));
  }
  for (const text of ['', '7', 'd', '7 days', '-1d', '0d', '0%', '100%', '150%', '7y', '1e3d']) {
    test(`${JSON.stringify(text)} is refused with what is accepted`, () => {
      assert.throws(() => parseRenewThreshold(text), RangeError);
    });
  }

  const validity = {
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2026-01-31T00:00:00Z'),
  };
  const at = (iso: string) => new Date(iso);
  const table: Array<[string, string, boolean]> = [
    ['7d', '2026-01-23T23:59:59Z', true], // a second more than 7 days left
    ['7d', '2026-01-24T00:00:00Z', false], // exactly 7 days left: renew
    ['20%', '2026-01-24T23:59:59Z', true], // 30-day lifetime, 20% = 6 days
    ['20%', '2026-01-25T00:00:00Z', false],
    ['1h', '2025-12-31T23:00:00Z', false], // not yet valid
    ['1h', '2026-02-01T00:00:00Z', false], // expired
  ];
  for (const [threshold, now, fresh] of table) {
    test(`${threshold} at ${now}: ${fresh ? 'fresh' : 'renew'}`, () => {
      assert.equal(isBeyondThreshold(validity, parseRenewThreshold(threshold), at(now)), fresh);
    });
  }
});

describe('register flags for certificate issuance', () => {
  const base = [
    '--id-scope',
    '0ne00000000',
    '--registration-id',
    'dev-1',
    '--symmetric-key',
    'a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleQ==',
  ];
  const parse = (argv: string[], readBytes?: (path: string) => Uint8Array) => {
    const invocation = parseRegisterArgs([...base, ...argv], {}, () => '', readBytes);
    assert.notEqual(invocation, 'help');
    return invocation as Exclude<typeof invocation, 'help'>;
  };

  test('a bare --certificate means ec-p384, last or before another flag', () => {
    assert.deepEqual(withBareCertificateFlag(['--certificate']), ['--certificate=ec-p384']);
    assert.deepEqual(withBareCertificateFlag(['--certificate', '--out', 'd']), [
      '--certificate=ec-p384',
      '--out',
      'd',
    ]);
    assert.deepEqual(withBareCertificateFlag(['--certificate', 'rsa-2048']), ['--certificate', 'rsa-2048']);
    const invocation = parse(['--certificate', '--out', 'dir']);
    assert.deepEqual(invocation.options.certificate, { keyType: 'ec-p384' });
    assert.deepEqual(invocation.certificateOutput, { directory: 'dir', keyType: 'ec-p384', force: false });
  });

  test('--certificate TYPE, --certificate=TYPE, --renew-before and --force', () => {
    assert.deepEqual(parse(['--certificate', 'ec-p256', '--out', 'd']).options.certificate, {
      keyType: 'ec-p256',
    });
    const invocation = parse(['--certificate=rsa-2048', '--out', 'd', '--renew-before', '20%', '--force']);
    assert.deepEqual(invocation.options.certificate, { keyType: 'rsa-2048' });
    assert.deepEqual(invocation.certificateOutput?.renewBefore, {
      kind: 'percent',
      percent: 20,
      text: '20%',
    });
    assert.equal(invocation.certificateOutput?.force, true);
  });

  test('--csr FILE: PEM is passed as text, DER as bytes, and no key type', () => {
    const pem = '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n';
    const fromPem = parse(['--csr', 'a.csr', '--out', 'd'], () => Buffer.from(pem));
    assert.deepEqual(fromPem.options.certificate, { csr: pem });
    assert.equal(fromPem.certificateOutput?.keyType, undefined);
    const der = Uint8Array.from([0x30, 0x82, 0x01, 0x00]);
    assert.deepEqual(parse(['--csr', 'a.der', '--out', 'd'], () => der).options.certificate, { csr: der });
  });

  test('a plain registration has no certificate option', () => {
    const invocation = parse([]);
    assert.equal(invocation.options.certificate, undefined);
    assert.equal(invocation.certificateOutput, undefined);
  });

  const refused: Array<[string[], string]> = [
    [['--out', 'd'], '--out'],
    [['--renew-before', '7d'], '--renew-before'],
    [['--force'], '--force'],
    [['--certificate'], '--out'],
    [['--certificate', 'ec-p521', '--out', 'd'], '--certificate'],
    [['--certificate', '--csr', 'x', '--out', 'd'], '--csr'],
    [['--certificate', '--out', 'd', '--renew-before', 'soon'], '--renew-before'],
  ];
  for (const [argv, flag] of refused) {
    test(`${argv.join(' ')} is a usage error naming ${flag}`, () => {
      assert.throws(
        () => parse(argv, () => Buffer.from('')),
        (error) => error instanceof UsageError && error.flag === flag,
      );
    });
  }
});

describe('exit codes of certificate issuance', () => {
  test('a chain that fails a check is a service failure (4); an unusable --out DIR is 7', () => {
    assert.equal(exitCodeFor(new CertificateChainError('chain-issuer', 'x')), ExitCode.service);
    assert.equal(
      exitCodeFor(new CertificateDirectoryError('/d', 'x', { phase: 'input' })),
      ExitCode.certificateDirectory,
    );
    assert.equal(ExitCode.certificateDirectory, 7);
  });
});

describe('the certificate directory', () => {
  let scratch: { path: string; remove(): Promise<void> };
  let chainPem: string;
  let keyPem: string;
  let count = 0;
  const registrationId = 'files-device';

  before(async () => {
    scratch = await temporaryDirectory('dps-mqtt-cert-files-');
    const pki = await testPki();
    const leaf = await issueCertificate({
      issuer: pki.ca,
      commonName: registrationId,
      usage: 'client',
      days: 30,
    });
    chainPem = `${leaf.certPem}${pki.ca.certPem}`;
    keyPem = leaf.keyPem;
  });
  after(() => scratch.remove());

  const directory = () => {
    count += 1;
    return join(scratch.path, `dir-${count}`);
  };
  const registrationJson = (overrides: Record<string, unknown> = {}) =>
    JSON.stringify({
      format: REGISTRATION_FILE_FORMAT,
      idScope: '0ne00000000',
      registrationId,
      deviceId: registrationId,
      assignedHub: 'hub.azure-devices.net',
      ...overrides,
    });
  const read = (dir: string, registration = registrationId) =>
    readCertificateDirectory({
      directory: dir,
      idScope: '0ne00000000',
      registrationId: registration,
      expectKey: true,
    });

  test('a missing directory, or one without the files, holds nothing', async () => {
    const dir = directory();
    assert.equal(await read(dir), undefined);
    mkdirSync(dir);
    writeFileSync(join(dir, 'README'), 'other files are left alone\n');
    assert.equal(await read(dir), undefined);
  });

  test('written files read back: stable names link through .current into a 0700 generation; the key is 0600', async () => {
    const dir = directory();
    const paths = await replaceCertificateFiles(dir, {
      privateKeyPem: keyPem,
      chainPem,
      registrationJson: registrationJson(),
    });
    assert.equal(paths.key, join(dir, 'device.key'));
    for (const name of ['device.key', 'device-chain.pem', 'registration.json']) {
      assert.equal(readlinkSync(join(dir, name)), `.current/${name}`);
    }
    const generation = readlinkSync(join(dir, '.current'));
    assert.match(generation, /^\.generation-\d+-/);
    assert.equal(statSync(join(dir, generation)).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'device.key')).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const stored = await read(dir);
    assert.equal(stored?.serialNumber, new X509Certificate(chainPem).serialNumber.toUpperCase());
    assert.equal(stored?.keyType, 'ec-p256');
    assert.equal(stored?.hasKey, true);
  });

  test("a replacement switches the whole set and removes the old generation and dead runs' leftovers", async () => {
    const dir = directory();
    await replaceCertificateFiles(dir, {
      privateKeyPem: keyPem,
      chainPem,
      registrationJson: registrationJson(),
    });
    const first = readlinkSync(join(dir, '.current'));
    // What a run killed before its switch leaves behind (pid 2^31-2 is not running).
    mkdirSync(join(dir, '.generation-2147483646-abc-0000'));
    writeFileSync(join(dir, '.generation-2147483646-abc-0000', 'device.key'), 'half-written');
    await replaceCertificateFiles(dir, {
      privateKeyPem: keyPem,
      chainPem,
      registrationJson: registrationJson({ note: 2 }),
    });
    const second = readlinkSync(join(dir, '.current'));
    assert.notEqual(second, first);
    assert.deepEqual(
      readdirSync(dir)
        .filter((name) => name.startsWith('.'))
        .sort(),
      ['.current', second].sort(),
    );
    assert.equal(JSON.parse(readFileSync(join(dir, 'registration.json'), 'utf8')).note, 2);
  });

  test('a set written before a crash switched .current is invisible: the old set stays whole', async () => {
    const dir = directory();
    await replaceCertificateFiles(dir, {
      privateKeyPem: keyPem,
      chainPem,
      registrationJson: registrationJson(),
    });
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    mkdirSync(join(dir, '.generation-2147483646-crash-0000'));
    writeFileSync(join(dir, '.generation-2147483646-crash-0000', 'device.key'), otherKey);
    assert.equal(readFileSync(join(dir, 'device.key'), 'utf8'), keyPem);
    assert.ok(await read(dir));
  });

  test('without a key (--csr) the device.key name is removed with the switch', async () => {
    const dir = directory();
    await replaceCertificateFiles(dir, {
      privateKeyPem: keyPem,
      chainPem,
      registrationJson: registrationJson(),
    });
    const paths = await replaceCertificateFiles(dir, { chainPem, registrationJson: registrationJson() });
    assert.equal(paths.key, undefined);
    assert.equal(existsSync(join(dir, 'device.key')), false);
    assert.throws(() => lstatSync(join(dir, 'device.key')));
    const stored = await readCertificateDirectory({
      directory: dir,
      idScope: '0ne00000000',
      registrationId,
      expectKey: false,
    });
    assert.equal(stored?.hasKey, false);
  });

  const broken: Array<[string, (dir: string) => void, RegExp]> = [
    [
      'an incomplete set',
      (dir) => writeFileSync(join(dir, '.current', 'registration.json'), ''),
      /registration\.json lacks|not valid JSON/,
    ],
    [
      'registration.json for another scope',
      (dir) =>
        writeFileSync(
          join(dir, '.current', 'registration.json'),
          registrationJson({ idScope: '0ne99999999' }),
        ),
      /in ID scope 0ne99999999, not "files-device" in 0ne00000000/,
    ],
    [
      'registration.json of another format',
      (dir) => writeFileSync(join(dir, '.current', 'registration.json'), registrationJson({ format: 'x' })),
      /has format "x"/,
    ],
    [
      'a chain whose leaf is not the registration',
      (dir) =>
        writeFileSync(
          join(dir, '.current', 'registration.json'),
          registrationJson({ registrationId: 'other', deviceId: 'other' }),
        ),
      /holds the certificate of registration "other"/,
    ],
    [
      'a chain out of order',
      (dir) =>
        writeFileSync(
          join(dir, '.current', 'device-chain.pem'),
          chainPem
            .split(/(?<=-----END CERTIFICATE-----\n)/)
            .reverse()
            .join(''),
        ),
      /certificate 1 is not issued by certificate 2/,
    ],
    [
      'an encrypted or unreadable key',
      (dir) => writeFileSync(join(dir, '.current', 'device.key'), 'not a key'),
      /not a readable unencrypted PEM private key/,
    ],
    [
      'a missing key',
      (dir) => writeFileSync(join(dir, '.current', 'device.key'), ''),
      /does not belong|not a readable/,
    ],
  ];
  for (const [name, breakIt, message] of broken) {
    test(`${name} is reported`, async () => {
      const dir = directory();
      await replaceCertificateFiles(dir, {
        privateKeyPem: keyPem,
        chainPem,
        registrationJson: registrationJson(),
      });
      breakIt(dir);
      await assert.rejects(
        read(dir),
        (error) =>
          error instanceof CertificateDirectoryError &&
          message.test(error.message) &&
          error.phase === 'input',
      );
    });
  }

  test('a key name without a key file, with the key expected, is an incomplete set', async () => {
    const dir = directory();
    await replaceCertificateFiles(dir, { chainPem, registrationJson: registrationJson() });
    await assert.rejects(
      read(dir),
      /incomplete: device\.key is missing beside device-chain\.pem and registration\.json/,
    );
  });

  test("a regular file under a managed name is not dps-mqtt's", async () => {
    const dir = directory();
    mkdirSync(dir);
    writeFileSync(join(dir, 'device-chain.pem'), chainPem);
    await assert.rejects(read(dir), /device-chain\.pem is a file that dps-mqtt did not write/);
  });
});
