// The first handshake to an endpoint is made once (src/io/tls-session-cache.ts, planTlsSession): connections
// that start while it is under way wait for its session and resume it; when it fails they go on and fail on
// their own; a waiting connection (which connects only once the session is there) can still be aborted; a server that gives no session is remembered, and
// connections to it stop waiting.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { before, describe, test } from 'node:test';
import tls from 'node:tls';
import { type CertificateAndKey, createRootCa, issueCertificate } from '../src/emulator/pki/pki.js';
import { openTls } from '../src/io/index.js';
import { planTlsSession, rememberTlsSession, ticketGraceMs } from '../src/io/tls-session-cache.js';
import { AbortError, TransportError } from '../src/protocol/errors.js';
import { closeServer, listenOnLoopback, rejectionOf, startSilentServer } from './support/net.js';

/** Resolves once `condition` holds (checked every 5 ms); the test's own timeout bounds it. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('the first TLS handshake to an endpoint', () => {
  let rootCa: CertificateAndKey;
  let leaf: CertificateAndKey;

  before(async () => {
    rootCa = await createRootCa({ commonName: 'first handshake test root' });
    leaf = await issueCertificate({
      issuer: rootCa,
      commonName: 'localhost',
      altNames: ['localhost'],
      usage: 'server',
    });
  });

  /** A TLS 1.3 server that records whether each connection resumed. */
  async function startServer(
    cert: CertificateAndKey,
  ): Promise<{ port: number; reused: boolean[]; server: tls.Server }> {
    const reused: boolean[] = [];
    const server = tls.createServer(
      { cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.3' },
      (socket) => socket.pipe(socket),
    );
    server.on('secureConnection', (socket: tls.TLSSocket) => reused.push(socket.isSessionReused()));
    server.on('tlsClientError', () => {});
    return { port: await listenOnLoopback(server), reused, server };
  }

  test('connections that start together make one full handshake; the others resume its session', async () => {
    const { port, reused, server } = await startServer(leaf);
    const sockets: tls.TLSSocket[] = [];
    try {
      const options = { host: 'localhost', port, trustedCa: rootCa.certPem };
      sockets.push(...(await Promise.all(Array.from({ length: 8 }, () => openTls(options)))));
      for (const socket of sockets) assert.equal(socket.authorized, true);
      assert.deepEqual(
        sockets.map((socket) => socket.isSessionReused()),
        [false, true, true, true, true, true, true, true],
      );
      await until(() => reused.length === 8);
      assert.deepEqual(reused.toSorted(), [false, true, true, true, true, true, true, true]);
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeServer(server);
    }
  });

  test('when the first handshake fails, the waiting connections go on and fail on their own', async () => {
    const wrongName = await issueCertificate({
      issuer: rootCa,
      commonName: 'dps.example',
      altNames: ['dps.example'],
      usage: 'server',
    });
    const { port, reused, server } = await startServer(wrongName);
    try {
      const options = { host: 'localhost', port, trustedCa: rootCa.certPem, timeoutMs: 10_000 };
      const errors = await Promise.all(Array.from({ length: 4 }, () => rejectionOf(openTls(options))));
      for (const error of errors) {
        assert.ok(error instanceof TransportError);
        assert.equal(error.reason, 'certificate-name-mismatch');
      }
      assert.deepEqual(reused, []);
    } finally {
      await closeServer(server);
    }
  });

  test('a connection waiting for the first handshake can be aborted, and leaves nothing open', async () => {
    const silent = await startSilentServer();
    const accepted: Socket[] = [];
    silent.server.on('connection', (socket) => accepted.push(socket));
    try {
      const options = { host: 'localhost', port: silent.port, trustedCa: rootCa.certPem };
      const first = rejectionOf(openTls({ ...options, timeoutMs: 10_000 }));
      const controller = new AbortController();
      const waiting = openTls({ ...options, signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      const error = await rejectionOf(waiting);
      assert.ok(error instanceof AbortError && error.phase === 'tcp', String(error));
      // The waiting connection had not connected yet (it connects once the session is there); the first
      // one is still in its handshake.
      assert.equal(accepted.length, 1);
      assert.equal(accepted[0]?.closed, false);
      for (const socket of accepted) socket.destroy();
      const firstError = await first;
      assert.ok(firstError instanceof TransportError && firstError.phase === 'tls', String(firstError));
    } finally {
      await closeServer(silent.server);
    }
  });
});

describe('the plan for a connection', () => {
  test('a key gets one first handshake; others wait, and resume once its session is remembered', async () => {
    const key = `plan-test-remember-${Math.random()}`;
    const first = planTlsSession(key);
    assert.equal(first.kind, 'first');
    const waiting = planTlsSession(key);
    assert.equal(waiting.kind, 'wait');
    const session = Buffer.from('not a DER session, kept as it is');
    rememberTlsSession(key, session);
    if (waiting.kind === 'wait') await waiting.firstHandshake;
    assert.deepEqual(planTlsSession(key), { kind: 'resume', session });
  });

  test('a first handshake that ended releases the waiting, and the next connection is first again', async () => {
    const key = `plan-test-ended-${Math.random()}`;
    const first = planTlsSession(key);
    const waiting = planTlsSession(key);
    assert.ok(first.kind === 'first' && first.handshake !== undefined && waiting.kind === 'wait');
    first.handshake.ended();
    await waiting.firstHandshake;
    const next = planTlsSession(key);
    assert.equal(next.kind, 'first');
    assert.ok(next.kind === 'first' && next.handshake !== undefined);
    next.handshake.ended();
  });

  test('a server that gave no session within the grace is remembered: nobody waits for it again', async () => {
    const key = `plan-test-no-session-${Math.random()}`;
    const first = planTlsSession(key);
    const waiting = planTlsSession(key);
    assert.ok(first.kind === 'first' && first.handshake !== undefined && waiting.kind === 'wait');
    first.handshake.secured(1);
    // Released by the grace (50 ms), not by a session. Its timer does not hold a process open (a CLI exits
    // as soon as its work is done), so this test holds the loop open while it waits.
    const keepAlive = setTimeout(() => {}, 10_000);
    await waiting.firstHandshake;
    clearTimeout(keepAlive);
    assert.deepEqual(planTlsSession(key), { kind: 'first', handshake: undefined });
    assert.deepEqual(planTlsSession(key), { kind: 'first', handshake: undefined });
    // A session that does come later is used, and the key is an ordinary one again.
    const session = Buffer.from('late session');
    rememberTlsSession(key, session);
    assert.deepEqual(planTlsSession(key), { kind: 'resume', session });
  });

  test('the grace for the ticket is twice the handshake, within 50 ms and 2 s', () => {
    assert.equal(ticketGraceMs(1), 50);
    assert.equal(ticketGraceMs(300), 600);
    assert.equal(ticketGraceMs(60_000), 2000);
  });
});
