// Property tests of one session's packet handling, without sockets: whatever bytes a device sends, the
// session answers with well-formed MQTT or closes, and never throws.
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import {
  DEMO_DEVICE_ID,
  DEMO_DEVICE_KEY,
  defaultEmulatorConfig,
} from '../src/emulator/enrollments/config.js';
import { EnrollmentBook } from '../src/emulator/enrollments/enrollment-book.js';
import { FaultPlan } from '../src/emulator/faults.js';
import { silentLogger } from '../src/emulator/log.js';
import { MqttSession } from '../src/emulator/mqtt/mqtt-session.js';
import { Registrar } from '../src/emulator/registrar/registrar.js';
import { RegistrationStore } from '../src/emulator/registrar/registration-store.js';
import { registerTopic } from '../src/protocol/topics.js';
import { publishPacket, sasConnectPacket, subscribePacket } from './helpers/emulator.js';

mqttPacket.writeToStream.cacheNumbers = false;

/** A session over an in-memory stream: `deliver` plays the device, `output` is what the emulator sent. */
async function sessionHarness() {
  const book = new EnrollmentBook(defaultEmulatorConfig());
  const store = await RegistrationStore.open(undefined);
  const registrar = new Registrar({
    book,
    store,
    retryAfterSeconds: 0,
    pollsBeforeAssignment: 0,
    assignmentDelayMs: 0,
  });
  const output: Buffer[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      output.push(chunk);
      callback();
    },
  });
  const session = new MqttSession(
    stream,
    { transport: 'mqtt', remoteAddress: 'fuzz', clientCertificates: () => [] },
    {
      book,
      registrar,
      faults: new FaultPlan(),
      logger: silentLogger,
      maxPacketBytes: 64 * 1024,
      connectTimeoutMs: 10_000,
      retryAfterSeconds: 0,
    },
  );
  return {
    session,
    output,
    deliver(bytes: Buffer) {
      stream.push(bytes);
    },
  };
}

/** Parses everything the emulator wrote; fails on malformed output. */
function parseAll(chunks: Buffer[]): Packet[] {
  const packets: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (packet: Packet) => packets.push(packet));
  parser.on('error', (error: Error) => {
    throw error;
  });
  for (const chunk of chunks) parser.parse(chunk);
  return packets;
}

const connect = mqttPacket.generate(
  sasConnectPacket({ idScope: '0ne00000000', registrationId: DEMO_DEVICE_ID, key: DEMO_DEVICE_KEY }),
);
const subscribe = mqttPacket.generate(subscribePacket());

test('random bytes after a valid CONNECT produce well-formed answers or a close, never an exception', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { maxLength: 8 }),
      async (chunks) => {
        const harness = await sessionHarness();
        harness.deliver(connect);
        harness.deliver(subscribe);
        for (const chunk of chunks) harness.deliver(Buffer.from(chunk));
        // Data events are delivered asynchronously: let them run.
        await new Promise((resolve) => setImmediate(resolve));
        const packets = parseAll(harness.output);
        assert.equal(packets[0]?.cmd, 'connack');
        harness.session.close('test done');
      },
    ),
    { numRuns: 150 },
  );
});

test('well-formed requests split at arbitrary byte boundaries are answered exactly as when sent whole', async () => {
  const request = mqttPacket.generate(
    publishPacket(registerTopic('split'), { registrationId: DEMO_DEVICE_ID }, { qos: 1 }),
  );
  const stream = Buffer.concat([connect, subscribe, request]);
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 10 }),
      async (cuts) => {
        const harness = await sessionHarness();
        const points = [0, ...cuts.sort((a, b) => a - b), stream.length];
        for (let index = 1; index < points.length; index++) {
          harness.deliver(stream.subarray(points[index - 1], points[index]));
        }
        await new Promise((resolve) => setImmediate(resolve));
        const commands = parseAll(harness.output).map((packet) => packet.cmd);
        assert.deepEqual(commands, ['connack', 'suback', 'puback', 'publish']);
        harness.session.close('test done');
      },
    ),
    { numRuns: 100 },
  );
});
