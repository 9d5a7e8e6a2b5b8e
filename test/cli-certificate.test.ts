// Issue 11, CLI: `dps-mqtt register --certificate --out DIR`, `--renew-before`, `--csr` and `dps-mqtt csr`
// as child processes against the emulator on loopback, checked with the openssl binary.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { DEMO_GROUP_KEY } from '../src/emulator/enrollments/config.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';
import { type CliRun, ROOT, runCli } from './support/cli-process.js';

const execFileAsync = promisify(execFile);

const run = (args: string[], cwd = ROOT): Promise<CliRun> => runCli(args, { cwd });

async function openssl(args: string[], input?: string): Promise<string> {
  if (input === undefined) return (await execFileAsync('openssl', args, { encoding: 'utf8' })).stdout;
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stdin.end(input);
  const [code] = (await once(child, 'close')) as [number];
  assert.equal(code, 0, `openssl ${args.join(' ')} failed`);
  return stdout;
}

function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
}

function nonEmptyLines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

let emulator: TestEmulator;
let sevenDayEmulator: TestEmulator;
let strictEmulator: TestEmulator;
let scratch: { path: string; remove(): Promise<void> };
let deadPort: Server;
let deadPortConnections = 0;

before(async () => {
  emulator = await startTestEmulator();
  sevenDayEmulator = await startTestEmulator({ certificateIssuance: { validityDays: 7 } });
  strictEmulator = await startTestEmulator({ certificateIssuance: { keyTypes: ['ec-p384'] } });
  scratch = await temporaryDirectory('dps-mqtt-cli-cert-');
  // A port that counts connections and never answers: a cached run must not touch it.
  deadPort = createServer((socket) => {
    deadPortConnections += 1;
    socket.destroy();
  });
  deadPort.listen(0, '127.0.0.1');
  await once(deadPort, 'listening');
});

after(async () => {
  await Promise.all([emulator.close(), sevenDayEmulator.close(), strictEmulator.close()]);
  deadPort.close();
  await scratch.remove();
});

function deviceArgs(
  target: TestEmulator,
  registrationId: string,
  transport: 'mqtt-ws' | 'mqtt' = 'mqtt-ws',
): string[] {
  return [
    'register',
    '--transport',
    transport,
    '--endpoint',
    `127.0.0.1:${transport === 'mqtt' ? target.mqttPort : target.wssPort}`,
    '--ca',
    target.pki.caPath,
    '--id-scope',
    target.idScope,
    '--registration-id',
    registrationId,
    '--group-key',
    DEMO_GROUP_KEY,
  ];
}

/** The same device, pointed at a port where no DPS answers (and connections are counted). */
function offlineArgs(target: TestEmulator, registrationId: string): string[] {
  const args = deviceArgs(target, registrationId);
  args[args.indexOf('--endpoint') + 1] = `127.0.0.1:${(deadPort.address() as { port: number }).port}`;
  return [...args, '--timeout', '5'];
}

let directoryCount = 0;
function newDirectory(): string {
  directoryCount += 1;
  return join(scratch.path, `device-${directoryCount}`);
}

/** Every file in DIR (following links) and where .current points, to prove nothing changed. */
function snapshot(directory: string): Record<string, string> {
  const state: Record<string, string> = {};
  for (const name of readdirSync(directory, { recursive: true }) as string[]) {
    const path = join(directory, name);
    try {
      state[name] = statSync(path).isFile() ? readFileSync(path, 'latin1') : 'directory';
    } catch {
      state[name] = 'dangling';
    }
  }
  if (existsSync(join(directory, '.current'))) state['->current'] = readlinkSync(join(directory, '.current'));
  return state;
}

/** openssl verify of the written chain against the emulator's root, and the written key against the leaf. */
async function assertVerifiableCertificate(directory: string, target: TestEmulator, registrationId: string) {
  const chainPem = readFileSync(join(directory, 'device-chain.pem'), 'utf8');
  const [leaf, issuing, root] = pemBlocks(chainPem);
  assert.ok(leaf && issuing && root, 'device-chain.pem holds leaf, issuing CA and root');
  const issuingPath = join(directory, '..', `${registrationId}-issuing.pem`);
  const leafPath = join(directory, '..', `${registrationId}-leaf.pem`);
  writeFileSync(issuingPath, issuing);
  writeFileSync(leafPath, leaf);
  assert.equal(new X509Certificate(root).raw.equals(new X509Certificate(target.caCertPem).raw), true);
  const verified = await openssl([
    'verify',
    '-CAfile',
    target.pki.caPath,
    '-untrusted',
    issuingPath,
    leafPath,
  ]);
  assert.match(verified, /: OK/);
  const leafKey = await openssl(['x509', '-pubkey', '-noout', '-in', leafPath]);
  const writtenKey = await openssl(['pkey', '-pubout', '-in', join(directory, 'device.key')]);
  assert.equal(writtenKey, leafKey);
  assert.equal(statSync(join(directory, 'device.key')).mode & 0o777, 0o600);
  assert.match(new X509Certificate(leaf).subject, new RegExp(`^CN=${registrationId}$`));
}

describe('dps-mqtt register --certificate --out DIR against the emulator', () => {
  for (const transport of ['mqtt-ws', 'mqtt'] as const) {
    for (const keyType of ['ec-p384', 'ec-p256', 'rsa-2048'] as const) {
      test(`${keyType} over ${transport}: openssl verifies the written chain and the key matches the leaf`, async () => {
        const registrationId = `cli-cert-${keyType}-${transport}`;
        const directory = newDirectory();
        // ec-p384 is the default: the bare flag must give it.
        const certificateFlag = keyType === 'ec-p384' ? ['--certificate'] : ['--certificate', keyType];
        const { code, stdout, stderr } = await run([
          ...deviceArgs(emulator, registrationId, transport),
          ...certificateFlag,
          '--out',
          directory,
        ]);
        assert.equal(code, 0, stderr);
        await assertVerifiableCertificate(directory, emulator, registrationId);
        assert.match(stdout, new RegExp(`Certificate: ${keyType}, serial [0-9A-F]+`));
        assert.ok(stdout.includes(join(directory, 'device.key')), 'prints where the key is');
        assert.ok(stdout.includes(`DeviceId=${registrationId};x509=true`));
        assert.doesNotMatch(stdout + stderr, /PRIVATE KEY|SharedAccessKey/);
        const record = JSON.parse(readFileSync(join(directory, 'registration.json'), 'utf8'));
        assert.equal(record.registrationId, registrationId);
        assert.equal(record.idScope, emulator.idScope);
        assert.equal(record.certificate.keyType, keyType);
      });
    }
  }

  test('--json prints registration.json plus the file paths, and no secret is in it', async () => {
    const directory = newDirectory();
    const { code, stdout, stderr } = await run([
      ...deviceArgs(emulator, 'cli-cert-json'),
      '--certificate=ec-p256',
      '--out',
      directory,
      '--json',
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(nonEmptyLines(stdout).length, 1);
    const output = JSON.parse(stdout);
    assert.equal(output.cached, false);
    assert.deepEqual(output.certificateFiles, {
      directory,
      chain: join(directory, 'device-chain.pem'),
      registration: join(directory, 'registration.json'),
      key: join(directory, 'device.key'),
    });
    const record = JSON.parse(readFileSync(join(directory, 'registration.json'), 'utf8'));
    assert.deepEqual(
      { ...output, certificateFiles: undefined, cached: undefined },
      { ...record, certificateFiles: undefined, cached: undefined },
    );
    assert.equal(
      record.certificate.serialNumber,
      new X509Certificate(readFileSync(join(directory, 'device-chain.pem'))).serialNumber.toUpperCase(),
    );
    const fileText = readFileSync(join(directory, 'registration.json'), 'utf8');
    assert.doesNotMatch(fileText, /PRIVATE KEY|SharedAccessKey|issuedCertificateChain/);
    assert.ok(!fileText.includes(DEMO_GROUP_KEY));
  });

  test('the written key and chain work as a TLS client certificate trusted by the emulator root', async () => {
    const directory = newDirectory();
    const { code, stderr } = await run([
      ...deviceArgs(emulator, 'cli-cert-tls'),
      '--certificate',
      '--out',
      directory,
    ]);
    assert.equal(code, 0, stderr);
    const server = createTlsServer({
      key: emulator.pki.server.keyPem,
      cert: emulator.pki.server.certPem,
      ca: emulator.caCertPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    let clientSubject = '';
    server.on('secureConnection', (socket) => {
      clientSubject = socket.getPeerX509Certificate()?.subject ?? '';
      socket.end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: (server.address() as { port: number }).port,
        servername: 'localhost',
        ca: emulator.caCertPem,
        key: readFileSync(join(directory, 'device.key')),
        cert: readFileSync(join(directory, 'device-chain.pem')),
      });
      socket.on('data', () => {});
      await once(socket, 'secureConnect');
      await once(socket, 'close');
      assert.equal(clientSubject, 'CN=cli-cert-tls');
    } finally {
      server.close();
    }
  });

  test('--csr FILE from openssl (an independent producer) is signed; no device.key is written', async () => {
    const directory = newDirectory();
    const keyPath = join(scratch.path, 'openssl-device.key');
    const csrPath = join(scratch.path, 'openssl-device.csr');
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyPath]);
    await openssl([
      'req',
      '-new',
      '-key',
      keyPath,
      '-subj',
      '/CN=cli-cert-own-csr',
      '-outform',
      'DER',
      '-out',
      csrPath,
    ]);
    const { code, stdout, stderr } = await run([
      ...deviceArgs(emulator, 'cli-cert-own-csr'),
      '--csr',
      csrPath,
      '--out',
      directory,
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(existsSync(join(directory, 'device.key')), false);
    assert.match(stdout, /not written/);
    const [leaf] = pemBlocks(readFileSync(join(directory, 'device-chain.pem'), 'utf8'));
    assert.equal(
      await openssl(['x509', '-pubkey', '-noout'], leaf),
      await openssl(['pkey', '-pubout', '-in', keyPath]),
    );
  });
});

describe('--renew-before: a boot script may run the command every time', () => {
  test('a fresh certificate is reused without any network connection, and the files are untouched', async () => {
    const directory = newDirectory();
    const first = await run([
      ...deviceArgs(emulator, 'cli-renew-fresh'),
      '--certificate',
      '--out',
      directory,
    ]);
    assert.equal(first.code, 0, first.stderr);
    const before = snapshot(directory);
    const connectionsBefore = deadPortConnections;

    const { code, stdout, stderr } = await run([
      ...offlineArgs(emulator, 'cli-renew-fresh'),
      '--certificate',
      '--out',
      directory,
      '--renew-before',
      '7d',
      '--json',
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(deadPortConnections, connectionsBefore, 'no connection was made');
    assert.match(
      stderr,
      /certificate in \S+ is valid until \S+ \(\d+ days left\); not renewing \(renew-before 7d\)/,
    );
    const output = JSON.parse(stdout);
    assert.equal(output.cached, true);
    assert.equal(output.registrationId, 'cli-renew-fresh');
    assert.equal(output.certificateFiles.key, join(directory, 'device.key'));
    assert.deepEqual(snapshot(directory), before);
  });

  test('the same run with a share of the lifetime (20%) reuses it too; without --renew-before it registers', async () => {
    const directory = newDirectory();
    assert.equal(
      (await run([...deviceArgs(emulator, 'cli-renew-pct'), '--certificate', '--out', directory])).code,
      0,
    );
    const before = snapshot(directory);
    const cached = await run([
      ...offlineArgs(emulator, 'cli-renew-pct'),
      '--certificate',
      '--out',
      directory,
      '--renew-before',
      '20%',
    ]);
    assert.equal(cached.code, 0, cached.stderr);
    assert.match(cached.stdout, /DPS was not contacted/);
    assert.deepEqual(snapshot(directory), before);

    const again = await run([...deviceArgs(emulator, 'cli-renew-pct'), '--certificate', '--out', directory]);
    assert.equal(again.code, 0, again.stderr);
    assert.notEqual(readFileSync(join(directory, 'device.key'), 'utf8'), before['device.key']);
  });

  test('a certificate within the threshold (7-day policy, --renew-before 8d) is renewed with a new key', async () => {
    const directory = newDirectory();
    const args = [
      ...deviceArgs(sevenDayEmulator, 'cli-renew-expiring'),
      '--certificate',
      '--out',
      directory,
      '--renew-before',
      '8d',
    ];
    const first = await run(args);
    assert.equal(first.code, 0, first.stderr);
    const oldKey = readFileSync(join(directory, 'device.key'), 'utf8');
    const oldSerial = new X509Certificate(readFileSync(join(directory, 'device-chain.pem'))).serialNumber;
    const oldGeneration = readlinkSync(join(directory, '.current'));

    const { code, stderr } = await run(args);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /within renew-before 8d; registering for a new certificate/);
    assert.notEqual(readFileSync(join(directory, 'device.key'), 'utf8'), oldKey);
    assert.notEqual(
      new X509Certificate(readFileSync(join(directory, 'device-chain.pem'))).serialNumber,
      oldSerial,
    );
    await assertVerifiableCertificate(directory, sevenDayEmulator, 'cli-renew-expiring');
    // The old set is gone once the new one is current.
    const generations = readdirSync(directory).filter((name) => name.startsWith('.generation-'));
    assert.deepEqual(generations, [readlinkSync(join(directory, '.current'))]);
    assert.notEqual(generations[0], oldGeneration);
  });

  test('asking for another key type renews even when the certificate is fresh', async () => {
    const directory = newDirectory();
    assert.equal(
      (await run([...deviceArgs(emulator, 'cli-renew-type'), '--certificate', '--out', directory])).code,
      0,
    );
    const { code, stderr } = await run([
      ...deviceArgs(emulator, 'cli-renew-type'),
      '--certificate',
      'ec-p256',
      '--out',
      directory,
      '--renew-before',
      '1d',
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /has an ec-p384 key, not ec-p256/);
    assert.equal(
      JSON.parse(readFileSync(join(directory, 'registration.json'), 'utf8')).certificate.keyType,
      'ec-p256',
    );
  });
});

describe('a corrupt or mismatched DIR is reported (exit 7), never overwritten', () => {
  async function populated(registrationId: string): Promise<string> {
    const directory = newDirectory();
    const { code, stderr } = await run([
      ...deviceArgs(emulator, registrationId),
      '--certificate',
      '--out',
      directory,
    ]);
    assert.equal(code, 0, stderr);
    return directory;
  }

  async function assertRefused(directory: string, args: string[], message: RegExp): Promise<void> {
    const before = snapshot(directory);
    const connectionsBefore = deadPortConnections;
    const { code, stdout, stderr } = await run(args);
    assert.equal(code, 7, stderr);
    assert.equal(nonEmptyLines(stderr).length, 1, stderr);
    assert.match(stderr, message);
    assert.match(stderr, /ERR_CERTIFICATE_DIRECTORY/);
    assert.equal(stdout, '');
    assert.equal(deadPortConnections, connectionsBefore, 'nothing was sent');
    assert.deepEqual(snapshot(directory), before);
  }

  test('a chain that cannot be parsed', async () => {
    const directory = await populated('cli-corrupt-chain');
    const chainPath = join(directory, '.current', 'device-chain.pem');
    writeFileSync(
      chainPath,
      readFileSync(chainPath, 'utf8').replace(/^(-----BEGIN CERTIFICATE-----\n)..../m, '$1!!!!'),
    );
    await assertRefused(
      directory,
      [
        ...offlineArgs(emulator, 'cli-corrupt-chain'),
        '--certificate',
        '--out',
        directory,
        '--renew-before',
        '7d',
      ],
      /device-chain\.pem: certificate 1 of 3 cannot be parsed/,
    );
  });

  test('a key that does not match the leaf', async () => {
    const directory = await populated('cli-corrupt-key');
    const otherKey = await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']);
    writeFileSync(join(directory, '.current', 'device.key'), otherKey);
    await assertRefused(
      directory,
      [
        ...offlineArgs(emulator, 'cli-corrupt-key'),
        '--certificate',
        '--out',
        directory,
        '--renew-before',
        '7d',
      ],
      /device\.key does not belong to the certificate in device-chain\.pem/,
    );
  });

  test('the directory of another registration id, with or without --renew-before', async () => {
    const directory = await populated('cli-corrupt-owner');
    for (const extra of [['--renew-before', '7d'], []]) {
      await assertRefused(
        directory,
        [...offlineArgs(emulator, 'cli-someone-else'), '--certificate', '--out', directory, ...extra],
        /holds the certificate of registration "cli-corrupt-owner" in ID scope \S+, not "cli-someone-else"/,
      );
    }
  });

  test('files that dps-mqtt did not write', async () => {
    const directory = newDirectory();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(directory);
    writeFileSync(join(directory, 'device.key'), 'my own key\n');
    await assertRefused(
      directory,
      [...offlineArgs(emulator, 'cli-foreign'), '--certificate', '--out', directory],
      /device\.key is a file that dps-mqtt did not write/,
    );
  });

  test('--force replaces a corrupt directory', async () => {
    const directory = await populated('cli-corrupt-force');
    writeFileSync(join(directory, '.current', 'device-chain.pem'), 'garbage\n');
    const { code, stderr } = await run([
      ...deviceArgs(emulator, 'cli-corrupt-force'),
      '--certificate',
      '--out',
      directory,
      '--renew-before',
      '7d',
      '--force',
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /replacing it \(--force\)/);
    await assertVerifiableCertificate(directory, emulator, 'cli-corrupt-force');
  });
});

describe('refusals and usage', () => {
  test('a CSR refusal from the emulator (strict: ec-p384 only) is one line and exit 4; DIR is not created', async () => {
    const directory = newDirectory();
    const { code, stdout, stderr } = await run([
      ...deviceArgs(strictEmulator, 'cli-refused'),
      '--certificate',
      'ec-p256',
      '--out',
      directory,
    ]);
    assert.equal(code, 4, stderr);
    assert.equal(nonEmptyLines(stderr).length, 1, stderr);
    assert.match(stderr, /^dps-mqtt register: error: .*P-256.* \[ERR_SERVICE during (register|poll)/);
    assert.match(
      stderr,
      /certificate signing request/,
      'the hint speaks of the CSR, not of a custom payload',
    );
    assert.equal(stdout, '');
    assert.equal(existsSync(directory), false);
  });

  test('a --csr whose CN is not the registration id is refused before sending (one line, exit 2)', async () => {
    const keyPath = join(scratch.path, 'wrong-cn.key');
    const csrPath = join(scratch.path, 'wrong-cn.csr');
    await openssl(['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', keyPath]);
    await openssl(['req', '-new', '-key', keyPath, '-subj', '/CN=somebody-else', '-out', csrPath]);
    const connectionsBefore = deadPortConnections;
    const { code, stderr } = await run([
      ...offlineArgs(emulator, 'cli-wrong-cn'),
      '--csr',
      csrPath,
      '--out',
      newDirectory(),
    ]);
    assert.equal(code, 2, stderr);
    assert.equal(nonEmptyLines(stderr).length, 1, stderr);
    assert.match(stderr, /CN "somebody-else".*cli-wrong-cn/);
    assert.equal(deadPortConnections, connectionsBefore);
  });

  const usage: Array<[string, string[], RegExp]> = [
    ['--out without --certificate', ['--out', 'x'], /--out needs --certificate/],
    ['--certificate without --out', ['--certificate'], /--certificate needs --out DIR/],
    ['an unknown key type', ['--certificate', 'ed25519', '--out', 'x'], /key type "ed25519" is unknown/],
    [
      'a malformed --renew-before',
      ['--certificate', '--out', 'x', '--renew-before', '7 days'],
      /--renew-before: give a duration/,
    ],
    ['--renew-before 100%', ['--certificate', '--out', 'x', '--renew-before', '100%'], /less than 100%/],
    [
      '--certificate with --csr',
      ['--certificate', '--csr', 'x.csr', '--out', 'x'],
      /cannot be used together/,
    ],
    [
      'an api-version without certificate issuance',
      ['--certificate', '--out', 'x', '--api-version', '2021-06-01'],
      /2025-07-01-preview/,
    ],
  ];
  for (const [name, extra, message] of usage) {
    test(`${name} exits 2 before any connection`, async () => {
      const connectionsBefore = deadPortConnections;
      const { code, stderr } = await run([...offlineArgs(emulator, 'cli-usage'), ...extra]);
      assert.equal(code, 2, stderr);
      assert.match(stderr, message);
      assert.equal(deadPortConnections, connectionsBefore);
    });
  }
});

describe('dps-mqtt csr', () => {
  for (const keyType of ['ec-p384', 'ec-p256', 'rsa-2048'] as const) {
    test(`${keyType}: the CSR is accepted by openssl req -verify and the key (mode 0600) is its key`, async () => {
      const keyPath = join(scratch.path, `csr-${keyType}.key`);
      const { code, stdout, stderr } = await run([
        'csr',
        '--registration-id',
        'csr-device',
        '--key-type',
        keyType,
        '--key-out',
        keyPath,
      ]);
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
      assert.doesNotMatch(stdout, /PRIVATE KEY/);
      const verify = spawn('openssl', ['req', '-noout', '-verify', '-subject'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let output = '';
      verify.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
      });
      verify.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
      });
      verify.stdin.end(stdout);
      const [verifyCode] = (await once(verify, 'close')) as [number];
      assert.equal(verifyCode, 0, output);
      assert.match(output, /verify OK/i);
      assert.match(output, /subject=\s*CN\s*=\s*csr-device/);
      assert.equal(statSync(keyPath).mode & 0o777, 0o600);
      assert.equal(
        await openssl(['req', '-noout', '-pubkey'], stdout),
        await openssl(['pkey', '-pubout', '-in', keyPath]),
      );
    });
  }

  test('--base64 prints the register request form (one line of base64 DER)', async () => {
    const keyPath = join(scratch.path, 'csr-base64.key');
    const { code, stdout, stderr } = await run([
      'csr',
      '--registration-id',
      'csr-b64',
      '--key-out',
      keyPath,
      '--base64',
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^[A-Za-z0-9+/]+=*\n$/);
  });

  test('--key-out is required, and an existing key file is never overwritten (exit 2)', async () => {
    const missing = await run(['csr', '--registration-id', 'csr-device']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--key-out FILE is required/);
    const keyPath = join(scratch.path, 'existing.key');
    writeFileSync(keyPath, 'precious\n');
    const existing = await run(['csr', '--registration-id', 'csr-device', '--key-out', keyPath]);
    assert.equal(existing.code, 2);
    assert.match(existing.stderr, /already exists/);
    assert.equal(existing.stdout, '');
    assert.equal(readFileSync(keyPath, 'utf8'), 'precious\n');
  });
});
