// `dps-mqtt diagnose` against what stands between a device and DPS, built in the test on loopback: a plain
// HTTP server, a CONNECT proxy that wants credentials (407) and one that refuses (403), a TLS-inspecting
// proxy that re-signs with its own CA and re-originates to the emulator, a server certificate for another
// name, and a server whose upgrade answer carries a Date two hours off.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { WebSocketServer } from 'ws';
import {
  type CertificateAndKey,
  createRootCa,
  DEMO_GROUP_KEY,
  issueCertificate,
} from '../src/emulator/index.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';
import {
  assertNoSecrets,
  failedStepOf,
  parseReport,
  runDiagnoseCli,
  wordsOf,
  writeTemp,
} from './support/diagnose-cli.js';
import { closeServer, listenOnLoopback, startConnectProxy } from './support/net.js';

/** An HTTP CONNECT proxy that terminates TLS with its own CA's certificate and re-originates to the target. */
async function startInspectingProxy(
  own: CertificateAndKey,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer();
  // Tunnels are not the HTTP server's connections: closing it must end them itself.
  const tunnels = new Set<net.Socket>();
  server.on('connect', (request: http.IncomingMessage, client: net.Socket) => {
    tunnels.add(client);
    client.once('close', () => tunnels.delete(client));
    const [host, port] = (request.url ?? '').split(':');
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const inspected = new tls.TLSSocket(client, { isServer: true, cert: own.certPem, key: own.keyPem });
    inspected.on('error', () => client.destroy());
    inspected.once('secure', () => {
      const upstream = tls.connect({ host, port: Number(port), rejectUnauthorized: false });
      tunnels.add(upstream);
      upstream.on('error', () => inspected.destroy());
      inspected.once('close', () => upstream.destroy());
      client.once('end', () => client.destroy());
      inspected.pipe(upstream).pipe(inspected);
    });
  });
  const port = await listenOnLoopback(server);
  return {
    port,
    close: () => {
      for (const socket of tunnels) socket.destroy();
      return closeServer(server);
    },
  };
}

describe('dps-mqtt diagnose through proxies and odd servers', () => {
  let emulator: TestEmulator;
  let dir: { path: string; remove(): Promise<void> };
  let emulatorCaPath: string;
  let testCa: CertificateAndKey;
  let testCaPath: string;
  let inspectionCa: CertificateAndKey;
  const servers: net.Server[] = [];

  before(async () => {
    dir = await temporaryDirectory('dps-mqtt-diagnose-net-');
    [emulator, testCa, inspectionCa] = await Promise.all([
      startTestEmulator(),
      createRootCa({ commonName: 'diagnose test CA' }),
      createRootCa({ commonName: 'Corporate TLS Inspection CA' }),
    ]);
    emulatorCaPath = await writeTemp(dir.path, 'emulator-ca.pem', emulator.caCertPem);
    testCaPath = await writeTemp(dir.path, 'test-ca.pem', testCa.certPem);
  });
  after(async () => {
    await Promise.all(servers.map((server) => closeServer(server)));
    await emulator.close();
    await dir.remove();
  });

  const device = [
    '--id-scope',
    '0ne00000000',
    '--registration-id',
    'diag-net',
    '--group-key',
    DEMO_GROUP_KEY,
    '--timeout',
    '5',
    '--json',
  ];

  test('a plain HTTP server: tls fails, "does not speak TLS" (exit 14)', async () => {
    const server = http.createServer((_request, response) => response.end('hello'));
    servers.push(server);
    const port = await listenOnLoopback(server);
    const run = await runDiagnoseCli(['--endpoint', `127.0.0.1:${port}`, '--ca', emulatorCaPath, ...device]);
    assert.equal(run.code, 14, run.stdout);
    const step = failedStepOf(parseReport(run.stdout));
    assert.equal(step.step, 'tls');
    assert.match(wordsOf(step), /does not speak TLS/);
    assert.match(wordsOf(step), /plain HTTP/);
    assert.doesNotMatch(step.summary, /\n|ssl3_get_record/);
  });

  test('a CONNECT proxy that wants credentials: proxy fails with 407 explained, no password shown (exit 13)', async () => {
    const proxy = await startConnectProxy({ authenticate: () => false });
    try {
      const password = 'pr0xy-Passw0rd-secret';
      const run = await runDiagnoseCli([
        '--endpoint',
        `127.0.0.1:${emulator.wssPort}`,
        '--ca',
        emulatorCaPath,
        '--proxy',
        `http://diag:${password}@127.0.0.1:${proxy.port}`,
        ...device,
      ]);
      assert.equal(run.code, 13, run.stdout);
      const step = failedStepOf(parseReport(run.stdout));
      assert.equal(step.step, 'proxy');
      assert.equal(step.details?.statusCode, 407);
      assert.match(wordsOf(step), /407 Proxy Authentication Required/);
      assert.match(wordsOf(step), /refused the user name or password/);
      assertNoSecrets(run.stdout + run.stderr, [password, DEMO_GROUP_KEY], 'diag-net');
    } finally {
      await proxy.close();
    }
  });

  test('a CONNECT proxy that refuses the tunnel (403): proxy fails, its policy named (exit 13)', async () => {
    const server = http.createServer();
    server.on('connect', (_request: http.IncomingMessage, socket: net.Socket) =>
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'),
    );
    servers.push(server);
    const port = await listenOnLoopback(server);
    const run = await runDiagnoseCli([
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--ca',
      emulatorCaPath,
      '--proxy',
      `http://127.0.0.1:${port}`,
      ...device,
    ]);
    assert.equal(run.code, 13, run.stdout);
    const step = failedStepOf(parseReport(run.stdout));
    assert.equal(step.step, 'proxy');
    assert.match(wordsOf(step), /403 Forbidden/);
    assert.match(wordsOf(step), /policy does not allow tunnels/);
  });

  test('a TLS-inspecting proxy: tls-inspection fails, names the middlebox and its issuer (exit 15)', async (t) => {
    const own = await issueCertificate({
      issuer: inspectionCa,
      commonName: '127.0.0.1',
      altNames: ['127.0.0.1', 'localhost'],
      usage: 'server',
    });
    const proxy = await startInspectingProxy(own);
    t.after(() => proxy.close());
    const run = await runDiagnoseCli([
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--ca',
      emulatorCaPath,
      '--proxy',
      `http://127.0.0.1:${proxy.port}`,
      ...device,
    ]);
    assert.equal(run.code, 15, run.stdout);
    const report = parseReport(run.stdout);
    assert.equal(report.transports[0]?.steps.find((step) => step.step === 'proxy')?.status, 'ok');
    assert.equal(report.transports[0]?.steps.find((step) => step.step === 'tls')?.status, 'warn');
    const step = failedStepOf(report);
    assert.equal(step.step, 'tls-inspection');
    assert.match(step.summary, /leads to "Corporate TLS Inspection CA", not to the CA given with --ca/);
    assert.match(
      step.summary,
      /a middlebox \(a TLS-inspecting proxy or firewall such as Zscaler\) probably replaced it/,
    );
    assert.match(wordsOf(step), /X\.509 device authentication cannot pass through it/);
    assert.match(
      step.hint ?? '',
      /trust the issuing CA with --ca FILE \(or NODE_EXTRA_CA_CERTS\), or ask for an exemption/,
    );
  });

  test('a server certificate for another name: tls fails, names the host and the certificate names (exit 14)', async () => {
    const other = await issueCertificate({
      issuer: testCa,
      commonName: 'other.example',
      altNames: ['other.example'],
      usage: 'server',
    });
    const server = tls.createServer({ cert: other.certPem, key: other.keyPem }, (socket) => socket.end());
    servers.push(server);
    const port = await listenOnLoopback(server);
    const run = await runDiagnoseCli(['--endpoint', `127.0.0.1:${port}`, '--ca', testCaPath, ...device]);
    assert.equal(run.code, 14, run.stdout);
    const step = failedStepOf(parseReport(run.stdout));
    assert.equal(step.step, 'tls');
    assert.match(
      step.summary,
      /the certificate is not issued for "127\.0\.0\.1": it names DNS:other\.example/,
    );
    assert.match(step.hint ?? '', /check the host in --endpoint/);
  });

  test('a server whose upgrade answer has a Date 2 h off: clock fails, the SAS token explained (exit 17)', async () => {
    const serverCertificate = await issueCertificate({
      issuer: testCa,
      commonName: '127.0.0.1',
      altNames: ['127.0.0.1'],
      usage: 'server',
    });
    const server = https.createServer({ cert: serverCertificate.certPem, key: serverCertificate.keyPem });
    const webSockets = new WebSocketServer({ server, handleProtocols: () => 'mqtt' });
    // Two hours ahead of this machine: to the server, a token valid for 1 h has already expired.
    webSockets.on('headers', (headers) =>
      headers.push(`Date: ${new Date(Date.now() + 2 * 3600_000).toUTCString()}`),
    );
    webSockets.on('connection', (socket) => socket.close());
    servers.push(server);
    const port = await listenOnLoopback(server);
    try {
      const run = await runDiagnoseCli(['--endpoint', `127.0.0.1:${port}`, '--ca', testCaPath, ...device]);
      assert.equal(run.code, 17, run.stdout);
      const step = failedStepOf(parseReport(run.stdout));
      assert.equal(step.step, 'clock');
      assert.match(step.summary, /this machine's clock is 2 h 0 min behind the server's/);
      assert.match(wordsOf(step), /to DPS it has already expired/);
      assert.equal(
        step.details?.skewSeconds !== undefined && Math.abs(Number(step.details.skewSeconds) + 7200) < 5,
        true,
      );
    } finally {
      webSockets.close();
    }
  });
});
