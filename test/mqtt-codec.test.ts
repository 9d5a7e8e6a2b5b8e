// The client's MQTT 3.1.1 codec, checked against mqtt-packet (the reference implementation the emulator
// uses) with fast-check. FUZZ_RUNS=<n> runs every property n times instead of the quick default.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import {
  type ConnectOptions,
  describePacket,
  encodeConnect,
  encodeDisconnect,
  encodePingreq,
  encodePuback,
  encodePublish,
  encodeSubscribe,
  PacketDecoder,
  type ServerPacket,
} from '../src/mqtt/codec.js';
import { ProtocolError } from '../src/protocol/errors.js';

const numRuns = Number(process.env.FUZZ_RUNS) || 300;

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

interface Outcome {
  packets: ServerPacket[];
  error: ProtocolError | undefined;
}

/** Feeds the chunks; any exception other than a ProtocolError fails the test. */
function decodeChunks(chunks: Iterable<Uint8Array>, maxPacketBytes?: number): Outcome {
  const decoder = new PacketDecoder(maxPacketBytes === undefined ? {} : { maxPacketBytes });
  const packets: ServerPacket[] = [];
  for (const chunk of chunks) {
    try {
      packets.push(...decoder.push(chunk));
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      assert.equal(error.code, 'ERR_PROTOCOL');
      // The decoder's safety net for unexpected exceptions must never be what fired.
      assert.doesNotMatch(error.message, /could not decode an MQTT packet/);
      return { packets, error };
    }
    // Never holds more than one packet's header and body.
    assert.ok(decoder.bufferedBytes <= (maxPacketBytes ?? 256 * 1024) + 5);
  }
  return { packets, error: undefined };
}

function* byteByByte(bytes: Uint8Array): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset++) yield bytes.subarray(offset, offset + 1);
}

function decodeOne(bytes: Uint8Array, maxPacketBytes?: number): ServerPacket {
  const { packets, error } = decodeChunks([bytes], maxPacketBytes);
  assert.equal(error, undefined);
  assert.equal(packets.length, 1);
  return packets[0] as ServerPacket;
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
function toServerPacket(packet: Packet): ServerPacket {
  switch (packet.cmd) {
    case 'connack':
      return { type: 'connack', sessionPresent: packet.sessionPresent, returnCode: packet.returnCode ?? -1 };
    case 'suback':
      return { type: 'suback', messageId: packet.messageId ?? -1, granted: packet.granted as number[] };
    case 'publish': {
      const publish: ServerPacket = {
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
    case 'unsuback':
      return { type: 'unsuback', messageId: packet.messageId ?? -1 };
    case 'pingresp':
      return { type: 'pingresp' };
    default:
      throw new Error(`not a server packet: ${packet.cmd}`);
  }
}

/** Packets a server may send, as mqtt-packet objects (mqtt-packet generates them for the decoder tests). */
const serverPacketArb: fc.Arbitrary<Packet> = fc.oneof(
  fc.record({
    cmd: fc.constant('connack' as const),
    sessionPresent: fc.boolean(),
    returnCode: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({
    cmd: fc.constant('suback' as const),
    messageId: messageIdArb,
    granted: fc.array(fc.constantFrom(0, 1, 2, 0x80), { minLength: 1, maxLength: 6 }),
  }),
  fc
    .record({
      topic: anyString(),
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
  // mqtt-packet's types require `granted` on UNSUBACK; a 3.1.1 UNSUBACK carries none and generate() ignores it.
  fc.record({
    cmd: fc.constant('unsuback' as const),
    messageId: messageIdArb,
    granted: fc.constant<number[]>([]),
  }),
  fc.constant({ cmd: 'pingresp' as const }),
);

const serverStreamArb = fc.array(serverPacketArb, { minLength: 1, maxLength: 6 }).map((packets) => ({
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
// Encoding

describe('MQTT codec: encoding matches mqtt-packet', () => {
  it('CONNECT is byte-identical for any client id, username, password, keep-alive and clean flag', () => {
    const connectArb = fc
      .record({
        clientId: anyString(),
        username: fc.option(anyString(), { nil: undefined }),
        password: fc.option(anyString(), { nil: undefined }),
        keepAliveSeconds: fc.integer({ min: 0, max: 0xffff }),
        cleanSession: fc.boolean(),
      })
      // Both refuse an empty client id without a clean session, and a password without a username.
      .filter(
        (o) =>
          (o.clientId !== '' || o.cleanSession) && (o.password === undefined || o.username !== undefined),
      )
      .map((o): ConnectOptions => {
        const options: ConnectOptions = {
          clientId: o.clientId,
          keepAliveSeconds: o.keepAliveSeconds,
          cleanSession: o.cleanSession,
        };
        if (o.username !== undefined) options.username = o.username;
        if (o.password !== undefined) options.password = o.password;
        return options;
      });
    fc.assert(
      fc.property(connectArb, (options) => {
        const ours = encodeConnect(options);
        const theirs = mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: options.clientId,
          keepalive: options.keepAliveSeconds,
          clean: options.cleanSession,
          ...(options.username === undefined ? {} : { username: options.username }),
          ...(options.password === undefined ? {} : { password: Buffer.from(options.password, 'utf8') }),
        });
        assert.deepEqual(ours, theirs);
        const [parsed] = parseWithMqttPacket(ours);
        assert.equal(parsed?.cmd, 'connect');
        if (parsed?.cmd === 'connect') {
          assert.equal(parsed.clientId, Buffer.from(options.clientId).toString());
          assert.equal(parsed.keepalive, options.keepAliveSeconds);
        }
      }),
      { numRuns },
    );
  });

  it('SUBSCRIBE is byte-identical for any message id and topic filters', () => {
    const subscriptionArb = fc.record({
      topic: nonEmptyString(),
      qos: fc.constantFrom(0 as const, 1 as const),
    });
    fc.assert(
      fc.property(
        messageIdArb,
        fc.array(subscriptionArb, { minLength: 1, maxLength: 5 }),
        (messageId, subs) => {
          const theirs = mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: subs });
          assert.deepEqual(encodeSubscribe(messageId, subs), theirs);
        },
      ),
      { numRuns },
    );
  });

  it('PUBLISH is byte-identical for any topic, payload, qos 0/1, dup (qos 1) and retain', () => {
    const publishArb = fc.record({
      topic: nonEmptyString(),
      payload: fc.oneof(fc.uint8Array({ maxLength: 300 }), anyString(100)),
      qos: fc.constantFrom(0 as const, 1 as const),
      messageId: messageIdArb,
      dup: fc.boolean(),
      retain: fc.boolean(),
    });
    fc.assert(
      fc.property(publishArb, ({ topic, payload, qos, messageId, dup, retain }) => {
        // MQTT-3.3.1-2: DUP only on qos 1 (mqtt-packet would set it on qos 0 too; we refuse, see below).
        const options = { topic, payload, qos, messageId, dup: dup && qos === 1, retain };
        const theirs = mqttPacket.generate({
          cmd: 'publish',
          topic,
          // mqtt-packet's generate copies Buffers with .copy(), which a plain Uint8Array lacks.
          payload: typeof payload === 'string' ? payload : Buffer.from(payload),
          qos,
          messageId,
          dup: options.dup,
          retain,
        });
        assert.deepEqual(encodePublish(options), theirs);
      }),
      { numRuns },
    );
  });

  it('PUBLISH remaining length is a 1-4 byte varint at every size boundary', () => {
    // topic 'a' (3 bytes) + message id (2) + payload = remaining length.
    for (const remainingLength of [5, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
      const payload = Buffer.alloc(remainingLength - 5, 0x61);
      const ours = encodePublish({ topic: 'a', payload, qos: 1, messageId: 7 });
      assert.deepEqual(
        ours,
        mqttPacket.generate({
          cmd: 'publish',
          topic: 'a',
          payload,
          qos: 1,
          messageId: 7,
          dup: false,
          retain: false,
        }),
      );
      assert.deepEqual(decodeOne(ours, 4 * 1024 * 1024), {
        type: 'publish',
        topic: 'a',
        payload,
        qos: 1,
        messageId: 7,
        dup: false,
        retain: false,
      });
    }
  });

  it('PUBACK, PINGREQ and DISCONNECT are byte-identical', () => {
    fc.assert(
      fc.property(messageIdArb, (messageId) => {
        assert.deepEqual(encodePuback(messageId), mqttPacket.generate({ cmd: 'puback', messageId }));
      }),
      { numRuns },
    );
    assert.deepEqual(encodePingreq(), mqttPacket.generate({ cmd: 'pingreq' }));
    assert.deepEqual(encodeDisconnect(), mqttPacket.generate({ cmd: 'disconnect' }));
  });

  it('string lengths are counted in UTF-8 bytes, not UTF-16 units', () => {
    const packet = encodePublish({ topic: '€/😀', payload: 'é', qos: 0 });
    // '€' 3 bytes + '/' 1 + '😀' 4 = 8; payload 'é' is 2 bytes.
    assert.deepEqual([...packet.subarray(0, 4)], [0x30, 2 + 8 + 2, 0x00, 8]);
    assert.equal(packet.length, 2 + 2 + 8 + 2);
  });

  it('a client id, username, password or topic of exactly 65535 UTF-8 bytes is accepted', () => {
    const longest = 'x'.repeat(0xffff);
    const connect = encodeConnect({ clientId: longest, keepAliveSeconds: 0, cleanSession: true });
    assert.equal(connect.readUInt16BE(connect.length - 0xffff - 2), 0xffff);
    assert.doesNotThrow(() =>
      encodeConnect({
        clientId: 'd',
        username: longest,
        password: longest,
        keepAliveSeconds: 0,
        cleanSession: true,
      }),
    );
    assert.doesNotThrow(() => encodePublish({ topic: longest, payload: '', qos: 0 }));
  });

  const tooLong = '€'.repeat(21_846); // 21,846 UTF-16 units, 65,538 UTF-8 bytes
  const encoderErrors: ReadonlyArray<[string, () => unknown, RegExp]> = [
    [
      'client id over 65535 UTF-8 bytes',
      () => encodeConnect({ clientId: tooLong, keepAliveSeconds: 0, cleanSession: true }),
      /client id is 65538 bytes/,
    ],
    [
      'username over 65535 UTF-8 bytes',
      () => encodeConnect({ clientId: 'd', username: tooLong, keepAliveSeconds: 0, cleanSession: true }),
      /username is 65538 bytes/,
    ],
    [
      'password over 65535 UTF-8 bytes',
      () =>
        encodeConnect({
          clientId: 'd',
          username: 'u',
          password: tooLong,
          keepAliveSeconds: 0,
          cleanSession: true,
        }),
      /password is 65538 bytes/,
    ],
    [
      'password without username (MQTT-3.1.2-22)',
      () => encodeConnect({ clientId: 'd', password: 'p', keepAliveSeconds: 0, cleanSession: true }),
      /without a username/,
    ],
    [
      'empty client id without clean session (MQTT-3.1.3-7)',
      () => encodeConnect({ clientId: '', keepAliveSeconds: 0, cleanSession: false }),
      /client id is empty/,
    ],
    [
      'keep-alive above 65535',
      () => encodeConnect({ clientId: 'd', keepAliveSeconds: 65_536, cleanSession: true }),
      /keep-alive 65536/,
    ],
    [
      'fractional keep-alive',
      () => encodeConnect({ clientId: 'd', keepAliveSeconds: 1.5, cleanSession: true }),
      /keep-alive 1.5/,
    ],
    [
      'topic over 65535 UTF-8 bytes',
      () => encodePublish({ topic: tooLong, payload: '', qos: 0 }),
      /topic is 65538 bytes/,
    ],
    [
      'empty publish topic (MQTT-4.7.3-1)',
      () => encodePublish({ topic: '', payload: '', qos: 0 }),
      /topic is empty/,
    ],
    [
      'qos 1 publish without message id',
      () => encodePublish({ topic: 't', payload: '', qos: 1 }),
      /message id undefined/,
    ],
    [
      'message id 0 (MQTT-2.3.1-1)',
      () => encodePublish({ topic: 't', payload: '', qos: 1, messageId: 0 }),
      /message id 0/,
    ],
    ['message id 65536', () => encodePuback(65_536), /message id 65536/],
    ['fractional message id', () => encodeSubscribe(1.5, [{ topic: 't', qos: 0 }]), /message id 1.5/],
    [
      'dup on qos 0 (MQTT-3.3.1-2)',
      () => encodePublish({ topic: 't', payload: '', qos: 0, dup: true }),
      /cannot set dup/,
    ],
    [
      'publish qos 2',
      () => encodePublish({ topic: 't', payload: '', qos: 2 as 1, messageId: 1 }),
      /qos 2 is invalid/,
    ],
    [
      'subscribe without subscriptions (MQTT-3.8.3-3)',
      () => encodeSubscribe(1, []),
      /at least one subscription/,
    ],
    ['empty topic filter', () => encodeSubscribe(1, [{ topic: '', qos: 0 }]), /topic filter is empty/],
    ['subscription qos 2', () => encodeSubscribe(1, [{ topic: 't', qos: 2 as 1 }]), /qos 2 is invalid/],
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
// Decoding

describe('MQTT codec: decoding matches mqtt-packet', () => {
  it('server packets generated by mqtt-packet decode to the same fields in any chunking', () => {
    fc.assert(
      fc.property(serverStreamArb, chunkSizesArb, ({ packets, bytes }, sizes) => {
        const expected = parseWithMqttPacket(bytes).map(toServerPacket);
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
      fc.property(serverStreamArb, ({ bytes }) => {
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

  it('several packets in one chunk all come out of one push, in order', () => {
    const topic = '$dps/registrations/res/202/?$rid=1';
    const bytes = Buffer.concat([
      mqttPacket.generate({ cmd: 'connack', sessionPresent: false, returnCode: 0 }),
      mqttPacket.generate({ cmd: 'suback', messageId: 1, granted: [1, 0x80] }),
      mqttPacket.generate({
        cmd: 'publish',
        topic,
        payload: Buffer.from('{}'),
        qos: 1,
        messageId: 2,
        dup: false,
        retain: false,
      }),
      mqttPacket.generate({ cmd: 'pingresp' }),
    ]);
    assert.deepStrictEqual(new PacketDecoder().push(bytes), [
      { type: 'connack', sessionPresent: false, returnCode: 0 },
      { type: 'suback', messageId: 1, granted: [1, 0x80] },
      { type: 'publish', topic, payload: Buffer.from('{}'), qos: 1, messageId: 2, dup: false, retain: false },
      { type: 'pingresp' },
    ]);
  });

  it('accepts plain Uint8Array chunks that are views into a larger buffer', () => {
    const packet = mqttPacket.generate({ cmd: 'puback', messageId: 258 });
    const backing = new Uint8Array(packet.length + 6);
    backing.set(packet, 3);
    assert.deepStrictEqual(new PacketDecoder().push(backing.subarray(3, 3 + packet.length)), [
      { type: 'puback', messageId: 258 },
    ]);
  });

  it('payloads do not alias the caller’s chunks, even across pushes', () => {
    const bytes = encodePublish({ topic: 't', payload: 'abcdef', qos: 0 }); // the same layout a server sends
    const decoder = new PacketDecoder();
    const first = Buffer.from(bytes.subarray(0, 6));
    const second = Buffer.from(bytes.subarray(6));
    assert.deepEqual(decoder.push(first), []);
    first.fill(0);
    const [packet] = decoder.push(second);
    second.fill(0);
    assert.equal(packet?.type === 'publish' ? packet.payload.toString() : '', 'abcdef');
  });

  it('a declared length of exactly maxPacketBytes is accepted', () => {
    const packet = encodePublish({ topic: 't', payload: Buffer.alloc(97), qos: 0 }); // remaining length 100
    assert.equal(decodeChunks([packet], 100).error, undefined);
  });
});

// ---------------------------------------------------------------------------------------------------
// Malformed input

/** [what is wrong, bytes, message pattern]: each is a ProtocolError however the bytes are chunked. */
const malformedCases: ReadonlyArray<[string, number[], RegExp]> = [
  ['remaining length of 5 bytes', [0x30, 0x80, 0x80, 0x80, 0x80, 0x01], /more than 4 bytes/],
  ['reserved type 0', [0x00, 0x00], /reserved type 0/],
  ['reserved type 15', [0xf0, 0x00], /reserved type 15/],
  ['CONNECT from the server', [0x10, 0x00], /CONNECT is a packet only a client may send/],
  ['SUBSCRIBE from the server', [0x82, 0x00], /SUBSCRIBE is a packet only a client may send/],
  ['UNSUBSCRIBE from the server', [0xa2, 0x00], /UNSUBSCRIBE is a packet only a client may send/],
  ['PINGREQ from the server', [0xc0, 0x00], /PINGREQ is a packet only a client may send/],
  ['DISCONNECT from the server', [0xe0, 0x00], /DISCONNECT is a packet only a client may send/],
  ['PUBREC (QoS 2)', [0x50, 0x02, 0x00, 0x01], /unsupported MQTT packet.*PUBREC/],
  ['PUBREL (QoS 2)', [0x62, 0x02, 0x00, 0x01], /unsupported MQTT packet.*PUBREL/],
  ['PUBCOMP (QoS 2)', [0x70, 0x02, 0x00, 0x01], /unsupported MQTT packet.*PUBCOMP/],
  ['CONNACK with reserved flags', [0x21, 0x02, 0x00, 0x00], /CONNACK with reserved flags 0x1/],
  ['PUBACK with reserved flags', [0x42, 0x02, 0x00, 0x01], /PUBACK with reserved flags 0x2/],
  ['SUBACK with reserved flags', [0x92, 0x03, 0x00, 0x01, 0x00], /SUBACK with reserved flags 0x2/],
  ['UNSUBACK with reserved flags', [0xb8, 0x02, 0x00, 0x01], /UNSUBACK with reserved flags 0x8/],
  ['PINGRESP with reserved flags', [0xd1, 0x00], /PINGRESP with reserved flags 0x1/],
  ['PUBLISH with qos 3', [0x36, 0x05, 0x00, 0x01, 0x74, 0x00, 0x01], /qos 3/],
  ['CONNACK remaining length 3', [0x20, 0x03, 0x00, 0x00, 0x00], /CONNACK remaining length is 3, must be 2/],
  ['CONNACK remaining length 1', [0x20, 0x01, 0x00], /CONNACK remaining length is 1, must be 2/],
  ['CONNACK acknowledge flags with reserved bits', [0x20, 0x02, 0x02, 0x00], /CONNACK flags 0x2/],
  ['PUBACK remaining length 3', [0x40, 0x03, 0x00, 0x01, 0x00], /PUBACK remaining length is 3/],
  ['UNSUBACK remaining length 1', [0xb0, 0x01, 0x00], /UNSUBACK remaining length is 1/],
  ['PINGRESP with a body', [0xd0, 0x01, 0x00], /PINGRESP remaining length is 1, must be 0/],
  [
    'SUBACK without return codes',
    [0x90, 0x02, 0x00, 0x01],
    /SUBACK remaining length is 2, must be at least 3/,
  ],
  ['SUBACK return code 3', [0x90, 0x03, 0x00, 0x01, 0x03], /SUBACK return code 0x3/],
  ['PUBACK message id 0', [0x40, 0x02, 0x00, 0x00], /PUBACK with message id 0/],
  ['SUBACK message id 0', [0x90, 0x03, 0x00, 0x00, 0x01], /SUBACK with message id 0/],
  ['PUBLISH qos 1 message id 0', [0x32, 0x05, 0x00, 0x01, 0x74, 0x00, 0x00], /PUBLISH with message id 0/],
  [
    'PUBLISH shorter than a topic length',
    [0x30, 0x01, 0x00],
    /PUBLISH remaining length is 1, must be at least 2/,
  ],
  ['PUBLISH qos 1 shorter than topic length and id', [0x32, 0x03, 0x00, 0x00, 0x00], /must be at least 4/],
  [
    'PUBLISH topic longer than the packet',
    [0x30, 0x05, 0x00, 0x0a, 0x74, 0x74, 0x74],
    /variable header needs 12 bytes/,
  ],
  [
    'PUBLISH qos 1 without room for the id',
    [0x32, 0x05, 0x00, 0x02, 0x74, 0x74, 0x00],
    /variable header needs 6 bytes/,
  ],
  ['PUBLISH topic with invalid UTF-8', [0x30, 0x05, 0x00, 0x03, 0xff, 0xfe, 0xfd], /not valid UTF-8/],
  ['PUBLISH topic with an overlong encoding', [0x30, 0x04, 0x00, 0x02, 0xc0, 0xaf], /not valid UTF-8/],
  ['PUBLISH topic with an encoded surrogate', [0x30, 0x05, 0x00, 0x03, 0xed, 0xa0, 0x80], /not valid UTF-8/],
  ['PUBLISH topic with a truncated sequence', [0x30, 0x04, 0x00, 0x02, 0xe2, 0x82], /not valid UTF-8/],
];

describe('MQTT codec: malformed input is a ProtocolError', () => {
  for (const [name, bytes, pattern] of malformedCases) {
    it(`rejects ${name}, in one chunk or byte by byte`, () => {
      const input = Uint8Array.from(bytes);
      assert.throws(() => new PacketDecoder().push(input), assertProtocolError(pattern));
      const { error } = decodeChunks(byteByByte(input));
      assert.ok(error);
      assertProtocolError(pattern)(error);
    });
  }

  it('a malformed packet after good ones still throws, and the decoder stays failed', () => {
    const decoder = new PacketDecoder();
    const good = mqttPacket.generate({ cmd: 'puback', messageId: 1 });
    assert.throws(() => decoder.push(Buffer.concat([good, Buffer.from([0x10, 0x00])])), /CONNECT/);
    assert.throws(() => decoder.push(good), assertProtocolError(/CONNECT/));
  });

  it('rejects a declared length above maxPacketBytes from the header alone, before buffering the body', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 300_000 }), fc.integer({ min: 1, max: 5_000 }), (max, excess) => {
        const declared = max + excess;
        const header = encodePublish({ topic: 't', payload: Buffer.alloc(declared - 3), qos: 0 }).subarray(
          0,
          declared < 128 ? 2 : declared < 16_384 ? 3 : 4,
        );
        const decoder = new PacketDecoder({ maxPacketBytes: max });
        assert.throws(
          () => decoder.push(header),
          assertProtocolError(new RegExp(`declares ${declared} bytes, more than the ${max}`)),
        );
        assert.ok(decoder.bufferedBytes <= 5);
      }),
      { numRuns },
    );
  });

  it('rejects the largest declared length with the default limit of 256 KiB', () => {
    const decoder = new PacketDecoder();
    assert.deepEqual(decoder.push(Uint8Array.from([0x30, 0xff, 0xff, 0xff])), []);
    assert.throws(
      () => decoder.push(Uint8Array.from([0x7f])),
      assertProtocolError(/declares 268435455 bytes, more than the 262144/),
    );
  });

  it('refuses a maxPacketBytes that is not an integer of 2 or more', () => {
    for (const maxPacketBytes of [0, 1, 1.5, Number.NaN]) {
      assert.throws(() => new PacketDecoder({ maxPacketBytes }), assertProtocolError(/maxPacketBytes/));
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Fuzzing

/** Valid streams with bytes overwritten, inserted or cut: reaches deeper states than random bytes. */
const mutatedStreamArb = fc
  .tuple(
    serverStreamArb,
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

/** Bytes drawn mostly from server packet headers and small lengths, so random input often frames. */
const biasedBytesArb = fc
  .array(
    fc.oneof(
      fc.constantFrom(0x20, 0x30, 0x31, 0x32, 0x33, 0x34, 0x3b, 0x40, 0x90, 0xb0, 0xd0), // first bytes
      fc.integer({ min: 0, max: 5 }), // small lengths, ids, flags, return codes
      fc.constantFrom(0x7f, 0x80, 0xff), // varint edges
      fc.integer({ min: 0, max: 255 }),
    ),
    { maxLength: 200 },
  )
  .map((bytes) => Uint8Array.from(bytes));

/** Byte-by-byte is the reference; any other chunking must agree with it. */
function assertChunkingInvariant(bytes: Uint8Array, sizes: readonly number[], maxPacketBytes?: number): void {
  const reference = decodeChunks(byteByByte(bytes), maxPacketBytes);
  const chunked = decodeChunks(splitBySizes(bytes, sizes), maxPacketBytes);
  assert.equal(chunked.error?.message, reference.error?.message);
  if (reference.error === undefined) {
    assert.deepStrictEqual(chunked.packets, reference.packets);
  } else {
    // Packets completed earlier in the failing chunk are dropped with the error: a prefix survives.
    assert.deepStrictEqual(chunked.packets, reference.packets.slice(0, chunked.packets.length));
  }
}

describe('MQTT codec: fuzzing the decoder', () => {
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

  it('a failed decoder throws a ProtocolError for every later push', () => {
    fc.assert(
      fc.property(mutatedStreamArb, fc.uint8Array({ maxLength: 20 }), (bytes, more) => {
        const decoder = new PacketDecoder();
        let failed = false;
        try {
          decoder.push(bytes);
        } catch (error) {
          assert.ok(error instanceof ProtocolError);
          failed = true;
        }
        if (failed) assert.throws(() => decoder.push(more), ProtocolError);
      }),
      { numRuns },
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// describePacket

describe('MQTT codec: describePacket', () => {
  const cases: ReadonlyArray<[string, Parameters<typeof describePacket>[0], string]> = [
    [
      'a server PUBLISH',
      {
        type: 'publish',
        topic: '$dps/registrations/res/200/?$rid=3',
        payload: Buffer.alloc(123),
        qos: 1,
        messageId: 3,
        dup: false,
        retain: false,
      },
      'PUBLISH qos=1 id=3 topic=$dps/registrations/res/200/?$rid=3 (123 bytes)',
    ],
    [
      'a client PUBLISH with a string payload',
      { type: 'publish', topic: 't', payload: 'é', qos: 0, retain: true },
      'PUBLISH qos=0 retain topic=t (2 bytes)',
    ],
    [
      'a CONNACK',
      { type: 'connack', sessionPresent: false, returnCode: 5 },
      'CONNACK sessionPresent=0 returnCode=5 (not authorized)',
    ],
    ['a SUBACK', { type: 'suback', messageId: 1, granted: [1, 0x80] }, 'SUBACK id=1 granted=1,0x80(failure)'],
    ['a PUBACK', { type: 'puback', messageId: 9 }, 'PUBACK id=9'],
    ['a PINGRESP', { type: 'pingresp' }, 'PINGRESP'],
    [
      'a SUBSCRIBE',
      { type: 'subscribe', messageId: 1, subscriptions: [{ topic: '$dps/registrations/res/#', qos: 1 }] },
      'SUBSCRIBE id=1 $dps/registrations/res/#@qos1',
    ],
    [
      'a CONNECT, with its password redacted',
      {
        type: 'connect',
        clientId: 'dev-1',
        username: 'scope/registrations/dev-1/api-version=2019-03-31',
        password: 'SharedAccessSignature sr=x&sig=SECRET',
        keepAliveSeconds: 60,
        cleanSession: true,
      },
      'CONNECT clientId=dev-1 username=scope/registrations/dev-1/api-version=2019-03-31 password=<redacted> keepAliveSeconds=60 cleanSession=true',
    ],
    [
      'a topic with a line break, quoted',
      { type: 'publish', topic: 'a\nb', payload: Buffer.alloc(0), qos: 0 },
      'PUBLISH qos=0 topic="a\\nb" (0 bytes)',
    ],
  ];
  for (const [name, packet, expected] of cases) {
    it(`describes ${name} on one line`, () => {
      assert.equal(describePacket(packet), expected);
    });
  }

  it('never prints a password, whatever its value', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 4 }), (password) => {
        const line = describePacket({ type: 'connect', clientId: 'd', username: 'u', password });
        assert.equal(line, 'CONNECT clientId=d username=u password=<redacted>');
      }),
      { numRuns },
    );
  });

  it('describes any decoded packet on one line without throwing', () => {
    fc.assert(
      fc.property(serverStreamArb, ({ bytes }) => {
        for (const packet of decodeChunks([bytes]).packets)
          assert.doesNotMatch(describePacket(packet), /[\r\n]/);
      }),
      { numRuns },
    );
  });
});
