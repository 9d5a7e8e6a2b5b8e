// MQTT over TLS (the sibling transport's IO) and the TLS layer beneath the WebSocket: trust, host name,
// SNI, client certificates, the proxy tunnel beneath TLS, and failures that leave nothing open.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import {
  type CertificateAndKey,
  createRootCa,
  createSelfSignedCertificate,
  issueCertificate,
} from '../src/emulator/pki/pki.js';
import { mqttTlsIo, openTls } from '../src/io/index.js';
import { AbortError, InvalidInputError, TimeoutError, TransportError } from '../src/protocol/errors.js';
import {
  closeServer,
  echoOnce,
  freePort,
  listenOnLoopback,
  rejectionOf,
  startConnectProxy,
  startSilentServer,
  trackSocketCloses,
} from './support/net.js';

interface TlsSession {
  servername: string | false | null;
  peerCommonName: string | string[] | undefined;
}

interface TlsEcho {
  server: tls.Server;
  port: number;
  sessions: TlsSession[];
  /** One promise per accepted TCP connection, settled when it closes. */
  closed: Promise<void>[];
}

/** A TLS server that echoes what it receives and records what each client presented. */
async function startTlsEcho(options: tls.TlsOptions, host = '127.0.0.1'): Promise<TlsEcho> {
  const sessions: TlsSession[] = [];
  const server = tls.createServer(options, (socket) => {
    const peer = socket.getPeerCertificate();
    sessions.push({ servername: socket.servername, peerCommonName: peer?.subject?.CN });
    socket.pipe(socket);
  });
  const closed = trackSocketCloses(server);
  server.on('tlsClientError', () => {}); // the client refused us: what these tests provoke
  const port = await listenOnLoopback(server, host);
  return { server, port, sessions, closed };
}

const MQTT_CONNECT = Buffer.from('101600044d5154540402003c000a73656e736f722d303432', 'hex');

describe('TLS IO', () => {
  let rootCa: CertificateAndKey;
  let otherCa: CertificateAndKey;
  let server: CertificateAndKey;
  let wrongNameServer: CertificateAndKey;
  let selfSigned: CertificateAndKey;
  let device: CertificateAndKey;

  before(async () => {
    [rootCa, otherCa, selfSigned] = await Promise.all([
      createRootCa({ commonName: 'io test root' }),
      createRootCa({ commonName: 'io test other root' }),
      createSelfSignedCertificate({ commonName: 'localhost', usage: 'server' }),
    ]);
    [server, wrongNameServer, device] = await Promise.all([
      issueCertificate({
        issuer: rootCa,
        commonName: 'localhost',
        altNames: ['localhost', '127.0.0.1', '::1'],
        usage: 'server',
      }),
      issueCertificate({
        issuer: rootCa,
        commonName: 'dps.example',
        altNames: ['dps.example'],
        usage: 'server',
      }),
      issueCertificate({ issuer: rootCa, commonName: 'device-1', usage: 'client' }),
    ]);
  });

  describe('with a trusted server', () => {
    let echo: TlsEcho;
    before(async () => {
      echo = await startTlsEcho({
        cert: server.certPem,
        key: server.keyPem,
        ca: rootCa.certPem,
        requestCert: true,
        rejectUnauthorized: false, // the test inspects the client certificate instead
      });
    });
    after(async () => closeServer(echo.server));

    test('MQTT bytes round-trip, with SNI set to the host name', async () => {
      const socket = await mqttTlsIo({ host: 'localhost', port: echo.port, trustedCa: rootCa.certPem });
      assert.deepEqual(await echoOnce(socket, MQTT_CONNECT), MQTT_CONNECT);
      socket.destroy();
      assert.equal(echo.sessions.at(-1)?.servername, 'localhost');
    });

    test('the negotiated protocol is TLS 1.2 or newer', async () => {
      const socket = await openTls({ host: 'localhost', port: echo.port, trustedCa: rootCa.certPem });
      assert.match(socket.getProtocol() ?? '', /^TLSv1\.[23]$/);
      socket.destroy();
    });

    test('no SNI for an IP literal host, and the certificate is checked against its IP', async () => {
      const socket = await openTls({ host: '127.0.0.1', port: echo.port, trustedCa: rootCa.certPem });
      // With TLS 1.3 the client finishes first: one echo proves the server has recorded the session.
      assert.deepEqual(await echoOnce(socket, MQTT_CONNECT), MQTT_CONNECT);
      socket.destroy();
      assert.equal(echo.sessions.at(-1)?.servername, false);
    });

    test('presents the client certificate when one is set', async () => {
      const socket = await openTls({
        host: 'localhost',
        port: echo.port,
        trustedCa: rootCa.certPem,
        clientCertificate: device,
      });
      assert.deepEqual(await echoOnce(socket, MQTT_CONNECT), MQTT_CONNECT);
      socket.destroy();
      assert.equal(echo.sessions.at(-1)?.peerCommonName, 'device-1');
    });

    test("trustMode 'extend' trusts trustedCa next to the public roots", async () => {
      const socket = await openTls({
        host: 'localhost',
        port: echo.port,
        trustedCa: `${otherCa.certPem}\n${rootCa.certPem}`,
        trustMode: 'extend',
      });
      socket.destroy();
    });

    test('a CA that did not issue the server certificate: TransportError tls, not retryable, fast', async () => {
      const started = performance.now();
      const error = await rejectionOf(
        openTls({ host: 'localhost', port: echo.port, trustedCa: otherCa.certPem }),
      );
      assert.ok(error instanceof TransportError, String(error));
      assert.equal(error.phase, 'tls');
      assert.equal(error.retryable, false);
      // The server sends its root along: the client sees an untrusted self-signed certificate in the chain.
      assert.match(
        error.message,
        /is not trusted \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/,
      );
      assert.match(error.hint ?? '', /trustedCa/);
      assert.equal(error.reason, 'untrusted-certificate');
      assert.ok(performance.now() - started < 2_000);
      await Promise.all(echo.closed);
    });

    test('no trustedCa: the public roots do not trust a private CA', async () => {
      const error = await rejectionOf(openTls({ host: 'localhost', port: echo.port }));
      assert.ok(error instanceof TransportError && error.phase === 'tls' && !error.retryable, String(error));
      assert.match(error.hint ?? '', /pass the CA that issued it as trustedCa/);
    });

    test('through an HTTP CONNECT proxy, TLS runs inside the tunnel to the DPS host', async () => {
      const proxy = await startConnectProxy();
      try {
        const socket = await mqttTlsIo({
          host: 'localhost',
          port: echo.port,
          trustedCa: rootCa.certPem,
          proxy: { host: '127.0.0.1', port: proxy.port },
        });
        assert.deepEqual(await echoOnce(socket, MQTT_CONNECT), MQTT_CONNECT);
        socket.destroy();
        assert.deepEqual(proxy.targets, [`localhost:${echo.port}`]);
        assert.equal(echo.sessions.at(-1)?.servername, 'localhost');
      } finally {
        await proxy.close();
      }
    });
  });

  test('a certificate for another host name: TransportError tls telling to check the host name', async () => {
    const echo = await startTlsEcho({ cert: wrongNameServer.certPem, key: wrongNameServer.keyPem });
    try {
      const error = await rejectionOf(
        openTls({ host: 'localhost', port: echo.port, trustedCa: rootCa.certPem }),
      );
      assert.ok(error instanceof TransportError && error.phase === 'tls' && !error.retryable, String(error));
      assert.match(error.message, /ERR_TLS_CERT_ALTNAME_INVALID/);
      assert.match(error.message, /check the host name/);
      await Promise.all(echo.closed);
    } finally {
      await closeServer(echo.server);
    }
  });

  test('a self-signed server certificate: refused, unless insecureSkipVerify', async () => {
    const echo = await startTlsEcho({ cert: selfSigned.certPem, key: selfSigned.keyPem });
    try {
      const error = await rejectionOf(openTls({ host: 'localhost', port: echo.port }));
      assert.ok(error instanceof TransportError && error.phase === 'tls' && !error.retryable, String(error));
      assert.match(error.message, /DEPTH_ZERO_SELF_SIGNED_CERT/);
      const socket = await openTls({ host: 'localhost', port: echo.port, insecureSkipVerify: true });
      assert.deepEqual(await echoOnce(socket, MQTT_CONNECT), MQTT_CONNECT);
      socket.destroy();
    } finally {
      await closeServer(echo.server);
    }
  });

  test('a port that does not speak TLS: not retryable, the message says to check the port', async () => {
    const plain = net.createServer((socket) =>
      socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')),
    );
    const port = await listenOnLoopback(plain);
    try {
      const error = await rejectionOf(openTls({ host: 'localhost', port, trustedCa: rootCa.certPem }));
      assert.ok(error instanceof TransportError && error.phase === 'tls', String(error));
      assert.equal(error.retryable, false);
      assert.match(error.message, /does not speak TLS/);
    } finally {
      await closeServer(plain);
    }
  });

  test('nothing listening: TransportError tcp, retryable', async () => {
    const port = await freePort();
    const error = await rejectionOf(mqttTlsIo({ host: '127.0.0.1', port, trustedCa: rootCa.certPem }));
    assert.ok(error instanceof TransportError, String(error));
    assert.equal(error.phase, 'tcp');
    assert.equal(error.retryable, true);
    assert.match(error.message, /ECONNREFUSED/);
  });

  test('abort during the handshake: AbortError phase tls, the socket closed', async () => {
    const silent = await startSilentServer();
    try {
      const controller = new AbortController();
      const opening = openTls({ host: 'localhost', port: silent.port, signal: controller.signal });
      const serverSide = await silent.firstBytes;
      const closed = once(serverSide, 'close');
      serverSide.resume();
      controller.abort();
      await assert.rejects(opening, (error: unknown) => error instanceof AbortError && error.phase === 'tls');
      await closed;
    } finally {
      await closeServer(silent.server);
    }
  });

  test('a handshake past timeoutMs: TimeoutError phase tls, the socket closed', async () => {
    const silent = await startSilentServer();
    try {
      const opening = openTls({ host: 'localhost', port: silent.port, timeoutMs: 100 });
      const serverSide = await silent.firstBytes;
      const closed = once(serverSide, 'close');
      serverSide.resume();
      await assert.rejects(
        opening,
        (error: unknown) =>
          error instanceof TimeoutError && error.phase === 'tls' && /100 ms/.test(error.message),
      );
      await closed;
    } finally {
      await closeServer(silent.server);
    }
  });

  test('an already aborted signal: rejects before connecting', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      openTls({ host: 'localhost', port: 1, signal: controller.signal }),
      (error: unknown) => error instanceof AbortError,
    );
  });

  for (const [options, field] of [
    [{ host: '', port: 8883 }, 'host'],
    [{ host: 'wss://dps.example', port: 443 }, 'host'],
    [{ host: 'dps.example:443', port: 443 }, 'host'],
    [{ host: 'dps.example', port: 0 }, 'port'],
    [{ host: 'dps.example', port: 70_000 }, 'port'],
    [{ host: 'dps.example', port: 443, timeoutMs: Number.NaN }, 'timeoutMs'],
    [{ host: 'dps.example', port: 443, proxy: { host: 'proxy.example', port: -1 } }, 'proxy.port'],
  ] as const) {
    test(`${JSON.stringify(options)}: InvalidInputError for ${field} before any I/O`, async () => {
      await assert.rejects(
        mqttTlsIo(options),
        (error: unknown) => error instanceof InvalidInputError && error.field === field,
      );
    });
  }

  test('trustedCa without a certificate: InvalidInputError before any I/O', async () => {
    await assert.rejects(
      openTls({ host: 'localhost', port: 1, trustedCa: 'not a certificate' }),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'trustedCa',
    );
  });

  test('a client key that does not belong to the certificate: InvalidInputError before any I/O', async () => {
    await assert.rejects(
      openTls({
        host: 'localhost',
        port: 1,
        clientCertificate: { certPem: device.certPem, keyPem: server.keyPem },
      }),
      (error: unknown) =>
        error instanceof InvalidInputError &&
        error.field === 'clientCertificate' &&
        !error.message.includes('PRIVATE'),
    );
  });
});
