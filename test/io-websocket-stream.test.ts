// The device's own WebSocket client on real TLS sockets: against `ws` as the server (pings, the closing
// handshake, a text frame, random traffic both ways) and against a scripted TLS server that answers the
// upgrade wrongly in each way RFC 6455 §4.2.2 lets a client notice.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import fc from 'fast-check';
import { type WebSocket, WebSocketServer } from 'ws';
import { type CertificateAndKey, createRootCa, issueCertificate } from '../src/emulator/pki/pki.js';
import { openWebSocket } from '../src/io/index.js';
import { acceptFor } from '../src/io/websocket-handshake.js';
import { TransportError } from '../src/protocol/errors.js';
import { closeServer, listenOnLoopback, rejectionOf, trackSocketCloses } from './support/net.js';

interface WsPeer {
  port: number;
  /** The server side of the next accepted WebSocket. */
  nextSocket(): Promise<WebSocket>;
  close(): Promise<void>;
}

async function startWsPeer(identity: CertificateAndKey): Promise<WsPeer> {
  const server = https.createServer({ cert: identity.certPem, key: identity.keyPem });
  const wss = new WebSocketServer({ server, perMessageDeflate: false, handleProtocols: () => 'mqtt' });
  const closed = trackSocketCloses(server);
  const port = await listenOnLoopback(server);
  return {
    port,
    nextSocket: async () => ((await once(wss, 'connection')) as [WebSocket])[0],
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await closeServer(server);
      await Promise.all(closed);
    },
  };
}

/** A TLS server that reads the upgrade request and answers with `answer(key)` verbatim. */
async function startScriptedServer(
  identity: CertificateAndKey,
  answer: (key: string) => string | Buffer,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = tls.createServer({ cert: identity.certPem, key: identity.keyPem }, (socket) => {
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const key = /sec-websocket-key: (\S+)/i.exec(head)?.[1] ?? '';
      socket.write(answer(key));
    });
  });
  const closed = trackSocketCloses(server);
  const port = await listenOnLoopback(server);
  return {
    port,
    close: async () => {
      await closeServer(server);
      await Promise.all(closed);
    },
  };
}

function collect(stream: Duplex): { bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { bytes: () => Buffer.concat(chunks) };
}

describe('the device WebSocket client', () => {
  let rootCa: CertificateAndKey;
  let serverIdentity: CertificateAndKey;

  before(async () => {
    rootCa = await createRootCa({ commonName: 'websocket stream test root' });
    serverIdentity = await issueCertificate({
      issuer: rootCa,
      commonName: 'localhost',
      altNames: ['localhost', '127.0.0.1'],
      usage: 'server',
    });
  });

  describe('against ws', () => {
    let peer: WsPeer;
    before(async () => {
      peer = await startWsPeer(serverIdentity);
    });
    after(async () => peer.close());

    const open = async (): Promise<{ stream: Duplex; server: WebSocket }> => {
      const serverSide = peer.nextSocket();
      const stream = await openWebSocket({ host: 'localhost', port: peer.port, trustedCa: rootCa.certPem });
      return { stream, server: await serverSide };
    };

    test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: random traffic both ways arrives intact and in order', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { minLength: 1, maxLength: 8 }),
          fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { minLength: 1, maxLength: 8 }),
          async (up, down) => {
            const { stream, server } = await open();
            const received: Buffer[] = [];
            server.on('message', (data: Buffer) => received.push(Buffer.from(data)));
            const reading = collect(stream);
            for (const packet of up) stream.write(Buffer.from(packet));
            for (const packet of down) server.send(Buffer.from(packet), { binary: true });
            const upBytes = Buffer.concat(up.map((packet) => Buffer.from(packet)));
            const downBytes = Buffer.concat(down.map((packet) => Buffer.from(packet)));
            while (
              Buffer.concat(received).length < upBytes.length ||
              reading.bytes().length < downBytes.length
            ) {
              await new Promise((resolve) => setTimeout(resolve, 2));
            }
            // Each write is one binary message, as MQTT over WebSocket expects.
            assert.deepEqual(
              received,
              up.map((packet) => Buffer.from(packet)),
            );
            assert.deepEqual(reading.bytes(), downBytes);
            const closed = once(stream, 'close');
            stream.destroy();
            await closed;
          },
        ),
        { numRuns: 15 },
      );
    });

    test("a server's ping is answered with a pong carrying its payload", async () => {
      const { stream, server } = await open();
      stream.resume();
      const pong = once(server, 'pong');
      server.ping(Buffer.from('are you there'));
      const [payload] = (await pong) as [Buffer];
      assert.deepEqual(payload, Buffer.from('are you there'));
      stream.destroy();
    });

    test("the server's close code is echoed, then the stream ends and closes", async () => {
      const { stream, server } = await open();
      stream.resume();
      const serverClosed = once(server, 'close');
      const ended = once(stream, 'end');
      const streamClosed = once(stream, 'close');
      server.close(4001, 'maintenance');
      const [code] = (await serverClosed) as [number];
      assert.equal(code, 4001);
      await Promise.all([ended, streamClosed]);
    });

    test('a text frame from the server (MQTT is binary only) fails the stream with a websocket error', async () => {
      const { stream, server } = await open();
      const failed = once(stream, 'error');
      const serverClosed = once(server, 'close');
      server.send('not mqtt');
      const [error] = (await failed) as [TransportError];
      assert.ok(error instanceof TransportError);
      assert.equal(error.phase, 'websocket');
      assert.match(error.message, /text frame/);
      const [code] = (await serverClosed) as [number];
      assert.equal(code, 1003);
    });

    test('destroy() tells the server with a normal close and frees the socket', async () => {
      const { stream, server } = await open();
      const serverClosed = once(server, 'close');
      stream.destroy();
      const [code] = (await serverClosed) as [number];
      assert.equal(code, 1000);
    });
  });

  const refusals: Array<[string, (key: string) => string | Buffer, RegExp, boolean]> = [
    [
      'a wrong Sec-WebSocket-Accept',
      () =>
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n',
      /Sec-WebSocket-Accept/,
      true,
    ],
    [
      'a 101 without the Upgrade header',
      (key) =>
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n` +
        'Sec-WebSocket-Protocol: mqtt\r\n\r\n',
      /Upgrade header/,
      true,
    ],
    [
      'an extension that was not offered',
      (key) =>
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n` +
        'Sec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n',
      /extensions that were not offered/,
      true,
    ],
    [
      'another subprotocol',
      (key) =>
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n` +
        'Sec-WebSocket-Protocol: amqp\r\n\r\n',
      /did not accept WebSocket subprotocol "mqtt" \(it selected "amqp"\)/,
      false,
    ],
    [
      'bytes that are not HTTP (an MQTT port)',
      () => Buffer.from([0x20, 0x02, 0x00, 0x05]),
      /did not answer the WebSocket upgrade with HTTP/,
      false,
    ],
    [
      'a response head that never ends',
      () => `HTTP/1.1 101 Switching Protocols\r\n${'X-Padding: yes\r\n'.repeat(2000)}`,
      /longer than 16384 bytes/,
      false,
    ],
    [
      '503 Service Unavailable',
      () => 'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n',
      /refused the WebSocket upgrade to \/\$iothub\/websocket: 503 Service Unavailable/,
      true,
    ],
  ];
  for (const [name, answer, message, retryable] of refusals) {
    test(`PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: ${name} is refused with a websocket error, nothing left open`, async () => {
      const server = await startScriptedServer(serverIdentity, answer);
      try {
        const error = await rejectionOf(
          openWebSocket({ host: 'localhost', port: server.port, trustedCa: rootCa.certPem }),
        );
        assert.ok(error instanceof TransportError, String(error));
        assert.equal(error.phase, 'websocket');
        assert.match(error.message, message);
        assert.equal(error.retryable, retryable);
      } finally {
        await server.close();
      }
    });
  }

  test('frames that arrive with the 101 head are not lost', async () => {
    const server = await startScriptedServer(serverIdentity, (key) =>
      Buffer.concat([
        Buffer.from(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n` +
            'Sec-WebSocket-Protocol: mqtt\r\n\r\n',
          'latin1',
        ),
        Buffer.from([0x82, 0x04, 0x20, 0x02, 0x00, 0x00]), // a CONNACK in the same segment
      ]),
    );
    try {
      const stream = await openWebSocket({ host: 'localhost', port: server.port, trustedCa: rootCa.certPem });
      const [chunk] = (await once(stream, 'data')) as [Buffer];
      assert.deepEqual(chunk, Buffer.from([0x20, 0x02, 0x00, 0x00]));
      stream.destroy();
    } finally {
      await server.close();
    }
  });
});
