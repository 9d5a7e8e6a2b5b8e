// Nagle off on the device's TLS socket, set once it has connected: a DPS exchange is a few small packets,
// and with Nagle on each waits for the server's delayed ACK. Checked by watching setNoDelay(true) on the
// client's own socket, no timing involved.
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { mock, test } from 'node:test';
import tls from 'node:tls';
import { createRootCa, issueCertificate } from '../src/emulator/pki/pki.js';
import { openTls } from '../src/io/index.js';
import { closeServer, listenOnLoopback } from './support/net.js';

test("the client's TLS socket turns Nagle off once, after TCP connects", async (t) => {
  const rootCa = await createRootCa({ commonName: 'nodelay test root' });
  const leaf = await issueCertificate({
    issuer: rootCa,
    commonName: 'localhost',
    altNames: ['localhost'],
    usage: 'server',
  });
  const server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (socket) => socket.resume());
  const port = await listenOnLoopback(server);
  t.after(() => closeServer(server));
  const original = Socket.prototype.setNoDelay;
  const calls: { socket: Socket; enable: boolean | undefined; connecting: boolean }[] = [];
  const setNoDelay = mock.method(Socket.prototype, 'setNoDelay', function (this: Socket, enable?: boolean) {
    calls.push({ socket: this, enable, connecting: this.connecting });
    return original.call(this, enable);
  });
  t.after(() => setNoDelay.mock.restore());

  const socket = await openTls({ host: 'localhost', port, trustedCa: rootCa.certPem });
  socket.destroy();
  // Once, after the connect: set while connecting, Node would set it on the socket a second time.
  assert.deepEqual(
    calls.filter((call) => call.socket === socket).map(({ enable, connecting }) => ({ enable, connecting })),
    [{ enable: true, connecting: false }],
  );
});
