// `dps-mqtt diagnose` against the emulator on loopback: success over both transports, the wrong
// transport for a port, a closed port, refused keys (a group key given as a device key), and X.509
// certificates that cannot work (CN not the registration id, expired). Each test names the failing step
// and the words that explain it, and scans the output for secrets.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createSelfSignedCertificate, DEMO_GROUP_KEY } from '../src/emulator/index.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';
import {
  assertNoSecrets,
  failedStepOf,
  parseReport,
  runDiagnoseCli,
  wordsOf,
  writeTemp,
} from './support/diagnose-cli.js';
import { freePort } from './support/net.js';

const execFileAsync = promisify(execFile);

/** A self-signed certificate valid only in January 2020, made with `openssl ca` (it takes past dates). */
async function expiredCertificate(
  dir: string,
  commonName: string,
): Promise<{ certPath: string; keyPath: string; certPem: string }> {
  const path = (name: string) => join(dir, name);
  await writeFile(path('index.txt'), '');
  await writeFile(path('serial'), '01\n');
  await writeFile(
    path('ca.cnf'),
    `[ca]\ndefault_ca = d\n[d]\ndatabase = ${path('index.txt')}\nnew_certs_dir = ${dir}\nserial = ${path('serial')}\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n`,
  );
  const openssl = (args: string[]) => execFileAsync('openssl', args, { timeout: 20_000 });
  await openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    `/CN=${commonName}`,
    '-keyout',
    path('expired.key'),
    '-out',
    path('expired.csr'),
  ]);
  await openssl([
    'ca',
    '-batch',
    '-config',
    path('ca.cnf'),
    '-selfsign',
    '-keyfile',
    path('expired.key'),
    '-in',
    path('expired.csr'),
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200201000000Z',
    '-out',
    path('expired.pem'),
  ]);
  const certPem = await readFile(path('expired.pem'), 'utf8');
  return { certPath: path('expired.pem'), keyPath: path('expired.key'), certPem };
}

describe('dps-mqtt diagnose against the emulator', () => {
  let emulator: TestEmulator;
  let dir: { path: string; remove(): Promise<void> };
  let caPath: string;
  let expired: { certPath: string; keyPath: string; certPem: string };

  before(async () => {
    dir = await temporaryDirectory('dps-mqtt-diagnose-');
    expired = await expiredCertificate(dir.path, 'expired-device');
    emulator = await startTestEmulator({
      enrollments: {
        individualEnrollments: [
          { registrationId: 'expired-device', attestation: { type: 'x509', certificate: expired.certPem } },
        ],
      },
    });
    caPath = await writeTemp(dir.path, 'ca.pem', emulator.caCertPem);
  });
  after(async () => {
    await emulator.close();
    await dir.remove();
  });

  const common = () => ['--id-scope', emulator.idScope, '--ca', caPath, '--timeout', '5'];

  test('the emulator over both transports: every step passes, a full registration included (exit 0)', async () => {
    const args = [
      ...common(),
      '--endpoint',
      '127.0.0.1',
      '--ws-port',
      String(emulator.wssPort),
      '--mqtt-port',
      String(emulator.mqttPort),
      '--transport',
      'both',
      '--registration-id',
      'diag-both',
      '--group-key',
      DEMO_GROUP_KEY,
      '--register',
    ];
    const checklist = await runDiagnoseCli(args);
    assert.equal(checklist.code, 0, checklist.stdout);
    assert.match(checklist.stdout, /MQTT over WebSocket \(127\.0\.0\.1:\d+\) works from here/);
    assert.match(checklist.stdout, /MQTT over TLS \(127\.0\.0\.1:\d+\) works from here/);
    assert.match(checklist.stdout, /✓ connect .* CONNACK 0: accepted/);
    assert.match(checklist.stdout, /✓ register .* assigned to /);
    assert.match(checklist.stdout, /every check passed/);
    assertNoSecrets(checklist.stdout + checklist.stderr, [DEMO_GROUP_KEY], 'diag-both');

    const json = await runDiagnoseCli([...args, '--json']);
    const report = parseReport(json.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.exitCode, 0);
    assert.deepEqual(report.working, ['mqtt-ws', 'mqtt']);
    const ws = report.transports[0];
    assert.deepEqual(
      ws?.steps.map((step) => `${step.step}:${step.status}`),
      [
        'input:ok',
        'dns:ok',
        'tcp:ok',
        'proxy:skip',
        'tls:ok',
        'tls-inspection:ok',
        'websocket:ok',
        'clock:ok',
        'connect:ok',
        'subscribe:ok',
        'register:ok',
      ],
    );
    // The emulator's upgrade answer carries a Date header, as DPS's does: the clocks agree.
    const clock = ws?.steps.find((step) => step.step === 'clock');
    assert.equal(typeof clock?.details?.skewSeconds, 'number');
    assert.ok(Math.abs(Number(clock?.details?.skewSeconds)) <= 5, JSON.stringify(clock));
    const tls = ws?.steps.find((step) => step.step === 'tls');
    assert.match(String(tls?.details?.version), /^TLSv1\.[23]$/);
    assert.equal(report.transports[1]?.steps.find((step) => step.step === 'websocket')?.status, 'skip');
    assertNoSecrets(json.stdout, [DEMO_GROUP_KEY], 'diag-both');
  });

  test('nothing listens on the port: tcp fails, "nothing listens" (exit 12)', async () => {
    const port = await freePort();
    const run = await runDiagnoseCli([
      ...common(),
      '--endpoint',
      `127.0.0.1:${port}`,
      '--registration-id',
      'diag-closed',
      '--group-key',
      DEMO_GROUP_KEY,
      '--json',
    ]);
    assert.equal(run.code, 12);
    const step = failedStepOf(parseReport(run.stdout));
    assert.equal(step.step, 'tcp');
    assert.match(wordsOf(step), /ECONNREFUSED/);
    assert.match(wordsOf(step), /nothing listens on port/);
  });

  test('--transport mqtt at the WebSocket port: connect fails, the port probably speaks the other transport (exit 18)', async () => {
    const run = await runDiagnoseCli([
      ...common(),
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--transport',
      'mqtt',
      '--registration-id',
      'diag-wrong',
      '--group-key',
      DEMO_GROUP_KEY,
      '--json',
    ]);
    assert.equal(run.code, 18, run.stdout);
    const step = failedStepOf(parseReport(run.stdout));
    assert.equal(step.step, 'connect');
    assert.match(wordsOf(step), /answered CONNECT in HTTP/);
    assert.match(wordsOf(step), /probably speaks the other transport: use --transport mqtt-ws/);
  });

  test('--transport mqtt-ws at the MQTT port: websocket fails, the port probably speaks MQTT over TLS (exit 16)', async () => {
    const run = await runDiagnoseCli([
      ...common(),
      '--endpoint',
      `127.0.0.1:${emulator.mqttPort}`,
      '--transport',
      'mqtt-ws',
      '--registration-id',
      'diag-wrong',
      '--group-key',
      DEMO_GROUP_KEY,
      '--json',
    ]);
    assert.equal(run.code, 16, run.stdout);
    const step = failedStepOf(parseReport(run.stdout));
    assert.equal(step.step, 'websocket');
    assert.match(wordsOf(step), /probably speaks MQTT over TLS/);
    assert.match(wordsOf(step), /switch --transport/);
  });

  test('a wrong key: connect fails with CONNACK 5 and the causes for a symmetric key, no group-key hint', async () => {
    const badKey = randomBytes(32).toString('base64');
    const run = await runDiagnoseCli([
      ...common(),
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--registration-id',
      'diag-bad-key',
      '--symmetric-key',
      badKey,
    ]);
    assert.equal(run.code, 18, run.stdout);
    assert.match(run.stdout, /✗ connect .* DPS refused the connection: CONNACK 5 \(not authorized\)/);
    assert.match(run.stdout, /1\. the key is not the individual enrollment's primary or secondary key/);
    assert.match(run.stdout, /the ID scope 0ne\w+ is not this DPS instance's/);
    assert.doesNotMatch(run.stdout, /works as a group key/);
    assert.match(run.stdout, /first failing step: connect \(exit code 18/);
    assertNoSecrets(run.stdout + run.stderr, [badKey], 'diag-bad-key');
  });

  test('a group key given as a device key: the derived key is accepted, so the hint says --group-key', async () => {
    const args = [
      ...common(),
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--registration-id',
      'diag-member',
      '--symmetric-key',
      DEMO_GROUP_KEY,
    ];
    const run = await runDiagnoseCli([...args, '--json']);
    assert.equal(run.code, 18, run.stdout);
    const step = failedStepOf(parseReport(run.stdout));
    assert.equal(step.step, 'connect');
    assert.equal(step.details?.otherKeyKind, 'works-as-group-key');
    assert.match(
      step.causes?.[0] ?? '',
      /group enrollment's key: its derived device key for "diag-member" was accepted/,
    );
    assert.match(
      step.hint ?? '',
      /works as a group key for "diag-member": use --group-key instead of --symmetric-key/,
    );
    assertNoSecrets(run.stdout + run.stderr, [DEMO_GROUP_KEY], 'diag-member');
    const checklist = await runDiagnoseCli(args);
    assertNoSecrets(checklist.stdout + checklist.stderr, [DEMO_GROUP_KEY], 'diag-member');
  });

  test('an X.509 certificate whose CN is not the registration id: input fails and says so (exit 10)', async () => {
    const device = await createSelfSignedCertificate({ commonName: 'device-a', usage: 'client' });
    const certPath = await writeTemp(dir.path, 'device-a.pem', device.certPem);
    const keyPath = await writeTemp(dir.path, 'device-a.key', device.keyPem);
    const run = await runDiagnoseCli([
      ...common(),
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--registration-id',
      'device-b',
      '--cert',
      certPath,
      '--key',
      keyPath,
      '--json',
    ]);
    assert.equal(run.code, 10, run.stdout);
    const step = failedStepOf(parseReport(run.stdout));
    assert.equal(step.step, 'input');
    assert.match(
      step.summary,
      /registration id "device-b" differs from the certificate's subject CN "device-a"/,
    );
    assertNoSecrets(run.stdout + run.stderr, [device.keyPem]);
  });

  test('an expired client certificate: input warns, connect fails with "expired" as the first cause', async () => {
    const run = await runDiagnoseCli([
      ...common(),
      '--endpoint',
      `127.0.0.1:${emulator.mqttPort}`,
      '--transport',
      'mqtt',
      '--cert',
      expired.certPath,
      '--key',
      expired.keyPath,
      '--json',
    ]);
    assert.equal(run.code, 18, run.stdout);
    const report = parseReport(run.stdout);
    const input = report.transports[0]?.steps[0];
    assert.equal(input?.status, 'warn');
    assert.match(input?.summary ?? '', /the device certificate expired on 2020-02-01/);
    const step = failedStepOf(report);
    assert.equal(step.step, 'connect');
    assert.match(step.summary, /CONNACK 5/);
    assert.match(step.causes?.[0] ?? '', /outside its validity period .* it has expired/);
    assertNoSecrets(run.stdout + run.stderr, [await readFile(expired.keyPath, 'utf8')]);
  });

  test('bad input is the input step (exit 10); an unknown flag is a usage error (exit 2)', async () => {
    const bad = await runDiagnoseCli([
      '--id-scope',
      'nope',
      '--registration-id',
      'x',
      '--group-key',
      DEMO_GROUP_KEY,
    ]);
    assert.equal(bad.code, 10);
    assert.match(bad.stdout, /✗ input .*--id-scope/);
    const usage = await runDiagnoseCli(['--bogus']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown option --bogus/);
  });
});
