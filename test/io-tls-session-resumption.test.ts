// TLS session resumption in the IO layer (src/io/tls-session-cache.ts): a second connection to the same
// endpoint with the same trust and identity resumes, over TLS and beneath the WebSocket; a different CA
// set, client identity, verification setting or host name never gets another's session; a session from a
// handshake that failed its checks is never offered; `tlsSessionResumption: false` opts out.
import assert from 'node:assert/strict';
import { createServer as createHttpsServer } from 'node:https';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { WebSocketServer } from 'ws';
import { type CertificateAndKey, createRootCa, issueCertificate } from '../src/emulator/pki/pki.js';
import { type IoOptions, openTls, openWebSocket } from '../src/io/index.js';
import { TransportError } from '../src/protocol/errors.js';
import { closeServer, echoOnce, listenOnLoopback, rejectionOf } from './support/net.js';

const PING = Buffer.from('c000', 'hex'); // an MQTT PINGREQ: any bytes would do

interface Recording {
  port: number;
  /** isSessionReused() of each accepted connection, in order. */
  reused: boolean[];
  /** The client certificate's CN each connection presented (undefined: none). */
  peers: (string | undefined)[];
  close(): Promise<void>;
}

function record(server: tls.Server, reused: boolean[], peers: (string | undefined)[]): void {
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    reused.push(socket.isSessionReused());
    const cn = socket.getPeerCertificate()?.subject?.CN;
    peers.push(typeof cn === 'string' ? cn : undefined);
  });
  server.on('tlsClientError', () => {}); // the client refused us: what some tests provoke
}

/** A TLS echo server that issues tickets and records whether each connection resumed. */
async function startTlsEcho(options: tls.TlsOptions): Promise<Recording> {
  const reused: boolean[] = [];
  const peers: (string | undefined)[] = [];
  const server = tls.createServer(options, (socket) => socket.pipe(socket));
  record(server, reused, peers);
  const port = await listenOnLoopback(server);
  return { port, reused, peers, close: () => closeServer(server) };
}

/** An HTTPS server that upgrades to a WebSocket with subprotocol mqtt and echoes binary messages. */
async function startWssEcho(options: tls.TlsOptions): Promise<Recording> {
  const reused: boolean[] = [];
  const peers: (string | undefined)[] = [];
  const server = createHttpsServer(options);
  const webSockets = new WebSocketServer({ server, handleProtocols: () => 'mqtt' });
  webSockets.on('connection', (socket) => socket.on('message', (data) => socket.send(data as Buffer)));
  record(server, reused, peers);
  const port = await listenOnLoopback(server);
  return {
    port,
    reused,
    peers,
    close: async () => {
      for (const client of webSockets.clients) client.terminate();
      webSockets.close();
      server.closeAllConnections();
      await closeServer(server);
    },
  };
}

describe('TLS session resumption', () => {
  let rootCa: CertificateAndKey;
  let otherCa: CertificateAndKey;
  let server: CertificateAndKey;
  let deviceA: CertificateAndKey;
  let deviceB: CertificateAndKey;

  before(async () => {
    [rootCa, otherCa] = await Promise.all([
      createRootCa({ commonName: 'resumption test root' }),
      createRootCa({ commonName: 'resumption test other root' }),
    ]);
    [server, deviceA, deviceB] = await Promise.all([
      issueCertificate({
        issuer: rootCa,
        commonName: 'localhost',
        altNames: ['localhost', '127.0.0.1'],
        usage: 'server',
      }),
      issueCertificate({ issuer: rootCa, commonName: 'device-a', usage: 'client' }),
      issueCertificate({ issuer: rootCa, commonName: 'device-b', usage: 'client' }),
    ]);
  });

  const serverOptions = (): tls.TlsOptions => ({
    cert: server.certPem,
    key: server.keyPem,
    ca: rootCa.certPem,
    requestCert: true,
    rejectUnauthorized: false,
  });

  /** Opens, exchanges one message (so a TLS 1.3 ticket has arrived), closes. */
  async function tlsRound(options: IoOptions): Promise<void> {
    const socket = await openTls(options);
    assert.deepEqual(await echoOnce(socket, PING), PING);
    socket.destroy();
  }

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    describe(`MQTT over TLS, ${version}`, () => {
      let echo: Recording;
      before(async () => {
        echo = await startTlsEcho({ ...serverOptions(), minVersion: version, maxVersion: version });
      });
      after(() => echo.close());

      test('the second connection with the same trust resumes the first one’s session', async () => {
        const options = { host: 'localhost', port: echo.port, trustedCa: rootCa.certPem };
        await tlsRound(options);
        await tlsRound(options);
        await tlsRound(options);
        assert.deepEqual(echo.reused, [false, true, true]);
      });

      test('a client certificate is its own key: never resumed by another identity or by none', async () => {
        echo.reused.length = 0;
        echo.peers.length = 0;
        const base = { host: 'localhost', port: echo.port, trustedCa: rootCa.certPem };
        await tlsRound({ ...base, clientCertificate: deviceA });
        await tlsRound({ ...base, clientCertificate: deviceB });
        await tlsRound({ ...base, clientCertificate: deviceA });
        await tlsRound({ ...base, clientCertificate: deviceB });
        assert.deepEqual(echo.reused, [false, false, true, true]);
        // A resumed session still presents the certificate it was made with.
        assert.deepEqual(echo.peers, ['device-a', 'device-b', 'device-a', 'device-b']);
        // The trust-only sessions of the test above are not the certificate holders'.
        await tlsRound(base);
        assert.equal(echo.reused.at(-1), true);
        assert.equal(echo.peers.at(-1), undefined);
      });

      test('a different CA set, trust mode or verification setting does not get the session', async () => {
        echo.reused.length = 0;
        const base = { host: 'localhost', port: echo.port };
        const variants: IoOptions[] = [
          { ...base, trustedCa: rootCa.certPem + otherCa.certPem },
          { ...base, trustedCa: rootCa.certPem, trustMode: 'extend' },
          { ...base, trustedCa: otherCa.certPem, insecureSkipVerify: true },
        ];
        for (const options of variants) await tlsRound(options);
        assert.deepEqual(echo.reused, [false, false, false]);
        for (const options of variants) await tlsRound(options);
        assert.deepEqual(echo.reused, [false, false, false, true, true, true]);
      });

      test('another host name for the same server does not get the session', async () => {
        echo.reused.length = 0;
        await tlsRound({ host: '127.0.0.1', port: echo.port, trustedCa: rootCa.certPem });
        assert.deepEqual(echo.reused, [false]);
      });

      test('tlsSessionResumption: false makes a full handshake and remembers nothing', async () => {
        echo.reused.length = 0;
        const options = { host: 'localhost', port: echo.port, trustedCa: otherCa.certPem + rootCa.certPem };
        await tlsRound({ ...options, tlsSessionResumption: false });
        await tlsRound(options);
        await tlsRound({ ...options, tlsSessionResumption: false });
        assert.deepEqual(echo.reused, [false, false, false]);
      });
    });
  }

  test('a session from a handshake that failed its host name check is never offered', async () => {
    // TLS 1.2 hands the session over before the certificate checks run: the case to guard.
    const wrongName = await issueCertificate({
      issuer: rootCa,
      commonName: 'dps.example',
      altNames: ['dps.example'],
      usage: 'server',
    });
    const echo = await startTlsEcho({
      cert: wrongName.certPem,
      key: wrongName.keyPem,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
    });
    try {
      const options = { host: 'localhost', port: echo.port, trustedCa: rootCa.certPem };
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const error = await rejectionOf(openTls(options));
        assert.ok(error instanceof TransportError);
        assert.equal(error.reason, 'certificate-name-mismatch');
      }
      assert.deepEqual(echo.reused, [false, false]);
    } finally {
      await echo.close();
    }
  });

  describe('MQTT over WebSocket', () => {
    let wss: Recording;
    before(async () => {
      wss = await startWssEcho(serverOptions());
    });
    after(() => wss.close());

    async function wsRound(options: IoOptions): Promise<void> {
      const stream = await openWebSocket(options);
      assert.deepEqual(await echoOnce(stream, PING), PING);
      stream.destroy();
    }

    test('the TLS session beneath the WebSocket resumes, per identity', async () => {
      const base = { host: 'localhost', port: wss.port, trustedCa: rootCa.certPem };
      await wsRound(base);
      await wsRound(base);
      await wsRound({ ...base, clientCertificate: deviceA });
      await wsRound({ ...base, clientCertificate: deviceA });
      assert.deepEqual(wss.reused, [false, true, false, true]);
      assert.deepEqual(wss.peers, [undefined, undefined, 'device-a', 'device-a']);
    });
  });
});
