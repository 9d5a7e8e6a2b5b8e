// Issue 6, emulator timeouts and bounds, one behaviour each (the attack suite mixes them under load):
// clients that never finish TLS, the WebSocket upgrade or CONNECT are closed within connectTimeoutMs,
// and a device that never reads its answers is disconnected before its backlog grows without end.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import mqttPacket from 'mqtt-packet';
import { DEMO_DEVICE_ID, DEMO_DEVICE_KEY } from '../src/emulator/enrollments/config.js';
import { registerTopic } from '../src/protocol/topics.js';
import {
  publishPacket,
  sasConnectPacket,
  startTestEmulator,
  subscribePacket,
  type TestEmulator,
} from './helpers/emulator.js';

mqttPacket.writeToStream.cacheNumbers = false;

const CONNECT_TIMEOUT_MS = 400;
const SLACK_MS = 2000;

/** Milliseconds until the emulator closed the stream; fails if it is still open after the limit. */
async function closedByEmulator(stream: Duplex, limitMs: number): Promise<number> {
  const startedAt = performance.now();
  let guard: NodeJS.Timeout | undefined;
  const stillOpen = new Promise<'open'>((resolve) => {
    guard = setTimeout(() => resolve('open'), limitMs);
  });
  const result = await Promise.race([once(stream, 'close').then(() => 'closed' as const), stillOpen]);
  clearTimeout(guard);
  stream.destroy();
  assert.equal(result, 'closed', `still open after ${limitMs} ms`);
  return performance.now() - startedAt;
}

describe('emulator limits', () => {
  let emulator: TestEmulator;
  before(async () => {
    emulator = await startTestEmulator({ connectTimeoutMs: CONNECT_TIMEOUT_MS });
  });
  after(() => emulator.close());

  const tlsTo = async (port: number): Promise<tls.TLSSocket> => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: emulator.caCertPem, servername: 'localhost' });
    socket.on('error', () => {});
    socket.resume();
    await once(socket, 'secureConnect');
    return socket;
  };

  test('a TCP connection that never sends a ClientHello is closed on both listeners', async () => {
    for (const port of [emulator.mqttPort, emulator.wssPort]) {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => {});
      socket.resume();
      await once(socket, 'connect');
      await closedByEmulator(socket, CONNECT_TIMEOUT_MS + SLACK_MS);
    }
  });

  test('a TLS connection that never sends the WebSocket upgrade is closed', async () => {
    await closedByEmulator(await tlsTo(emulator.wssPort), CONNECT_TIMEOUT_MS + SLACK_MS);
  });

  test('a TLS connection that never sends CONNECT is closed', async () => {
    await closedByEmulator(await tlsTo(emulator.mqttPort), CONNECT_TIMEOUT_MS + SLACK_MS);
  });

  test('a CONNECT trickled one byte at a time cannot hold the connection past the connect timeout', async () => {
    const socket = await tlsTo(emulator.mqttPort);
    const connect = mqttPacket.generate(
      sasConnectPacket({ idScope: emulator.idScope, registrationId: DEMO_DEVICE_ID, key: DEMO_DEVICE_KEY }),
    );
    let position = 0;
    const trickle = setInterval(() => {
      if (position < connect.length - 1 && !socket.destroyed)
        socket.write(connect.subarray(position, ++position));
    }, 20);
    try {
      const closedAfter = await closedByEmulator(socket, CONNECT_TIMEOUT_MS + SLACK_MS);
      assert.ok(position < connect.length - 1, 'the emulator waited for the whole trickle');
      assert.ok(closedAfter < CONNECT_TIMEOUT_MS + SLACK_MS);
    } finally {
      clearInterval(trickle);
    }
  });

  test('a device that sends requests but never reads the answers is disconnected', async () => {
    const socket = await tlsTo(emulator.mqttPort);
    socket.pause(); // from here on, nothing is read
    socket.write(
      mqttPacket.generate(
        sasConnectPacket({ idScope: emulator.idScope, registrationId: DEMO_DEVICE_ID, key: DEMO_DEVICE_KEY }),
      ),
    );
    socket.write(mqttPacket.generate(subscribePacket()));
    const request = mqttPacket.generate(
      publishPacket(registerTopic('r'), { registrationId: DEMO_DEVICE_ID }),
    );
    const burst = Buffer.concat(Array.from({ length: 1000 }, () => request));
    let sent = 0;
    const closed = new Promise((resolve) => socket.once('close', resolve));
    // Keep sending while the emulator still reads: it must give up on us before we give up on it.
    while (!socket.destroyed && sent < 200) {
      if (!socket.write(burst)) await Promise.race([once(socket, 'drain').catch(() => {}), closed]);
      sent += 1;
    }
    assert.ok(sent < 200, `the emulator still accepted requests after ${sent * 1000} unread answers`);
    await closed;
  });
});
