// MQTT over WebSocket (the spec's mqtt_transport_ws_io): TLS, optionally through an HTTP CONNECT proxy,
// the upgrade to /$iothub/websocket with subprotocol mqtt, and a Duplex of binary frames. Real sockets on
// loopback: a WSS echo peer (https + ws) and a real proxy (npm `proxy`).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { type WebSocket, WebSocketServer } from 'ws';
import { type CertificateAndKey, createRootCa, issueCertificate } from '../src/emulator/pki/pki.js';
import { mqttWsIo, openWebSocket } from '../src/io/index.js';
import {
  AbortError,
  InvalidInputError,
  ProxyError,
  TimeoutError,
  TransportError,
} from '../src/protocol/errors.js';
import {
  closeServer,
  freePort,
  listenOnLoopback,
  rejectionOf,
  startConnectProxy,
  trackSocketCloses,
} from './support/net.js';

interface Upgrade {
  url: string | undefined;
  host: string | undefined;
  subprotocols: string | undefined;
  extensions: string | undefined;
  servername: string | false | null;
}

interface WssPeerOptions {
  /** How the upgrade is answered: echo (default), 404, no subprotocol, or never. */
  mode?: 'echo' | 'not-found' | 'no-subprotocol' | 'silent';
  host?: string;
}

interface WssPeer {
  port: number;
  upgrades: Upgrade[];
  /** Whether each message the peer received was binary. */
  binary: boolean[];
  /** The peer's side of each accepted WebSocket. */
  sockets: WebSocket[];
  /** Settles when the first upgrade request arrives. */
  upgradeSeen: Promise<void>;
  /** One promise per accepted TCP connection, settled when it closes: proof nothing stays open. */
  closed: Promise<void>[];
  close(): Promise<void>;
}

const PATHS = new Set(['/$iothub/websocket', '/']);

async function startWssPeer(identity: CertificateAndKey, options: WssPeerOptions = {}): Promise<WssPeer> {
  const mode = options.mode ?? 'echo';
  const server = https.createServer({ cert: identity.certPem, key: identity.keyPem });
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (protocols) =>
      mode === 'no-subprotocol' ? false : protocols.has('mqtt') ? 'mqtt' : false,
  });
  const peer: WssPeer = {
    port: 0,
    upgrades: [],
    binary: [],
    sockets: [],
    upgradeSeen: once(server, 'upgrade').then(() => undefined),
    closed: trackSocketCloses(server),
    close: async () => {
      for (const ws of peer.sockets) ws.terminate();
      wss.close();
      await closeServer(server);
    },
  };
  server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    peer.upgrades.push({
      url: request.url,
      host: request.headers.host,
      subprotocols: request.headers['sec-websocket-protocol'],
      extensions: request.headers['sec-websocket-extensions'],
      servername: (socket as TLSSocket).servername,
    });
    socket.on('error', () => {});
    if (mode === 'silent') return;
    if (mode === 'not-found' || !PATHS.has(request.url ?? '')) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      peer.sockets.push(ws);
      ws.on('message', (data, isBinary) => {
        peer.binary.push(isBinary);
        ws.send(data, { binary: isBinary });
      });
      wss.emit('connection', ws, request);
    });
  });
  peer.port = await listenOnLoopback(server, options.host);
  return peer;
}

/** Reads exactly until `length` bytes arrived, then pauses the stream again. */
function readBytes(stream: Duplex, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= length) {
        stream.off('data', onData);
        stream.off('error', reject);
        stream.pause();
        resolve(Buffer.concat(chunks));
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
  });
}

/** CONNECT, client id sensor-042, as a device sends it first. */
const MQTT_CONNECT = Buffer.from('101600044d5154540402003c000a73656e736f722d303432', 'hex');

describe('MQTT over WebSocket IO', () => {
  let rootCa: CertificateAndKey;
  let otherCa: CertificateAndKey;
  let serverIdentity: CertificateAndKey;

  before(async () => {
    [rootCa, otherCa] = await Promise.all([
      createRootCa({ commonName: 'io websocket test root' }),
      createRootCa({ commonName: 'io websocket other root' }),
    ]);
    serverIdentity = await issueCertificate({
      issuer: rootCa,
      commonName: 'localhost',
      altNames: ['localhost', '127.0.0.1', '::1'],
      usage: 'server',
    });
  });

  describe('against a DPS-like WSS peer', () => {
    let peer: WssPeer;
    before(async () => {
      peer = await startWssPeer(serverIdentity);
    });
    after(async () => peer.close());

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: MQTT bytes round-trip as binary messages', async () => {
      const stream = await mqttWsIo({ host: 'localhost', port: peer.port, trustedCa: rootCa.certPem });
      stream.write(MQTT_CONNECT);
      assert.deepEqual(await readBytes(stream, MQTT_CONNECT.length), MQTT_CONNECT);
      stream.destroy();
      assert.deepEqual(peer.binary.at(-1), true);
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: upgrades at /$iothub/websocket with subprotocol mqtt, SNI and Host set', async () => {
      const stream = await mqttWsIo({ host: 'localhost', port: peer.port, trustedCa: rootCa.certPem });
      stream.destroy();
      assert.deepEqual(peer.upgrades.at(-1), {
        url: '/$iothub/websocket',
        host: `localhost:${peer.port}`,
        subprotocols: 'mqtt',
        extensions: undefined, // no permessage-deflate offered
        servername: 'localhost',
      });
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: a large packet round-trips whole', async () => {
      const stream = await mqttWsIo({ host: 'localhost', port: peer.port, trustedCa: rootCa.certPem });
      const payload = Buffer.alloc(300 * 1024, 0xa5);
      stream.write(payload);
      assert.deepEqual(await readBytes(stream, payload.length), payload);
      stream.destroy();
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: end() sends a normal close (1000) and closes the stream', async () => {
      const opened = peer.sockets.length;
      const stream = await mqttWsIo({ host: 'localhost', port: peer.port, trustedCa: rootCa.certPem });
      stream.write(MQTT_CONNECT);
      await readBytes(stream, MQTT_CONNECT.length);
      const serverSide = peer.sockets[opened];
      assert.ok(serverSide !== undefined);
      const serverClosed = once(serverSide, 'close');
      const streamClosed = once(stream, 'close');
      stream.resume();
      stream.end();
      const [[code]] = await Promise.all([serverClosed, streamClosed]);
      assert.equal(code, 1000);
      await Promise.all(peer.closed.slice(-1));
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: the stream ends when the server closes', async () => {
      const opened = peer.sockets.length;
      const stream = await mqttWsIo({ host: 'localhost', port: peer.port, trustedCa: rootCa.certPem });
      stream.write(MQTT_CONNECT);
      await readBytes(stream, MQTT_CONNECT.length);
      const ended = once(stream, 'end');
      const closed = once(stream, 'close');
      stream.resume();
      peer.sockets[opened]?.close(1000);
      await Promise.all([ended, closed]);
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: a dropped connection closes the stream', async () => {
      const opened = peer.sockets.length;
      const stream = await mqttWsIo({ host: 'localhost', port: peer.port, trustedCa: rootCa.certPem });
      stream.write(MQTT_CONNECT);
      await readBytes(stream, MQTT_CONNECT.length);
      const closed = once(stream, 'close');
      stream.resume();
      peer.sockets[opened]?.terminate();
      await closed;
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: a path option upgrades there instead', async () => {
      const stream = await openWebSocket({
        host: 'localhost',
        port: peer.port,
        trustedCa: rootCa.certPem,
        path: '/',
      });
      stream.destroy();
      assert.equal(peer.upgrades.at(-1)?.url, '/');
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_012: through an HTTP CONNECT proxy, TLS and the upgrade run in the tunnel', async () => {
      const proxy = await startConnectProxy();
      try {
        const stream = await mqttWsIo({
          host: 'localhost',
          port: peer.port,
          trustedCa: rootCa.certPem,
          proxy: { host: '127.0.0.1', port: proxy.port },
        });
        stream.write(MQTT_CONNECT);
        assert.deepEqual(await readBytes(stream, MQTT_CONNECT.length), MQTT_CONNECT);
        stream.destroy();
        assert.deepEqual(proxy.targets, [`localhost:${peer.port}`]);
        assert.equal(peer.upgrades.at(-1)?.servername, 'localhost');
      } finally {
        await proxy.close();
      }
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_012: through a proxy with Basic authentication', async () => {
      const credentials: (string | undefined)[] = [];
      const proxy = await startConnectProxy({
        authenticate: (request) => {
          credentials.push(request.headers['proxy-authorization']);
          return (
            request.headers['proxy-authorization'] ===
            `Basic ${Buffer.from('alice:s3cret').toString('base64')}`
          );
        },
      });
      try {
        const stream = await mqttWsIo({
          host: 'localhost',
          port: peer.port,
          trustedCa: rootCa.certPem,
          proxy: { host: '127.0.0.1', port: proxy.port, username: 'alice', password: 's3cret' },
        });
        stream.write(MQTT_CONNECT);
        assert.deepEqual(await readBytes(stream, MQTT_CONNECT.length), MQTT_CONNECT);
        stream.destroy();
        assert.deepEqual(credentials, [`Basic ${Buffer.from('alice:s3cret').toString('base64')}`]);
      } finally {
        await proxy.close();
      }
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: wrong proxy credentials reject with ProxyError 407, no password, nothing open', async () => {
      const proxy = await startConnectProxy({ authenticate: () => false });
      const proxySockets = trackSocketCloses(proxy.server);
      const upgradesBefore = peer.upgrades.length;
      try {
        const error = await rejectionOf(
          mqttWsIo({
            host: 'localhost',
            port: peer.port,
            trustedCa: rootCa.certPem,
            proxy: { host: '127.0.0.1', port: proxy.port, username: 'alice', password: 'wrong-Pa55' },
          }),
        );
        assert.ok(error instanceof ProxyError, String(error));
        assert.equal(error.statusCode, 407);
        assert.match(error.message, /refused CONNECT to localhost:\d+: 407 Proxy Authentication Required/);
        assert.doesNotMatch(error.message, /wrong-Pa55/);
        await Promise.all(proxySockets);
        assert.equal(peer.upgrades.length, upgradesBefore);
      } finally {
        await proxy.close();
      }
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: a proxy that does not listen rejects with ProxyError', async () => {
      const port = await freePort();
      await assert.rejects(
        mqttWsIo({
          host: 'localhost',
          port: peer.port,
          trustedCa: rootCa.certPem,
          proxy: { host: '127.0.0.1', port },
        }),
        (error: unknown) => error instanceof ProxyError && /ECONNREFUSED/.test(error.message),
      );
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: an untrusted server rejects with TransportError tls, not retryable', async () => {
      const error = await rejectionOf(
        mqttWsIo({ host: 'localhost', port: peer.port, trustedCa: otherCa.certPem }),
      );
      assert.ok(error instanceof TransportError, String(error));
      assert.equal(error.phase, 'tls');
      assert.equal(error.retryable, false);
    });

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: an unknown path (404) rejects with TransportError websocket', async () => {
      const error = await rejectionOf(
        openWebSocket({ host: 'localhost', port: peer.port, trustedCa: rootCa.certPem, path: '/mqtt' }),
      );
      assert.ok(error instanceof TransportError, String(error));
      assert.equal(error.phase, 'websocket');
      assert.equal(error.retryable, false);
      assert.match(error.message, /refused the WebSocket upgrade to \/mqtt: 404 Not Found/);
      await Promise.all(peer.closed);
    });
  });

  test('a path that does not start with "/" is refused before any I/O', async () => {
    await assert.rejects(
      openWebSocket({ host: 'localhost', port: 1, path: '$iothub/websocket' }),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'path',
    );
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: a server that selects no subprotocol is refused', async () => {
    const peer = await startWssPeer(serverIdentity, { mode: 'no-subprotocol' });
    try {
      const error = await rejectionOf(
        mqttWsIo({ host: 'localhost', port: peer.port, trustedCa: rootCa.certPem }),
      );
      assert.ok(error instanceof TransportError, String(error));
      assert.equal(error.phase, 'websocket');
      assert.equal(error.retryable, false);
      assert.match(error.message, /did not accept WebSocket subprotocol "mqtt"/);
      await Promise.all(peer.closed);
    } finally {
      await peer.close();
    }
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: abort during the upgrade rejects with AbortError, socket closed', async () => {
    const peer = await startWssPeer(serverIdentity, { mode: 'silent' });
    try {
      const controller = new AbortController();
      const opening = mqttWsIo({
        host: 'localhost',
        port: peer.port,
        trustedCa: rootCa.certPem,
        signal: controller.signal,
      });
      await peer.upgradeSeen;
      controller.abort();
      await assert.rejects(
        opening,
        (error: unknown) => error instanceof AbortError && error.phase === 'websocket',
      );
      await Promise.all(peer.closed);
    } finally {
      await peer.close();
    }
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: an upgrade past timeoutMs rejects with TimeoutError, socket closed', async () => {
    const peer = await startWssPeer(serverIdentity, { mode: 'silent' });
    try {
      await assert.rejects(
        mqttWsIo({ host: 'localhost', port: peer.port, trustedCa: rootCa.certPem, timeoutMs: 300 }),
        (error: unknown) => error instanceof TimeoutError && error.phase === 'websocket',
      );
      assert.equal(peer.upgrades.length, 1);
      await Promise.all(peer.closed);
    } finally {
      await peer.close();
    }
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: an IPv6 literal host: no SNI, bracketed Host header', async (context) => {
    let peer: WssPeer;
    try {
      peer = await startWssPeer(serverIdentity, { host: '::1' });
    } catch {
      context.skip('no IPv6 loopback here');
      return;
    }
    try {
      const stream = await mqttWsIo({ host: '::1', port: peer.port, trustedCa: rootCa.certPem });
      stream.write(MQTT_CONNECT);
      assert.deepEqual(await readBytes(stream, MQTT_CONNECT.length), MQTT_CONNECT);
      stream.destroy();
      assert.equal(peer.upgrades.at(-1)?.servername, false);
      assert.equal(peer.upgrades.at(-1)?.host, `[::1]:${peer.port}`);
    } finally {
      await peer.close();
    }
  });
});
