// The emulator's WebSocket connection (src/emulator/network/websocket-stream.ts) and its batched answers:
// a device sees the same WebSocket messages and close handshake as with ws's createWebSocketStream, one
// MQTT packet per message, whatever the emulator writes to the socket at once.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { WebSocket } from 'ws';
import { DEMO_DEVICE_ID, DEMO_DEVICE_KEY } from '../src/emulator/enrollments/config.js';
import { registerTopic } from '../src/protocol/topics.js';
import { publishPacket, sasConnectPacket, startTestEmulator, type TestEmulator } from './helpers/emulator.js';

mqttPacket.writeToStream.cacheNumbers = false;

let emulator: TestEmulator;
before(async () => {
  emulator = await startTestEmulator();
});
after(() => emulator.close());

/** An open WebSocket to the emulator that records every message (one MQTT packet each) and the close. */
async function openDevice() {
  const webSocket = new WebSocket(`wss://127.0.0.1:${emulator.wssPort}/$iothub/websocket`, ['mqtt'], {
    ca: emulator.caCertPem,
  });
  const messages: Buffer[] = [];
  const waiters: Array<() => void> = [];
  webSocket.on('message', (data: Buffer) => {
    messages.push(data);
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = once(webSocket, 'close') as Promise<[number, Buffer]>;
  await once(webSocket, 'open');
  return {
    webSocket,
    messages,
    closed,
    /** Resolves once `count` messages have arrived. */
    async received(count: number): Promise<Packet[]> {
      while (messages.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
      return messages.map(parseOne);
    },
  };
}

/** The single MQTT packet a message must hold. */
function parseOne(message: Buffer): Packet {
  const packets: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (packet: Packet) => packets.push(packet));
  parser.on('error', (error: Error) => {
    throw error;
  });
  parser.parse(message);
  assert.equal(packets.length, 1, `a WebSocket message holds ${packets.length} MQTT packets, not 1`);
  return packets[0] as Packet;
}

const connect = (key = DEMO_DEVICE_KEY) =>
  mqttPacket.generate(sasConnectPacket({ idScope: '0ne00000000', registrationId: DEMO_DEVICE_ID, key }));

test('answers to packets sent in one WebSocket message come back one MQTT packet per message', async () => {
  const device = await openDevice();
  device.webSocket.send(connect());
  assert.equal((await device.received(1))[0]?.cmd, 'connack');
  // SUBSCRIBE and the register PUBLISH in one message: the SUBACK, PUBACK and the 202 are written at once.
  const subscribe = mqttPacket.generate({
    cmd: 'subscribe',
    messageId: 1,
    subscriptions: [{ topic: '$dps/registrations/res/#', qos: 1 }],
  });
  const register = mqttPacket.generate(
    publishPacket(registerTopic('r1'), { registrationId: DEMO_DEVICE_ID }, { messageId: 7 }),
  );
  device.webSocket.send(Buffer.concat([subscribe, register]));
  const packets = await device.received(4);
  assert.deepEqual(
    packets.map((packet) => packet.cmd),
    ['connack', 'suback', 'puback', 'publish'],
  );
  const response = packets[3] as Packet & { topic: string };
  assert.match(response.topic, /^\$dps\/registrations\/res\/202\/\?\$rid=r1/);
  device.webSocket.close();
  await device.closed;
});

test('a refused CONNECT over WebSocket gets its CONNACK, then a WebSocket close frame', async () => {
  const device = await openDevice();
  device.webSocket.send(connect(Buffer.alloc(32, 1).toString('base64')));
  const [code] = await device.closed;
  const packets = device.messages.map(parseOne);
  assert.deepEqual(
    packets.map((packet) => [packet.cmd, (packet as { returnCode?: number }).returnCode]),
    [['connack', 5]],
  );
  assert.equal(code, 1005, 'the emulator closes with a close frame (no status), not a dropped connection');
});

test('a device that closes its WebSocket closes its session', async () => {
  const device = await openDevice();
  device.webSocket.send(connect());
  await device.received(1);
  assert.equal(emulator.connectionCount(), 1);
  device.webSocket.close(1000);
  await device.closed;
  while (emulator.connectionCount() !== 0) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(emulator.connectionCount(), 0);
});
