// The HTTP CONNECT tunnel, against a real proxy (npm `proxy`) on loopback.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createProxy, type ProxyServer } from 'proxy';
import { openProxyTunnel } from '../src/io/proxy-tunnel.js';
import { AbortError, InvalidInputError, ProxyError } from '../src/protocol/errors.js';

/** Listens on port 0 of a loopback address; resolves the port. */
async function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

/** Every socket a server accepts, and a promise for each one's close: proof that nothing stays open. */
function trackSockets(server: net.Server): { closed: Promise<void>[] } {
  const tracked = { closed: [] as Promise<void>[] };
  server.on('connection', (socket: net.Socket) => {
    tracked.closed.push(once(socket, 'close').then(() => undefined));
    socket.resume(); // a socket nobody reads never notices the peer's FIN
  });
  return tracked;
}

async function closeServer(server: net.Server): Promise<void> {
  if (server instanceof http.Server) server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A TCP echo server: the tunnel's far end. */
function echoServer(): net.Server {
  return net.createServer((socket) => socket.pipe(socket));
}

async function roundTrip(socket: net.Socket, bytes: Buffer): Promise<Buffer> {
  const received: Buffer[] = [];
  let length = 0;
  socket.write(bytes);
  for await (const chunk of socket) {
    received.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if (length >= bytes.length) break;
  }
  return Buffer.concat(received);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await closeServer(server);
  return port;
}

const MQTT_PINGREQ = Buffer.from([0xc0, 0x00]);

describe('openProxyTunnel through a real HTTP CONNECT proxy', () => {
  let echo: net.Server;
  let echoPort: number;
  before(async () => {
    echo = echoServer();
    echoPort = await listen(echo);
  });
  after(async () => {
    await closeServer(echo);
  });

  test('tunnels bytes to the target when the proxy needs no authentication', async () => {
    const proxy = createProxy(http.createServer());
    const targets: string[] = [];
    proxy.on('connect', (request: http.IncomingMessage) => targets.push(request.url ?? ''));
    const proxyPort = await listen(proxy);
    try {
      const socket = await openProxyTunnel({
        proxy: { host: '127.0.0.1', port: proxyPort },
        targetHost: '127.0.0.1',
        targetPort: echoPort,
      });
      assert.deepEqual(await roundTrip(socket, MQTT_PINGREQ), MQTT_PINGREQ);
      socket.destroy();
      assert.deepEqual(targets, [`127.0.0.1:${echoPort}`]);
    } finally {
      await closeServer(proxy);
    }
  });

  test('sends Basic credentials the proxy accepts', async () => {
    const proxy: ProxyServer = createProxy(http.createServer());
    const seen: (string | undefined)[] = [];
    proxy.authenticate = (request) => {
      seen.push(request.headers['proxy-authorization']);
      return (
        request.headers['proxy-authorization'] ===
        `Basic ${Buffer.from('dev-user:pä55:word').toString('base64')}`
      );
    };
    const proxyPort = await listen(proxy);
    try {
      const socket = await openProxyTunnel({
        proxy: { host: '127.0.0.1', port: proxyPort, username: 'dev-user', password: 'pä55:word' },
        targetHost: '127.0.0.1',
        targetPort: echoPort,
      });
      assert.deepEqual(await roundTrip(socket, MQTT_PINGREQ), MQTT_PINGREQ);
      socket.destroy();
      assert.equal(seen.length, 1);
    } finally {
      await closeServer(proxy);
    }
  });

  test('wrong credentials: ProxyError 407 naming the proxy answer, without the password', async () => {
    const proxy: ProxyServer = createProxy(http.createServer());
    proxy.authenticate = () => false;
    const sockets = trackSockets(proxy);
    const proxyPort = await listen(proxy);
    try {
      const error = await openProxyTunnel({
        proxy: { host: '127.0.0.1', port: proxyPort, username: 'dev-user', password: 'sekrit-Pa55' },
        targetHost: 'dps.example',
        targetPort: 443,
      }).then(
        () => assert.fail('the tunnel opened'),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof ProxyError);
      assert.equal(error.statusCode, 407);
      assert.equal(error.code, 'ERR_PROXY');
      assert.equal(error.phase, 'proxy');
      assert.equal(error.retryable, false);
      assert.equal(
        error.message,
        `proxy 127.0.0.1:${proxyPort} refused CONNECT to dps.example:443: 407 Proxy Authentication Required — ` +
          'check the proxy user name and password',
      );
      assert.doesNotMatch(error.message, /sekrit/);
      assert.doesNotMatch(error.message, new RegExp(Buffer.from('dev-user:sekrit-Pa55').toString('base64')));
      await Promise.all(sockets.closed);
    } finally {
      await closeServer(proxy);
    }
  });

  test('no credentials where the proxy wants them: the hint says to set them', async () => {
    const proxy: ProxyServer = createProxy(http.createServer());
    proxy.authenticate = () => false;
    const proxyPort = await listen(proxy);
    try {
      await assert.rejects(
        openProxyTunnel({
          proxy: { host: '127.0.0.1', port: proxyPort },
          targetHost: 'dps.example',
          targetPort: 443,
        }),
        (error: unknown) =>
          error instanceof ProxyError &&
          error.statusCode === 407 &&
          /set the proxy user name/.test(error.message),
      );
    } finally {
      await closeServer(proxy);
    }
  });

  test('a target the proxy cannot reach: ProxyError with the proxy status, retryable', async () => {
    const proxy = createProxy(http.createServer());
    const proxyPort = await listen(proxy);
    const closedPort = await freePort();
    try {
      await assert.rejects(
        openProxyTunnel({
          proxy: { host: '127.0.0.1', port: proxyPort },
          targetHost: '127.0.0.1',
          targetPort: closedPort,
        }),
        (error: unknown) =>
          error instanceof ProxyError &&
          error.statusCode === 500 &&
          error.retryable &&
          error.message.includes(`refused CONNECT to 127.0.0.1:${closedPort}: 500`),
      );
    } finally {
      await closeServer(proxy);
    }
  });

  test('a proxy that does not listen: ProxyError naming ECONNREFUSED and what to check', async () => {
    const port = await freePort();
    await assert.rejects(
      openProxyTunnel({ proxy: { host: '127.0.0.1', port }, targetHost: 'dps.example', targetPort: 443 }),
      (error: unknown) =>
        error instanceof ProxyError &&
        error.statusCode === undefined &&
        error.phase === 'proxy' &&
        error.message ===
          `could not reach proxy 127.0.0.1:${port}: ECONNREFUSED — nothing listens there: check the proxy host and port`,
    );
  });

  test('a proxy that closes without answering: ProxyError', async () => {
    const silent = net.createServer((socket) => socket.once('data', () => socket.destroy()));
    const port = await listen(silent);
    try {
      await assert.rejects(
        openProxyTunnel({ proxy: { host: '127.0.0.1', port }, targetHost: 'dps.example', targetPort: 443 }),
        (error: unknown) => error instanceof ProxyError && error.statusCode === undefined,
      );
    } finally {
      await closeServer(silent);
    }
  });

  test('abort while the proxy is silent: rejects with AbortError and closes the socket', async () => {
    const silent = net.createServer();
    const requestSeen = new Promise<net.Socket>((resolve) =>
      silent.on('connection', (socket) => socket.once('data', () => resolve(socket))),
    );
    const port = await listen(silent);
    try {
      const controller = new AbortController();
      const opening = openProxyTunnel({
        proxy: { host: '127.0.0.1', port },
        targetHost: 'dps.example',
        targetPort: 443,
        signal: controller.signal,
      });
      const serverSide = await requestSeen;
      controller.abort();
      await assert.rejects(
        opening,
        (error: unknown) => error instanceof AbortError && error.phase === 'proxy',
      );
      await once(serverSide, 'close');
    } finally {
      await closeServer(silent);
    }
  });

  test('a silent proxy past timeoutMs: ProxyError saying the tunnel did not open in time', async () => {
    const silent = net.createServer();
    const sockets = trackSockets(silent);
    const port = await listen(silent);
    try {
      await assert.rejects(
        openProxyTunnel({
          proxy: { host: '127.0.0.1', port },
          targetHost: 'dps.example',
          targetPort: 443,
          timeoutMs: 50,
        }),
        (error: unknown) => error instanceof ProxyError && error.retryable && /in time/.test(error.message),
      );
      await Promise.all(sockets.closed);
    } finally {
      await closeServer(silent);
    }
  });

  test('an IPv6 proxy address, with or without brackets', async (context) => {
    const proxy = createProxy(http.createServer());
    let proxyPort: number;
    try {
      proxyPort = await listen(proxy, '::1');
    } catch {
      context.skip('no IPv6 loopback here');
      return;
    }
    try {
      for (const host of ['::1', '[::1]']) {
        const socket = await openProxyTunnel({
          proxy: { host, port: proxyPort },
          targetHost: '127.0.0.1',
          targetPort: echoPort,
        });
        assert.deepEqual(await roundTrip(socket, MQTT_PINGREQ), MQTT_PINGREQ);
        socket.destroy();
      }
    } finally {
      await closeServer(proxy);
    }
  });

  test('an IPv6 target is bracketed in the CONNECT line', async () => {
    const proxy = createProxy(http.createServer());
    const targets: string[] = [];
    proxy.on('connect', (request: http.IncomingMessage) => targets.push(request.url ?? ''));
    proxy.authenticate = () => false; // the request line is all this test needs
    const proxyPort = await listen(proxy);
    try {
      await assert.rejects(
        openProxyTunnel({
          proxy: { host: '127.0.0.1', port: proxyPort },
          targetHost: '::1',
          targetPort: 443,
        }),
        (error: unknown) => error instanceof ProxyError && error.message.includes('CONNECT to [::1]:443'),
      );
      assert.deepEqual(targets, ['[::1]:443']);
    } finally {
      await closeServer(proxy);
    }
  });

  test('a user name with ":" is refused before any I/O', async () => {
    await assert.rejects(
      openProxyTunnel({
        proxy: { host: '127.0.0.1', port: 1, username: 'a:b', password: 'x' },
        targetHost: 'dps.example',
        targetPort: 443,
      }),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'proxy.username',
    );
  });
});
