// Our WebSocket framing (src/io/websocket-frames.ts) against `ws`, the ecosystem's reference: frames we
// encode are read by ws's own Receiver in server mode, and frames ws's Sender makes are read by ours, cut
// at any byte. Property-tested with fast-check; then the violations a server can commit.
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  CLOSE_PROTOCOL_ERROR,
  CLOSE_UNSUPPORTED_DATA,
  closePayload,
  encodeClientFrame,
  OPCODE_BINARY,
  OPCODE_CLOSE,
  OPCODE_PING,
  ServerFrameReader,
  type ServerFrameSink,
  WebSocketFrameError,
} from '../src/io/websocket-frames.js';

/** ws's framing classes: exported by the package at run time, left out of its type declarations. */
interface WsFraming {
  Receiver: new (options: {
    isServer: boolean;
  }) => EventEmitter & {
    write(bytes: Buffer, callback: () => void): void;
  };
  Sender: {
    frame(
      data: Buffer,
      options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean },
    ): Buffer[];
  };
}
const { Receiver, Sender } = createRequire(import.meta.url)('ws') as WsFraming;

/** Payload sizes around the 7-bit, 16-bit and 64-bit length encodings. */
const payloadArbitrary = fc.oneof(
  fc.uint8Array({ maxLength: 130 }),
  fc.integer({ min: 65_530, max: 65_540 }).map((length) => new Uint8Array(length).map((_, i) => i * 7)),
  fc.uint8Array({ minLength: 120, maxLength: 2000 }),
);

/** What ws's server-side Receiver makes of our bytes. */
function readAsServer(bytes: Buffer): Promise<{ messages: Buffer[]; pongs: Buffer[]; close?: number }> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: true });
    const messages: Buffer[] = [];
    const pongs: Buffer[] = [];
    receiver.on('message', (data: Buffer, isBinary: boolean) => {
      assert.equal(isBinary, true);
      messages.push(Buffer.from(data));
    });
    receiver.on('pong', (data: Buffer) => pongs.push(Buffer.from(data)));
    receiver.on('conclude', (code: number) => resolve({ messages, pongs, close: code }));
    receiver.on('error', reject);
    receiver.write(bytes, () => resolve({ messages, pongs }));
  });
}

/** Server frames as ws's Sender writes them (never masked). */
function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  return Buffer.concat(Sender.frame(payload, { fin, opcode, mask: false, readOnly: false, rsv1: false }));
}

interface Collected {
  data: Buffer[];
  pings: Buffer[];
  closes: Array<{ code: number; reason: string }>;
}

function collector(): { sink: ServerFrameSink; collected: Collected } {
  const collected: Collected = { data: [], pings: [], closes: [] };
  return {
    collected,
    sink: {
      onData: (bytes) => collected.data.push(Buffer.from(bytes)),
      onPing: (payload) => collected.pings.push(payload),
      onPong: () => {},
      onClose: (code, reason) => collected.closes.push({ code, reason }),
    },
  };
}

/** Feeds `bytes` cut at the given points. */
function feed(reader: ServerFrameReader, sink: ServerFrameSink, bytes: Buffer, cuts: number[]): void {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point > from) reader.push(bytes.subarray(from, point), sink);
    from = Math.max(from, point);
  }
}

describe('WebSocket frames against ws', () => {
  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: ws (as the server) reads every binary frame we encode, whole', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(payloadArbitrary, { minLength: 1, maxLength: 5 }), async (payloads) => {
        const bytes = Buffer.concat(payloads.map((payload) => encodeClientFrame(OPCODE_BINARY, payload)));
        const read = await readAsServer(bytes);
        assert.deepEqual(
          read.messages,
          payloads.map((payload) => Buffer.from(payload)),
        );
      }),
      { numRuns: 60 },
    );
  });

  test('every client frame is masked, with a fresh key', () => {
    const payload = Buffer.from('same payload');
    const first = encodeClientFrame(OPCODE_BINARY, payload);
    const second = encodeClientFrame(OPCODE_BINARY, payload);
    assert.equal((first[1] ?? 0) & 0x80, 0x80);
    assert.notDeepEqual(first.subarray(2, 6), second.subarray(2, 6));
    assert.notDeepEqual(first.subarray(6), payload);
  });

  test('ws reads our close frame with its code, and our pong with its payload', async () => {
    const bytes = Buffer.concat([
      encodeClientFrame(0xa, Buffer.from('ping-data')),
      encodeClientFrame(OPCODE_CLOSE, closePayload(1000, 'bye')),
    ]);
    const read = await readAsServer(bytes);
    assert.deepEqual(read.pongs, [Buffer.from('ping-data')]);
    assert.equal(read.close, 1000);
  });

  test('PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: we read what ws sends, fragmented and cut at any byte', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            fragments: fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 4 }),
            pingBefore: fc.option(fc.uint8Array({ maxLength: 125 }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.option(fc.integer({ min: 3000, max: 4999 }), { nil: undefined }),
        (messages, cuts, closeCode) => {
          const frames: Buffer[] = [];
          for (const message of messages) {
            if (message.pingBefore !== undefined) {
              frames.push(serverFrame(OPCODE_PING, Buffer.from(message.pingBefore)));
            }
            message.fragments.forEach((fragment, index) => {
              frames.push(
                serverFrame(
                  index === 0 ? OPCODE_BINARY : 0,
                  Buffer.from(fragment),
                  index === message.fragments.length - 1,
                ),
              );
            });
          }
          if (closeCode !== undefined)
            frames.push(serverFrame(OPCODE_CLOSE, closePayload(closeCode, 'done')));
          const { sink, collected } = collector();
          feed(new ServerFrameReader(), sink, Buffer.concat(frames), cuts);
          const expected = Buffer.concat(
            messages.flatMap((message) => message.fragments.map((f) => Buffer.from(f))),
          );
          assert.deepEqual(Buffer.concat(collected.data), expected);
          assert.deepEqual(
            collected.pings,
            messages.flatMap((message) =>
              message.pingBefore === undefined ? [] : [Buffer.from(message.pingBefore)],
            ),
          );
          assert.deepEqual(
            collected.closes,
            closeCode === undefined ? [] : [{ code: closeCode, reason: 'done' }],
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  test('a 64-bit length frame (over 64 KiB) arrives whole', () => {
    const payload = Buffer.alloc(70_000, 0x5a);
    const { sink, collected } = collector();
    feed(new ServerFrameReader(), sink, serverFrame(OPCODE_BINARY, payload), [1, 5, 9, 10, 40_000]);
    assert.deepEqual(Buffer.concat(collected.data), payload);
  });

  test('nothing is read after the close frame', () => {
    const { sink, collected } = collector();
    const bytes = Buffer.concat([
      serverFrame(OPCODE_CLOSE, closePayload(1000)),
      serverFrame(OPCODE_BINARY, Buffer.from('late')),
    ]);
    new ServerFrameReader().push(bytes, sink);
    assert.deepEqual(collected.closes, [{ code: 1000, reason: '' }]);
    assert.equal(collected.data.length, 0);
  });

  const violations: Array<[string, Buffer, number, RegExp]> = [
    ['a masked server frame', Buffer.from([0x82, 0x81, 1, 2, 3, 4, 5]), CLOSE_PROTOCOL_ERROR, /masked/],
    ['RSV bits without an extension', Buffer.from([0xc2, 0x00]), CLOSE_PROTOCOL_ERROR, /RSV/],
    [
      'a text frame (MQTT is binary only)',
      serverFrame(0x1, Buffer.from('hi')),
      CLOSE_UNSUPPORTED_DATA,
      /text/,
    ],
    [
      'a continuation outside a message',
      serverFrame(0x0, Buffer.from('x')),
      CLOSE_PROTOCOL_ERROR,
      /continuation/,
    ],
    [
      'a new message inside a fragmented one',
      Buffer.concat([
        serverFrame(OPCODE_BINARY, Buffer.from('a'), false),
        serverFrame(OPCODE_BINARY, Buffer.from('b')),
      ]),
      CLOSE_PROTOCOL_ERROR,
      /inside another/,
    ],
    ['a fragmented ping', serverFrame(OPCODE_PING, Buffer.from('p'), false), CLOSE_PROTOCOL_ERROR, /control/],
    ['a reserved opcode', Buffer.from([0x83, 0x00]), CLOSE_PROTOCOL_ERROR, /reserved opcode 3/],
    [
      'close code 1005 on the wire',
      serverFrame(OPCODE_CLOSE, closePayload(1005)),
      CLOSE_PROTOCOL_ERROR,
      /1005/,
    ],
    ['a 1-byte close payload', serverFrame(OPCODE_CLOSE, Buffer.from([3])), CLOSE_PROTOCOL_ERROR, /1-byte/],
    [
      'a close reason that is not UTF-8',
      serverFrame(OPCODE_CLOSE, Buffer.from([0x03, 0xe8, 0xff, 0xfe])),
      CLOSE_PROTOCOL_ERROR,
      /UTF-8/,
    ],
  ];
  for (const [name, bytes, closeCode, message] of violations) {
    test(`refuses ${name} with close code ${closeCode}`, () => {
      const { sink } = collector();
      assert.throws(
        () => new ServerFrameReader().push(bytes, sink),
        (error: unknown) =>
          error instanceof WebSocketFrameError &&
          error.closeCode === closeCode &&
          message.test(error.message),
      );
    });
  }
});
