// Host name lookups shared for a moment (src/io/dns-cache.ts): connections to one name within
// DNS_REUSE_MS share one dns.lookup, also while it runs; after that the name is looked up again; a failed
// lookup is not kept, and a connection that fails forgets the addresses it used.
import assert from 'node:assert/strict';
import dns from 'node:dns';
import net from 'node:net';
import { after, before, beforeEach, describe, mock, test } from 'node:test';
import { DNS_REUSE_MS, forgetLookup, sharedLookup } from '../src/io/dns-cache.js';
import { openTcp } from '../src/io/tcp.js';
import { TransportError } from '../src/protocol/errors.js';
import { closeServer, freePort, listenOnLoopback, rejectionOf } from './support/net.js';

describe('shared host name lookups', () => {
  let server: net.Server;
  let port: number;
  const lookups = mock.method(dns, 'lookup');
  const lookupsOf = (hostname: string): number =>
    lookups.mock.calls.filter((call) => call.arguments[0] === hostname).length;

  before(async () => {
    server = net.createServer((socket) => socket.destroy());
    port = await listenOnLoopback(server);
  });
  after(async () => {
    lookups.mock.restore();
    await closeServer(server);
  });
  beforeEach(() => {
    forgetLookup('localhost');
    lookups.mock.resetCalls();
  });

  test('connections that start together, and those right after, share one lookup', async () => {
    const sockets = await Promise.all(Array.from({ length: 10 }, () => openTcp({ host: 'localhost', port })));
    sockets.push(await openTcp({ host: 'localhost', port }));
    for (const socket of sockets) socket.destroy();
    assert.equal(lookupsOf('localhost'), 1);
  });

  test(`after ${DNS_REUSE_MS} ms the name is looked up again`, async () => {
    (await openTcp({ host: 'localhost', port })).destroy();
    await new Promise((resolve) => setTimeout(resolve, DNS_REUSE_MS + 20));
    (await openTcp({ host: 'localhost', port })).destroy();
    assert.equal(lookupsOf('localhost'), 2);
  });

  test('a connection that fails forgets the addresses: the next one looks the name up afresh', async () => {
    const closedPort = await freePort();
    const error = await rejectionOf(openTcp({ host: 'localhost', port: closedPort }));
    assert.ok(error instanceof TransportError && error.reason === 'connection-refused', String(error));
    (await openTcp({ host: 'localhost', port })).destroy();
    assert.equal(lookupsOf('localhost'), 2);
  });

  test('a failed lookup reaches every connection waiting on it, and is not kept', async () => {
    lookups.mock.mockImplementationOnce(((
      hostname: string,
      _options: unknown,
      callback: (error: Error) => void,
    ) => {
      const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      error.code = 'ENOTFOUND';
      setImmediate(() => callback(error));
    }) as typeof dns.lookup);
    const errors = await Promise.all(
      Array.from({ length: 3 }, () => rejectionOf(openTcp({ host: 'localhost', port }))),
    );
    for (const error of errors) {
      assert.ok(error instanceof TransportError && error.reason === 'host-not-found', String(error));
    }
    (await openTcp({ host: 'localhost', port })).destroy();
    assert.equal(lookupsOf('localhost'), 2);
  });

  test('a lookup for one address gets the first of the list, with its family', async () => {
    const answer = await new Promise<{ address: unknown; family: unknown }>((resolve, reject) =>
      sharedLookup('localhost', { family: 4 }, (error, address, family) =>
        error ? reject(error) : resolve({ address, family }),
      ),
    );
    assert.deepEqual(answer, { address: '127.0.0.1', family: 4 });
    const all = await new Promise<unknown>((resolve, reject) =>
      sharedLookup('localhost', { family: 4, all: true }, (error, addresses) =>
        error ? reject(error) : resolve(addresses),
      ),
    );
    assert.deepEqual(all, [{ address: '127.0.0.1', family: 4 }]);
  });
});
