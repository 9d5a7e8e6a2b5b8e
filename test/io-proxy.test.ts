// The HTTP CONNECT tunnel, against a real proxy (npm `proxy`) on loopback.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { openProxyTunnel } from '../src/io/proxy-tunnel.js';
import { AbortError, InvalidInputError, ProxyError } from '../src/protocol/errors.js';
import {
  type ConnectProxy,
  closeServer,
  echoOnce,
  freePort,
  listenOnLoopback,
  rejectionOf,
  startConnectProxy,
  startSilentServer,
  trackSocketCloses,
} from './support/net.js';

/** A TCP echo server: the tunnel's far end. */
function echoServer(): net.Server {
  return net.createServer((socket) => socket.pipe(socket));
}

const MQTT_PINGREQ = Buffer.from([0xc0, 0x00]);

describe('openProxyTunnel through a real HTTP CONNECT proxy', () => {
  let echo: net.Server;
  let echoPort: number;
  before(async () => {
    echo = echoServer();
    echoPort = await listenOnLoopback(echo);
  });
  after(async () => {
    await closeServer(echo);
  });

  test('tunnels bytes to the target when the proxy needs no authentication', async () => {
    const proxy = await startConnectProxy();
    try {
      const socket = await openProxyTunnel({
        proxy: { host: '127.0.0.1', port: proxy.port },
        targetHost: '127.0.0.1',
        targetPort: echoPort,
      });
      assert.deepEqual(await echoOnce(socket, MQTT_PINGREQ), MQTT_PINGREQ);
      socket.destroy();
      assert.deepEqual(proxy.targets, [`127.0.0.1:${echoPort}`]);
    } finally {
      await proxy.close();
    }
  });

  test('sends Basic credentials the proxy accepts', async () => {
    const seen: (string | undefined)[] = [];
    const proxy = await startConnectProxy({
      authenticate: (request) => {
        seen.push(request.headers['proxy-authorization']);
        return (
          request.headers['proxy-authorization'] ===
          `Basic ${Buffer.from('dev-user:pä55:word').toString('base64')}`
        );
      },
    });
    try {
      const socket = await openProxyTunnel({
        proxy: { host: '127.0.0.1', port: proxy.port, username: 'dev-user', password: 'pä55:word' },
        targetHost: '127.0.0.1',
        targetPort: echoPort,
      });
      assert.deepEqual(await echoOnce(socket, MQTT_PINGREQ), MQTT_PINGREQ);
      socket.destroy();
      assert.equal(seen.length, 1);
    } finally {
      await proxy.close();
    }
  });

  test('wrong credentials: ProxyError 407 naming the proxy answer, without the password', async () => {
    const proxy = await startConnectProxy({ authenticate: () => false });
    const proxySockets = trackSocketCloses(proxy.server, { resume: true });
    try {
      const error = await rejectionOf(
        openProxyTunnel({
          proxy: { host: '127.0.0.1', port: proxy.port, username: 'dev-user', password: 'sekrit-Pa55' },
          targetHost: 'dps.example',
          targetPort: 443,
        }),
      );
      assert.ok(error instanceof ProxyError);
      assert.equal(error.statusCode, 407);
      assert.equal(error.code, 'ERR_PROXY');
      assert.equal(error.phase, 'proxy');
      assert.equal(error.retryable, false);
      assert.equal(
        error.message,
        `proxy 127.0.0.1:${proxy.port} refused CONNECT to dps.example:443: 407 Proxy Authentication Required — ` +
          'check the proxy user name and password',
      );
      assert.doesNotMatch(error.message, /sekrit/);
      assert.doesNotMatch(error.message, new RegExp(Buffer.from('dev-user:sekrit-Pa55').toString('base64')));
      await Promise.all(proxySockets);
    } finally {
      await proxy.close();
    }
  });

  test('no credentials where the proxy wants them: the hint says to set them', async () => {
    const proxy = await startConnectProxy({ authenticate: () => false });
    try {
      await assert.rejects(
        openProxyTunnel({
          proxy: { host: '127.0.0.1', port: proxy.port },
          targetHost: 'dps.example',
          targetPort: 443,
        }),
        (error: unknown) =>
          error instanceof ProxyError &&
          error.statusCode === 407 &&
          /set the proxy user name/.test(error.message),
      );
    } finally {
      await proxy.close();
    }
  });

  test('a target the proxy cannot reach: ProxyError with the proxy status, retryable', async () => {
    const proxy = await startConnectProxy();
    const closedPort = await freePort();
    try {
      await assert.rejects(
        openProxyTunnel({
          proxy: { host: '127.0.0.1', port: proxy.port },
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
      await proxy.close();
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
    const port = await listenOnLoopback(silent);
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
    const silent = await startSilentServer();
    try {
      const controller = new AbortController();
      const opening = openProxyTunnel({
        proxy: { host: '127.0.0.1', port: silent.port },
        targetHost: 'dps.example',
        targetPort: 443,
        signal: controller.signal,
      });
      const serverSide = await silent.firstBytes;
      controller.abort();
      await assert.rejects(
        opening,
        (error: unknown) => error instanceof AbortError && error.phase === 'proxy',
      );
      await once(serverSide, 'close');
    } finally {
      await closeServer(silent.server);
    }
  });

  test('a silent proxy past timeoutMs: ProxyError saying the tunnel did not open in time', async () => {
    const silent = net.createServer();
    const sockets = trackSocketCloses(silent, { resume: true });
    const port = await listenOnLoopback(silent);
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
      await Promise.all(sockets);
    } finally {
      await closeServer(silent);
    }
  });

  test('an IPv6 proxy address, with or without brackets', async (context) => {
    let proxy: ConnectProxy;
    try {
      proxy = await startConnectProxy({ host: '::1' });
    } catch {
      context.skip('no IPv6 loopback here');
      return;
    }
    try {
      for (const host of ['::1', '[::1]']) {
        const socket = await openProxyTunnel({
          proxy: { host, port: proxy.port },
          targetHost: '127.0.0.1',
          targetPort: echoPort,
        });
        assert.deepEqual(await echoOnce(socket, MQTT_PINGREQ), MQTT_PINGREQ);
        socket.destroy();
      }
    } finally {
      await proxy.close();
    }
  });

  test('an IPv6 target is bracketed in the CONNECT line', async () => {
    // Refusing is enough: the CONNECT request line is all this test needs.
    const proxy = await startConnectProxy({ authenticate: () => false });
    try {
      await assert.rejects(
        openProxyTunnel({
          proxy: { host: '127.0.0.1', port: proxy.port },
          targetHost: '::1',
          targetPort: 443,
        }),
        (error: unknown) => error instanceof ProxyError && error.message.includes('CONNECT to [::1]:443'),
      );
      assert.deepEqual(proxy.targets, ['[::1]:443']);
    } finally {
      await proxy.close();
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
