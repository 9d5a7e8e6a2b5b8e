// The server half of the MQTT 3.1.1 codec (the emulator's), checked against mqtt-packet with fast-check
// the way test/mqtt-codec.test.ts checks the device half: what mqtt-packet generates we decode to the
// same fields, what we encode mqtt-packet parses to the same fields (and generates byte for byte), any
// bytes give packets or a ProtocolError, the same however the stream is split. The official device SDK
// (MQTT.js underneath) checks the emulator end to end (test/emulator-sdk.test.ts).
// FUZZ_RUNS=<n> runs every property n times instead of the quick default.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import * as deviceCodec from '../src/mqtt/codec.js';
import {
  type ClientPacket,
  ClientPacketDecoder,
  encodeConnack,
  encodePingresp,
  encodePuback,
  encodePublish,
  encodeSuback,
  encodeUnsuback,
} from '../src/mqtt/server-codec.js';
import { ProtocolError } from '../src/protocol/errors.js';

mqttPacket.writeToStream.cacheNumbers = false;

const numRuns = Number(process.env.FUZZ_RUNS) || 300;
const DEFAULT_MAX = 64 * 1024;

// ---------------------------------------------------------------------------------------------------
// Helpers

/** Any string: ASCII, BMP, astral code points, and lone surrogates (which UTF-8 carries as U+FFFD). */
const anyString = (maxLength = 40): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
    fc.string({ unit: 'binary', maxLength }),
    fc.string({
      unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
      maxLength: 3,
    }),
  );
const nonEmptyString = (maxLength = 40): fc.Arbitrary<string> => anyString(maxLength).filter((s) => s !== '');
/** A topic name: non-empty, no wildcards (MQTT-4.7.3-1, MQTT-3.3.2-2). */
const topicNameArb = nonEmptyString().filter((s) => !s.includes('+') && !s.includes('#'));
const messageIdArb = fc.integer({ min: 1, max: 0xffff });
const chunkSizesArb = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 });

function splitBySizes(bytes: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (let index = 0; offset < bytes.length; index++) {
    const size = sizes[index % sizes.length] ?? 1;
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

function* byteByByte(bytes: Uint8Array): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset++) yield bytes.subarray(offset, offset + 1);
}

interface Outcome {
  packets: ClientPacket[];
  error: ProtocolError | undefined;
}

/** Feeds the chunks, keeping the packets decoded before an error; anything but a ProtocolError fails. */
function decodeChunks(chunks: Iterable<Uint8Array>, maxPacketBytes = DEFAULT_MAX): Outcome {
  const decoder = new ClientPacketDecoder({ maxPacketBytes });
  const packets: ClientPacket[] = [];
  for (const chunk of chunks) {
    try {
      for (const packet of decoder.decode(chunk)) packets.push(packet);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      assert.equal(error.code, 'ERR_PROTOCOL');
      // The decoder's safety net for unexpected exceptions must never be what fired.
      assert.doesNotMatch(error.message, /could not decode an MQTT packet/);
      // A failed decoder stays failed.
      assert.throws(
        () => decoder.push(Uint8Array.of(0xc0, 0x00)),
        (again) => again === error,
      );
      return { packets, error };
    }
    // Never holds more than one packet (and a fixed header of up to 5 bytes, before its length is known).
    assert.ok(decoder.bufferedBytes <= Math.max(maxPacketBytes, 5));
  }
  return { packets, error: undefined };
}

function decodeOne(bytes: Uint8Array, maxPacketBytes?: number): ClientPacket {
  const { packets, error } = decodeChunks([bytes], maxPacketBytes);
  assert.equal(error, undefined);
  assert.equal(packets.length, 1);
  return packets[0] as ClientPacket;
}

function parseWithMqttPacket(bytes: Uint8Array): Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: Packet[] = [];
  parser.on('packet', (packet) => packets.push(packet));
  parser.on('error', (error) => {
    throw error;
  });
  parser.parse(Buffer.from(bytes));
  return packets;
}

/** mqtt-packet's parsed object in our decoder's shape. */
function toClientPacket(packet: Packet): ClientPacket {
  switch (packet.cmd) {
    case 'connect': {
      if (packet.protocolId !== 'MQTT' || packet.protocolVersion !== 4) {
        return {
          type: 'connectUnsupported',
          protocolName: packet.protocolId ?? '',
          protocolLevel: packet.protocolVersion ?? -1,
        };
      }
      const connect: ClientPacket = {
        type: 'connect',
        clientId: packet.clientId,
        keepAliveSeconds: packet.keepalive ?? -1,
        cleanSession: packet.clean ?? false,
      };
      if (packet.will) {
        connect.will = {
          topic: packet.will.topic,
          payload: Buffer.from(packet.will.payload),
          qos: packet.will.qos ?? 0,
          retain: packet.will.retain ?? false,
        };
      }
      if (packet.username !== undefined) connect.username = packet.username;
      if (packet.password !== undefined) connect.password = Buffer.from(packet.password);
      return connect;
    }
    case 'publish': {
      const publish: ClientPacket = {
        type: 'publish',
        topic: packet.topic,
        payload: Buffer.from(packet.payload),
        qos: packet.qos,
        dup: packet.dup,
        retain: packet.retain,
      };
      if (packet.qos > 0) publish.messageId = packet.messageId ?? -1;
      return publish;
    }
    case 'puback':
      return { type: 'puback', messageId: packet.messageId ?? -1 };
    case 'subscribe':
      return {
        type: 'subscribe',
        messageId: packet.messageId ?? -1,
        subscriptions: packet.subscriptions.map(({ topic, qos }) => ({ topic, qos })),
      };
    case 'unsubscribe':
      return { type: 'unsubscribe', messageId: packet.messageId ?? -1, topics: packet.unsubscriptions };
    case 'pingreq':
      return { type: 'pingreq' };
    case 'disconnect':
      return { type: 'disconnect' };
    default:
      throw new Error(`not a client packet: ${packet.cmd}`);
  }
}

const connectArb: fc.Arbitrary<Packet> = fc
  .record({
    clientId: anyString(),
    username: fc.option(anyString(), { nil: undefined }),
    password: fc.option(fc.uint8Array({ maxLength: 200 }), { nil: undefined }),
    keepalive: fc.integer({ min: 0, max: 0xffff }),
    clean: fc.boolean(),
    will: fc.option(
      fc.record({
        topic: topicNameArb,
        payload: fc.uint8Array({ maxLength: 100 }),
        qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
        retain: fc.boolean(),
      }),
      { nil: undefined },
    ),
  })
  // mqtt-packet refuses an empty client id without a clean session, and a password without a username.
  .filter((o) => (o.clientId !== '' || o.clean) && (o.password === undefined || o.username !== undefined))
  .map((o) => ({
    cmd: 'connect' as const,
    protocolId: 'MQTT' as const,
    protocolVersion: 4 as const,
    clientId: o.clientId,
    keepalive: o.keepalive,
    clean: o.clean,
    ...(o.username === undefined ? {} : { username: o.username }),
    ...(o.password === undefined ? {} : { password: Buffer.from(o.password) }),
    ...(o.will === undefined ? {} : { will: { ...o.will, payload: Buffer.from(o.will.payload) } }),
  }));

/** Packets a device may send (after CONNECT), as mqtt-packet objects. */
const clientPacketArb: fc.Arbitrary<Packet> = fc.oneof(
  connectArb,
  fc
    .record({
      topic: topicNameArb,
      payload: fc.uint8Array({ maxLength: 200 }),
      qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
      messageId: messageIdArb,
      dup: fc.boolean(),
      retain: fc.boolean(),
    })
    .map(({ payload, qos, messageId, ...rest }) => ({
      cmd: 'publish' as const,
      ...rest,
      qos,
      payload: Buffer.from(payload),
      ...(qos > 0 ? { messageId } : {}),
    })),
  fc.record({ cmd: fc.constant('puback' as const), messageId: messageIdArb }),
  fc.record({
    cmd: fc.constant('subscribe' as const),
    messageId: messageIdArb,
    subscriptions: fc.array(
      fc.record({ topic: nonEmptyString(), qos: fc.constantFrom(0 as const, 1 as const, 2 as const) }),
      { minLength: 1, maxLength: 5 },
    ),
  }),
  fc.record({
    cmd: fc.constant('unsubscribe' as const),
    messageId: messageIdArb,
    unsubscriptions: fc.array(nonEmptyString(), { minLength: 1, maxLength: 5 }),
  }),
  fc.constant({ cmd: 'pingreq' as const }),
  fc.constant({ cmd: 'disconnect' as const }),
);

const clientStreamArb = fc.array(clientPacketArb, { minLength: 1, maxLength: 6 }).map((packets) => ({
  packets,
  bytes: Buffer.concat(packets.map((packet) => mqttPacket.generate(packet))),
}));

function assertProtocolError(pattern: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_PROTOCOL');
    assert.match(error.message, pattern);
    return true;
  };
}

// ---------------------------------------------------------------------------------------------------
// Decoding

describe('MQTT server codec: decoding matches mqtt-packet', () => {
  it('client packets generated by mqtt-packet decode to the same fields in any chunking', () => {
    fc.assert(
      fc.property(clientStreamArb, chunkSizesArb, ({ packets, bytes }, sizes) => {
        const expected = parseWithMqttPacket(bytes).map(toClientPacket);
        assert.equal(expected.length, packets.length);
        const { packets: decoded, error } = decodeChunks(splitBySizes(bytes, sizes));
        assert.equal(error, undefined);
        assert.deepStrictEqual(decoded, expected);
      }),
      { numRuns },
    );
  });

  it('a stream split at every byte boundary decodes identically', () => {
    fc.assert(
      fc.property(clientStreamArb, ({ bytes }) => {
        const whole = decodeChunks([bytes]);
        assert.equal(whole.error, undefined);
        for (let cut = 0; cut <= bytes.length; cut++) {
          assert.deepStrictEqual(decodeChunks([bytes.subarray(0, cut), bytes.subarray(cut)]), whole);
        }
        assert.deepStrictEqual(decodeChunks(byteByByte(bytes)), whole);
      }),
      { numRuns: Math.max(20, Math.floor(numRuns / 10)) },
    );
  });

  it('a CONNECT keeps the original strings (surrogate-free) and the password bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), fc.uint8Array(), (text, password) => {
        const bytes = mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: `d${text}`,
          username: text,
          password: Buffer.from(password),
          keepalive: 60,
          clean: true,
        });
        assert.deepStrictEqual(decodeOne(bytes), {
          type: 'connect',
          clientId: `d${text}`,
          username: text,
          password: Buffer.from(password),
          keepAliveSeconds: 60,
          cleanSession: true,
        });
      }),
      { numRuns },
    );
  });

  it('MQTT 3.1 and MQTT 5 CONNECTs decode as unsupported, with their name and level', () => {
    const v31 = mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQIsdp',
      protocolVersion: 3,
      clientId: 'd',
      keepalive: 0,
      clean: true,
    });
    assert.deepStrictEqual(decodeOne(v31), {
      type: 'connectUnsupported',
      protocolName: 'MQIsdp',
      protocolLevel: 3,
    });
    const v5 = mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clientId: 'd',
      keepalive: 0,
      clean: true,
      properties: { sessionExpiryInterval: 10 },
    });
    assert.deepStrictEqual(decodeOne(v5), {
      type: 'connectUnsupported',
      protocolName: 'MQTT',
      protocolLevel: 5,
    });
    // Level 4 with MQTT 3.1's name is not MQTT 3.1.1 either.
    const mixed = Buffer.from(v31);
    mixed[10] = 4;
    assert.deepStrictEqual(decodeOne(mixed), {
      type: 'connectUnsupported',
      protocolName: 'MQIsdp',
      protocolLevel: 4,
    });
  });

  it('a QoS 2 PUBLISH is decoded (so that the emulator can refuse it), PUBREC/PUBREL/PUBCOMP are not', () => {
    const publish = mqttPacket.generate({
      cmd: 'publish',
      topic: 't',
      payload: Buffer.from('x'),
      qos: 2,
      messageId: 9,
      dup: false,
      retain: false,
    });
    assert.deepStrictEqual(decodeOne(publish), {
      type: 'publish',
      topic: 't',
      payload: Buffer.from('x'),
      qos: 2,
      messageId: 9,
      dup: false,
      retain: false,
    });
  });

  it('packets before a malformed one are yielded before the error, in one chunk', () => {
    const good = Buffer.concat([
      mqttPacket.generate({ cmd: 'pingreq' }),
      mqttPacket.generate({ cmd: 'puback', messageId: 3 }),
    ]);
    const decoder = new ClientPacketDecoder({ maxPacketBytes: 100 });
    const seen: ClientPacket[] = [];
    assert.throws(
      () => {
        for (const packet of decoder.decode(Buffer.concat([good, Buffer.from([0x20, 0x02, 0, 0])])))
          seen.push(packet);
      },
      assertProtocolError(/CONNACK is a packet only a server may send/),
    );
    assert.deepStrictEqual(seen, [{ type: 'pingreq' }, { type: 'puback', messageId: 3 }]);
    assert.throws(() => decoder.push(good), assertProtocolError(/CONNACK/));
  });

  it('an exception thrown by the consumer is its own, not a decoding failure', () => {
    const decoder = new ClientPacketDecoder({ maxPacketBytes: 100 });
    const ping = mqttPacket.generate({ cmd: 'pingreq' });
    assert.throws(() => {
      for (const _packet of decoder.decode(ping)) throw new Error('consumer');
    }, /^Error: consumer$/);
  });

  it('payloads do not alias the caller’s chunks, even across pushes', () => {
    const bytes = encodePublish({ topic: 't', payload: 'abcdef', qos: 0 });
    const decoder = new ClientPacketDecoder({ maxPacketBytes: 100 });
    const first = Buffer.from(bytes.subarray(0, 6));
    const second = Buffer.from(bytes.subarray(6));
    assert.deepEqual(decoder.push(first), []);
    first.fill(0);
    const [packet] = decoder.push(second);
    second.fill(0);
    assert.equal(packet?.type === 'publish' ? packet.payload.toString() : '', 'abcdef');
  });

  it('a whole packet of exactly maxPacketBytes is accepted, one byte more is not', () => {
    const packet = encodePublish({ topic: 't', payload: Buffer.alloc(95), qos: 0 }); // 2 + 3 + 95 = 100
    assert.equal(packet.length, 100);
    assert.equal(decodeChunks([packet], 100).error, undefined);
    assertProtocolError(/PUBLISH from the device is 100 bytes, more than the 99-byte limit/)(
      decodeChunks([packet], 99).error,
    );
  });

  it('rejects a packet above maxPacketBytes from its fixed header alone, before buffering the body', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 300_000 }), fc.integer({ min: 1, max: 5_000 }), (max, excess) => {
        // A payload of max + excess bytes: the whole packet is larger than max whatever its header.
        const packet = encodePublish({ topic: 't', payload: Buffer.alloc(max + excess), qos: 0 });
        const headerBytes = packet.length - 3 - (max + excess);
        const header = packet.subarray(0, headerBytes);
        const decoder = new ClientPacketDecoder({ maxPacketBytes: max });
        assert.throws(
          () => decoder.push(header),
          assertProtocolError(new RegExp(`is ${packet.length} bytes, more than the ${max}-byte limit`)),
        );
        assert.ok(decoder.bufferedBytes <= 5);
      }),
      { numRuns },
    );
  });

  it('refuses a maxPacketBytes that is not an integer of 2 or more', () => {
    for (const maxPacketBytes of [0, 1, 1.5, Number.NaN]) {
      assert.throws(() => new ClientPacketDecoder({ maxPacketBytes }), assertProtocolError(/maxPacketBytes/));
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Encoding

describe('MQTT server codec: encoding matches mqtt-packet', () => {
  it('CONNACK is byte-identical and parses to the same fields', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.boolean(), (returnCode, present) => {
        const sessionPresent = present && returnCode === 0; // MQTT-3.2.2-4
        const ours = encodeConnack(returnCode, sessionPresent);
        assert.deepEqual(ours, mqttPacket.generate({ cmd: 'connack', returnCode, sessionPresent }));
        const [parsed] = parseWithMqttPacket(ours);
        assert.equal(parsed?.cmd, 'connack');
        if (parsed?.cmd === 'connack') {
          assert.equal(parsed.returnCode, returnCode);
          assert.equal(parsed.sessionPresent, sessionPresent);
        }
      }),
      { numRuns },
    );
  });

  it('SUBACK is byte-identical and parses to the same fields', () => {
    fc.assert(
      fc.property(
        messageIdArb,
        fc.array(fc.constantFrom(0, 1, 2, 0x80), { minLength: 1, maxLength: 8 }),
        (messageId, granted) => {
          const ours = encodeSuback(messageId, granted);
          assert.deepEqual(ours, mqttPacket.generate({ cmd: 'suback', messageId, granted }));
          const [parsed] = parseWithMqttPacket(ours);
          assert.deepEqual(parsed?.cmd === 'suback' ? [parsed.messageId, parsed.granted] : [], [
            messageId,
            granted,
          ]);
        },
      ),
      { numRuns },
    );
  });

  it('UNSUBACK and PINGRESP are byte-identical', () => {
    fc.assert(
      fc.property(messageIdArb, (messageId) => {
        const ours = encodeUnsuback(messageId);
        assert.deepEqual(ours, mqttPacket.generate({ cmd: 'unsuback', messageId, granted: [] }));
        const [parsed] = parseWithMqttPacket(ours);
        assert.equal(parsed?.cmd === 'unsuback' ? parsed.messageId : -1, messageId);
      }),
      { numRuns },
    );
    assert.deepEqual(encodePingresp(), mqttPacket.generate({ cmd: 'pingresp' }));
  });

  it('PUBLISH and PUBACK are the device half’s encoders (byte-identical there), and parse to the same fields', () => {
    assert.equal(encodePublish, deviceCodec.encodePublish);
    assert.equal(encodePuback, deviceCodec.encodePuback);
    fc.assert(
      fc.property(
        topicNameArb,
        anyString(200),
        fc.constantFrom(0 as const, 1 as const),
        messageIdArb,
        (topic, payload, qos, messageId) => {
          const ours = encodePublish({ topic, payload, qos, messageId });
          const [parsed] = parseWithMqttPacket(ours);
          assert.ok(parsed?.cmd === 'publish');
          assert.equal(parsed.topic, Buffer.from(topic).toString());
          assert.deepEqual(Buffer.from(parsed.payload), Buffer.from(payload));
          assert.equal(parsed.qos, qos);
          if (qos === 1) assert.equal(parsed.messageId, messageId);
          // And our own decoder agrees with mqtt-packet on it.
          assert.deepStrictEqual(decodeOne(ours), toClientPacket(parsed));
        },
      ),
      { numRuns },
    );
  });

  const encoderErrors: ReadonlyArray<[string, () => unknown, RegExp]> = [
    ['CONNACK return code 256', () => encodeConnack(256), /return code 256/],
    ['CONNACK return code -1', () => encodeConnack(-1), /return code -1/],
    ['session present with a refusal (MQTT-3.2.2-4)', () => encodeConnack(5, true), /session present/],
    ['SUBACK without return codes', () => encodeSuback(1, []), /at least one return code/],
    ['SUBACK return code 3', () => encodeSuback(1, [3]), /return code 3/],
    ['SUBACK message id 0', () => encodeSuback(0, [0]), /message id 0/],
    ['UNSUBACK message id 65536', () => encodeUnsuback(65_536), /message id 65536/],
  ];
  for (const [name, encode, pattern] of encoderErrors) {
    it(`refuses ${name} with a ProtocolError in phase input`, () => {
      assert.throws(encode, (error: unknown) => {
        assertProtocolError(pattern)(error);
        assert.equal((error as ProtocolError).phase, 'input');
        return true;
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// Malformed input

/** [what is wrong, bytes, message pattern]: each is a ProtocolError however the bytes are chunked. */
const malformedCases: ReadonlyArray<[string, number[], RegExp]> = [
  ['remaining length of 5 bytes', [0x30, 0x80, 0x80, 0x80, 0x80, 0x01], /more than 4 bytes/],
  ['reserved type 0', [0x00, 0x00], /reserved type 0/],
  ['reserved type 15', [0xf0, 0x00], /reserved type 15/],
  ['CONNACK from a device', [0x20, 0x02, 0x00, 0x00], /CONNACK is a packet only a server may send/],
  ['SUBACK from a device', [0x90, 0x03, 0x00, 0x01, 0x00], /SUBACK is a packet only a server may send/],
  ['UNSUBACK from a device', [0xb0, 0x02, 0x00, 0x01], /UNSUBACK is a packet only a server may send/],
  ['PINGRESP from a device', [0xd0, 0x00], /PINGRESP is a packet only a server may send/],
  ['PUBREC (QoS 2)', [0x50, 0x02, 0x00, 0x01], /unsupported MQTT packet.*PUBREC/],
  ['PUBREL (QoS 2)', [0x62, 0x02, 0x00, 0x01], /unsupported MQTT packet.*PUBREL/],
  ['PUBCOMP (QoS 2)', [0x70, 0x02, 0x00, 0x01], /unsupported MQTT packet.*PUBCOMP/],
  ['CONNECT with reserved flags', [0x11, 0x00], /CONNECT with reserved flags 0x1/],
  ['PUBACK with reserved flags', [0x42, 0x02, 0x00, 0x01], /PUBACK with reserved flags 0x2/],
  ['PINGREQ with reserved flags', [0xc1, 0x00], /PINGREQ with reserved flags 0x1/],
  ['DISCONNECT with reserved flags', [0xe8, 0x00], /DISCONNECT with reserved flags 0x8/],
  ['SUBSCRIBE with flags 0', [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x74, 0x00], /SUBSCRIBE with flags 0x0/],
  ['UNSUBSCRIBE with flags 0', [0xa0, 0x05, 0x00, 0x01, 0x00, 0x01, 0x74], /UNSUBSCRIBE with flags 0x0/],
  ['PUBLISH with qos 3', [0x36, 0x05, 0x00, 0x01, 0x74, 0x00, 0x01], /qos 3/],
  ['PUBACK remaining length 3', [0x40, 0x03, 0x00, 0x01, 0x00], /PUBACK remaining length is 3, must be 2/],
  ['PINGREQ with a body', [0xc0, 0x01, 0x00], /PINGREQ remaining length is 1, must be 0/],
  ['DISCONNECT with a body', [0xe0, 0x01, 0x00], /DISCONNECT remaining length is 1, must be 0/],
  ['PUBACK message id 0', [0x40, 0x02, 0x00, 0x00], /PUBACK with message id 0/],
  [
    'CONNECT without a protocol name',
    [0x10, 0x01, 0x00],
    /CONNECT remaining length is 1, must be at least 2/,
  ],
  [
    'CONNECT cut inside its protocol name',
    [0x10, 0x04, 0x00, 0x04, 0x4d, 0x51],
    /CONNECT ends inside its protocol name/,
  ],
  [
    'CONNECT with an unknown protocol name',
    [0x10, 0x07, 0x00, 0x04, 0x48, 0x54, 0x54, 0x50, 0x04],
    /protocol name "HTTP" is not MQTT/,
  ],
  [
    'CONNECT with the reserved connect flag',
    [0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x03, 0x00, 0x00, 0x00, 0x00],
    /reserved flag is set/,
  ],
  [
    'CONNECT with will qos but no will',
    [0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x0a, 0x00, 0x00, 0x00, 0x00],
    /will qos or will retain without a will/,
  ],
  [
    'CONNECT with will retain but no will',
    [0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x22, 0x00, 0x00, 0x00, 0x00],
    /will qos or will retain without a will/,
  ],
  [
    'CONNECT with will qos 3',
    [0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x1e, 0x00, 0x00, 0x00, 0x00],
    /will qos is 3/,
  ],
  [
    'CONNECT with a password but no username',
    [0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x42, 0x00, 0x00, 0x00, 0x00],
    /password without a username/,
  ],
  [
    'CONNECT cut inside its client id',
    [0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00, 0x00, 0x05, 0x61],
    /CONNECT ends inside its client id \(1 of 5 bytes left\)/,
  ],
  [
    'CONNECT with a username flag but no username',
    [0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x82, 0x00, 0x00, 0x00, 0x00],
    /CONNECT ends inside its username/,
  ],
  [
    'CONNECT with bytes after its last field',
    [0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00, 0x61],
    /CONNECT has 1 bytes after its last field/,
  ],
  [
    'CONNECT client id with invalid UTF-8',
    [0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 0xff],
    /client id is not valid UTF-8/,
  ],
  [
    'SUBSCRIBE without a filter (MQTT-3.8.3-3)',
    [0x82, 0x02, 0x00, 0x01],
    /SUBSCRIBE remaining length is 2, must be at least 6/,
  ],
  ['SUBSCRIBE message id 0', [0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 0x74, 0x00], /SUBSCRIBE with message id 0/],
  ['SUBSCRIBE requested qos 3', [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x74, 0x03], /requested qos byte 0x3/],
  [
    'SUBSCRIBE reserved qos bits',
    [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x74, 0x41],
    /requested qos byte 0x41/,
  ],
  [
    'SUBSCRIBE filter without its qos',
    [0x82, 0x06, 0x00, 0x01, 0x00, 0x02, 0x74, 0x74],
    /SUBSCRIBE ends inside its requested qos/,
  ],
  [
    'SUBSCRIBE with an empty filter',
    [0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
    /SUBSCRIBE topic filter is empty/,
  ],
  [
    'UNSUBSCRIBE without a filter (MQTT-3.10.3-2)',
    [0xa2, 0x02, 0x00, 0x01],
    /UNSUBSCRIBE remaining length is 2, must be at least 5/,
  ],
  ['UNSUBSCRIBE message id 0', [0xa2, 0x05, 0x00, 0x00, 0x00, 0x01, 0x74], /UNSUBSCRIBE with message id 0/],
  ['PUBLISH with an empty topic', [0x30, 0x03, 0x00, 0x00, 0x61], /PUBLISH topic is empty/],
  ['PUBLISH with a wildcard topic', [0x30, 0x04, 0x00, 0x01, 0x23, 0x61], /has a wildcard/],
  ['PUBLISH qos 1 message id 0', [0x32, 0x05, 0x00, 0x01, 0x74, 0x00, 0x00], /PUBLISH with message id 0/],
  [
    'PUBLISH shorter than a topic',
    [0x30, 0x02, 0x00, 0x01],
    /PUBLISH remaining length is 2, must be at least 3/,
  ],
  [
    'PUBLISH topic longer than the packet',
    [0x30, 0x05, 0x00, 0x0a, 0x74, 0x74, 0x74],
    /PUBLISH ends inside its topic/,
  ],
  [
    'PUBLISH qos 1 without room for the id',
    [0x32, 0x05, 0x00, 0x02, 0x74, 0x74, 0x00],
    /ends inside its message id/,
  ],
  ['PUBLISH topic with invalid UTF-8', [0x30, 0x05, 0x00, 0x03, 0xff, 0xfe, 0xfd], /not valid UTF-8/],
  ['PUBLISH topic with an encoded surrogate', [0x30, 0x05, 0x00, 0x03, 0xed, 0xa0, 0x80], /not valid UTF-8/],
];

describe('MQTT server codec: malformed input is a ProtocolError', () => {
  for (const [name, bytes, pattern] of malformedCases) {
    it(`rejects ${name}, in one chunk or byte by byte`, () => {
      const input = Uint8Array.from(bytes);
      assert.throws(
        () => new ClientPacketDecoder({ maxPacketBytes: DEFAULT_MAX }).push(input),
        assertProtocolError(pattern),
      );
      const { error } = decodeChunks(byteByByte(input));
      assert.ok(error);
      assertProtocolError(pattern)(error);
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// Fuzzing

/** Valid streams with bytes overwritten, inserted or cut: reaches deeper states than random bytes. */
const mutatedStreamArb = fc
  .tuple(
    clientStreamArb,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'cut')), {
      minLength: 1,
      maxLength: 4,
    }),
  )
  .map(([{ bytes }, edits]) => {
    const mutated = [...bytes];
    for (const [position, value, edit] of edits) {
      const index = position % (mutated.length + 1);
      if (edit === 'set') mutated[index] = value;
      else if (edit === 'insert') mutated.splice(index, 0, value);
      else mutated.length = index;
    }
    return Uint8Array.from(mutated);
  });

/** Bytes drawn mostly from client packet headers and small lengths, so random input often frames. */
const biasedBytesArb = fc
  .array(
    fc.oneof(
      fc.constantFrom(0x10, 0x30, 0x31, 0x32, 0x33, 0x34, 0x3b, 0x40, 0x82, 0xa2, 0xc0, 0xe0), // first bytes
      fc.integer({ min: 0, max: 5 }), // small lengths, ids, flags, qos
      fc.constantFrom(0x4d, 0x51, 0x54, 0x7f, 0x80, 0xff), // 'MQTT', varint edges
      fc.integer({ min: 0, max: 255 }),
    ),
    { maxLength: 200 },
  )
  .map((bytes) => Uint8Array.from(bytes));

/** Byte-by-byte is the reference; any other chunking must give the same packets and the same error. */
function assertChunkingInvariant(bytes: Uint8Array, sizes: readonly number[], maxPacketBytes?: number): void {
  const reference = decodeChunks(byteByByte(bytes), maxPacketBytes);
  const chunked = decodeChunks(splitBySizes(bytes, sizes), maxPacketBytes);
  assert.equal(chunked.error?.message, reference.error?.message);
  assert.deepStrictEqual(chunked.packets, reference.packets);
}

describe('MQTT server codec: fuzzing the decoder', () => {
  for (const [input, bytesArb] of [
    ['arbitrary bytes in arbitrary chunks', fc.oneof(fc.uint8Array({ maxLength: 400 }), biasedBytesArb)],
    ['mutated valid streams', mutatedStreamArb],
  ] as const) {
    it(`${input} give packets or a ProtocolError, the same for every chunking`, () => {
      fc.assert(
        fc.property(
          bytesArb,
          chunkSizesArb,
          fc.option(fc.integer({ min: 2, max: 300 }), { nil: undefined }),
          (bytes, sizes, max) => assertChunkingInvariant(bytes, sizes, max),
        ),
        { numRuns },
      );
    });
  }

  it('whatever mqtt-packet parses from mutated bytes, we decode the same or refuse it', () => {
    // Compared packet by packet up to the first one either side refuses: we are stricter than mqtt-packet
    // (UTF-8, empty topics, trailing bytes, message id 0), never different on a field both accept.
    fc.assert(
      fc.property(mutatedStreamArb, (bytes) => {
        const ours = decodeChunks([bytes]).packets;
        const theirs: ClientPacket[] = [];
        let failed = false;
        const parser = mqttPacket.parser({ protocolVersion: 4 });
        parser.on('packet', (packet) => {
          // A server-only type (a mutated first byte) is one we refuse: it ends the comparison.
          if (
            ['connack', 'suback', 'unsuback', 'pingresp', 'pubrec', 'pubrel', 'pubcomp'].includes(packet.cmd)
          )
            failed = true;
          if (!failed) theirs.push(toClientPacket(packet));
        });
        parser.on('error', () => {
          failed = true;
        });
        parser.parse(Buffer.from(bytes));
        for (let index = 0; index < Math.min(ours.length, theirs.length); index++) {
          const packet = ours[index];
          // mqtt-packet parses MQTT 3.1 and 5 in full, and reads what follows a v5 CONNECT as v5.
          if (packet?.type === 'connectUnsupported') return;
          assert.deepStrictEqual(packet, theirs[index]);
        }
        // We accept no packet mqtt-packet refuses, except a CONNECT of an unknown level, which we decode
        // as unsupported (for CONNACK 1) where mqtt-packet fails.
        if (failed && ours.length > theirs.length) {
          const extra = ours[theirs.length];
          assert.equal(extra?.type, 'connectUnsupported', `we accepted ${JSON.stringify(extra?.type)}`);
        }
      }),
      { numRuns },
    );
  });
});
