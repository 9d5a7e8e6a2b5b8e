// Nagle off on every accepted socket, both TLS listeners: an answer is one small TLS record, and with
// Nagle on it waits for the device's delayed ACK (about 40 ms on Linux). Checked by watching
// setNoDelay(true) being called on the emulator's side of each connection, no timing involved.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Socket } from 'node:net';
import { mock, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { startTestEmulator } from './helpers/emulator.js';

test('accepted sockets on the MQTT and the HTTPS/WebSocket ports have Nagle turned off', async (t) => {
  const setNoDelay = mock.method(Socket.prototype, 'setNoDelay');
  t.after(() => setNoDelay.mock.restore());
  const emulator = await startTestEmulator();
  t.after(() => emulator.close());

  for (const port of [emulator.mqttPort, emulator.wssPort]) {
    const client = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: emulator.caCertPem });
    await once(client, 'secureConnect');
    const serverSide = setNoDelay.mock.calls.filter((call) => {
      const socket = call.this as Socket;
      return socket.localPort === port && socket.remotePort === client.localPort;
    });
    assert.ok(serverSide.length > 0, `no setNoDelay on the accepted socket of port ${port}`);
    assert.ok(serverSide.some((call) => call.arguments[0] === true || call.arguments[0] === undefined));
    client.destroy();
  }
});
