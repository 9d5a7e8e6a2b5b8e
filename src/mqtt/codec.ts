// The client's MQTT 3.1.1 codec for the few packet types DPS uses, in place of mqtt-packet on the device
// side: no number cache, no streams, no top-level work, one allocation per packet. One file because each
// extra ES module costs about 0.5 ms to load unbundled. Checked against mqtt-packet in
// test/mqtt-codec.test.ts. The server half (the emulator's) is src/mqtt/server-codec.ts, which a device
// never loads; it reuses the few encoding helpers exported here.
import { isUtf8 } from 'node:buffer';
import { ProtocolError } from '../protocol/errors.js';

// ===================================================================================================
// Encoding: the packets a device sends
export interface ConnectOptions {
  clientId: string;
  username?: string;
  password?: string;
  keepAliveSeconds: number;
  cleanSession: boolean;
}

export interface PublishOptions {
  topic: string;
  payload: Uint8Array | string;
  qos: 0 | 1;
  /** Required for qos 1 (1..65535); not written for qos 0. */
  messageId?: number;
  /** Only for a qos 1 redelivery: MQTT-3.3.1-2 forbids DUP on qos 0. */
  dup?: boolean;
  retain?: boolean;
}

export interface Subscription {
  topic: string;
  qos: 0 | 1;
}

const MAX_STRING_BYTES = 0xffff;
const MAX_REMAINING_LENGTH = 268_435_455;

// Fixed-header first bytes (type << 4 | flags), MQTT 3.1.1 section 2.2.
const CONNECT_BYTE = 0x10;
const PUBLISH_BYTE = 0x30;
const PUBACK_BYTE = 0x40;
const SUBSCRIBE_BYTE = 0x82; // SUBSCRIBE's reserved flags are 0b0010 (MQTT-3.8.1-1)
const PINGREQ_BYTE = 0xc0;
const DISCONNECT_BYTE = 0xe0;

// Connect flags, MQTT 3.1.1 section 3.1.2.3.
const USERNAME_FLAG = 0x80;
const PASSWORD_FLAG = 0x40;
const CLEAN_SESSION_FLAG = 0x02;

function inputError(message: string): ProtocolError {
  // The caller (the transport) built a packet MQTT cannot carry: a bug or bad input, before any I/O.
  return new ProtocolError(message, { phase: 'input' });
}

/** The UTF-8 length of an MQTT string field, checked against the 2-byte length prefix. */
export function stringBytes(field: string, value: string): number {
  if (typeof value !== 'string') throw inputError(`MQTT ${field} must be a string, got ${typeof value}`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_STRING_BYTES) {
    throw inputError(
      `MQTT ${field} is ${bytes} bytes long in UTF-8: at most ${MAX_STRING_BYTES} bytes fit in an MQTT string`,
    );
  }
  return bytes;
}

export function checkMessageId(messageId: unknown): number {
  if (typeof messageId !== 'number' || !Number.isInteger(messageId) || messageId < 1 || messageId > 0xffff) {
    // MQTT-2.3.1-1: packet identifiers are non-zero 16-bit integers.
    throw inputError(`MQTT message id ${String(messageId)} is invalid: use an integer from 1 to 65535`);
  }
  return messageId;
}

function varintBytes(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : 4;
}

/** Allocates the whole packet and writes the fixed header; returns the buffer and the body's offset. */
export function allocatePacket(firstByte: number, remainingLength: number): [Buffer, number] {
  if (remainingLength > MAX_REMAINING_LENGTH) {
    throw inputError(
      `MQTT packet body is ${remainingLength} bytes: at most ${MAX_REMAINING_LENGTH} fit in one packet`,
    );
  }
  const buffer = Buffer.allocUnsafe(1 + varintBytes(remainingLength) + remainingLength);
  buffer[0] = firstByte;
  let offset = 1;
  let value = remainingLength;
  do {
    let digit = value % 0x80;
    value = Math.floor(value / 0x80);
    if (value > 0) digit |= 0x80;
    buffer[offset++] = digit;
  } while (value > 0);
  return [buffer, offset];
}

export function writeString(buffer: Buffer, offset: number, value: string, bytes: number): number {
  buffer.writeUInt16BE(bytes, offset);
  buffer.write(value, offset + 2, bytes, 'utf8');
  return offset + 2 + bytes;
}

/** CONNECT with protocol name 'MQTT' and level 4 (3.1.1); no will. */
export function encodeConnect(options: ConnectOptions): Buffer {
  const { clientId, username, password, keepAliveSeconds, cleanSession } = options;
  const clientIdBytes = stringBytes('client id', clientId);
  if (clientIdBytes === 0 && !cleanSession) {
    // MQTT-3.1.3-7: a server-assigned client id only comes with a clean session.
    throw inputError(
      'MQTT client id is empty but cleanSession is false: give a client id or a clean session',
    );
  }
  if (!Number.isInteger(keepAliveSeconds) || keepAliveSeconds < 0 || keepAliveSeconds > 0xffff) {
    throw inputError(
      `MQTT keep-alive ${String(keepAliveSeconds)} is invalid: use whole seconds from 0 to 65535`,
    );
  }
  const usernameBytes = username === undefined ? -1 : stringBytes('username', username);
  const passwordBytes = password === undefined ? -1 : stringBytes('password', password);
  if (passwordBytes >= 0 && usernameBytes < 0) {
    // MQTT-3.1.2-22: the password flag requires the username flag.
    throw inputError('MQTT password given without a username: MQTT 3.1.1 sends a password only with one');
  }

  // 'MQTT' name (6) + level (1) + flags (1) + keep-alive (2) = 10
  let remainingLength = 10 + 2 + clientIdBytes;
  if (usernameBytes >= 0) remainingLength += 2 + usernameBytes;
  if (passwordBytes >= 0) remainingLength += 2 + passwordBytes;

  const [buffer, start] = allocatePacket(CONNECT_BYTE, remainingLength);
  let offset = start;
  buffer[offset++] = 0x00;
  buffer[offset++] = 0x04;
  buffer[offset++] = 0x4d; // M
  buffer[offset++] = 0x51; // Q
  buffer[offset++] = 0x54; // T
  buffer[offset++] = 0x54; // T
  buffer[offset++] = 0x04; // protocol level 4 = MQTT 3.1.1
  buffer[offset++] =
    (usernameBytes >= 0 ? USERNAME_FLAG : 0) |
    (passwordBytes >= 0 ? PASSWORD_FLAG : 0) |
    (cleanSession ? CLEAN_SESSION_FLAG : 0);
  buffer.writeUInt16BE(keepAliveSeconds, offset);
  offset = writeString(buffer, offset + 2, clientId, clientIdBytes);
  if (username !== undefined) offset = writeString(buffer, offset, username, usernameBytes);
  if (password !== undefined) writeString(buffer, offset, password, passwordBytes);
  return buffer;
}

export function encodeSubscribe(messageId: number, subscriptions: ReadonlyArray<Subscription>): Buffer {
  checkMessageId(messageId);
  if (subscriptions.length === 0) {
    // MQTT-3.8.3-3: a SUBSCRIBE carries at least one topic filter.
    throw inputError('MQTT SUBSCRIBE needs at least one subscription');
  }
  const topicBytes: number[] = [];
  let remainingLength = 2;
  for (const { topic, qos } of subscriptions) {
    const bytes = stringBytes('topic filter', topic);
    if (bytes === 0)
      throw inputError('MQTT topic filter is empty: use at least one character (MQTT-4.7.3-1)');
    if (qos !== 0 && qos !== 1)
      throw inputError(`MQTT subscription qos ${String(qos)} is invalid: use 0 or 1`);
    topicBytes.push(bytes);
    remainingLength += 2 + bytes + 1;
  }
  const [buffer, start] = allocatePacket(SUBSCRIBE_BYTE, remainingLength);
  buffer.writeUInt16BE(messageId, start);
  let offset = start + 2;
  subscriptions.forEach(({ topic, qos }, index) => {
    offset = writeString(buffer, offset, topic, topicBytes[index] ?? 0);
    buffer[offset++] = qos;
  });
  return buffer;
}

export function encodePublish(options: PublishOptions): Buffer {
  const { topic, payload, qos, messageId, dup = false, retain = false } = options;
  const topicBytes = stringBytes('topic', topic);
  if (topicBytes === 0) throw inputError('MQTT topic is empty: use at least one character (MQTT-4.7.3-1)');
  if (qos !== 0 && qos !== 1) throw inputError(`MQTT publish qos ${String(qos)} is invalid: use 0 or 1`);
  if (qos === 1) checkMessageId(messageId);
  if (qos === 0 && dup) throw inputError('MQTT publish with qos 0 cannot set dup (MQTT-3.3.1-2)');
  const payloadBytes = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.byteLength;

  const remainingLength = 2 + topicBytes + (qos === 1 ? 2 : 0) + payloadBytes;
  const firstByte = PUBLISH_BYTE | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0);
  const [buffer, start] = allocatePacket(firstByte, remainingLength);
  let offset = writeString(buffer, start, topic, topicBytes);
  if (qos === 1) {
    buffer.writeUInt16BE(messageId ?? 0, offset);
    offset += 2;
  }
  if (typeof payload === 'string') buffer.write(payload, offset, payloadBytes, 'utf8');
  else buffer.set(payload, offset);
  return buffer;
}

export function encodePuback(messageId: number): Buffer {
  checkMessageId(messageId);
  return Buffer.from([PUBACK_BYTE, 0x02, messageId >> 8, messageId & 0xff]);
}

export function encodePingreq(): Buffer {
  return Buffer.from([PINGREQ_BYTE, 0x00]);
}

export function encodeDisconnect(): Buffer {
  return Buffer.from([DISCONNECT_BYTE, 0x00]);
}

// ===================================================================================================
// Decoding: the packets a server sends. Strict on framing (a broken frame leaves the stream unreadable),
// bounded in memory, and it throws nothing but ProtocolError.
export type ServerPacket =
  | { type: 'connack'; sessionPresent: boolean; returnCode: number }
  /** `granted` holds one code per subscription: the granted qos, or 0x80 for a failure. */
  | { type: 'suback'; messageId: number; granted: number[] }
  | {
      type: 'publish';
      topic: string;
      payload: Buffer;
      qos: 0 | 1 | 2;
      messageId?: number;
      dup: boolean;
      retain: boolean;
    }
  | { type: 'puback'; messageId: number }
  | { type: 'unsuback'; messageId: number }
  | { type: 'pingresp' };

export interface PacketDecoderOptions {
  /** The largest remaining length accepted; a larger declared length fails before it is buffered. */
  maxPacketBytes?: number;
}

const DEFAULT_MAX_PACKET_BYTES = 256 * 1024;

// MQTT 3.1.1 control packet types (section 2.2.1); the names appear in error messages.
const CONNACK = 2;
const PUBLISH = 3;
const PUBACK = 4;
const SUBACK = 9;
const UNSUBACK = 11;
const PINGRESP = 13;

export function typeName(type: number): string {
  switch (type) {
    case 1:
      return 'CONNECT';
    case 2:
      return 'CONNACK';
    case 3:
      return 'PUBLISH';
    case 4:
      return 'PUBACK';
    case 5:
      return 'PUBREC';
    case 6:
      return 'PUBREL';
    case 7:
      return 'PUBCOMP';
    case 8:
      return 'SUBSCRIBE';
    case 9:
      return 'SUBACK';
    case 10:
      return 'UNSUBSCRIBE';
    case 11:
      return 'UNSUBACK';
    case 12:
      return 'PINGREQ';
    case 13:
      return 'PINGRESP';
    case 14:
      return 'DISCONNECT';
    default:
      return `reserved type ${type}`;
  }
}

function malformed(message: string): ProtocolError {
  return new ProtocolError(`malformed MQTT packet from the server: ${message}`);
}

/** Checks the first byte of a packet: a type a server may send to a client, with the flags the spec sets. */
function checkFixedHeader(firstByte: number): void {
  const type = firstByte >> 4;
  const flags = firstByte & 0x0f;
  switch (type) {
    case PUBLISH:
      if ((flags & 0x06) === 0x06) throw malformed('PUBLISH with qos 3 (MQTT-3.3.1-4)');
      return;
    case CONNACK:
    case PUBACK:
    case SUBACK:
    case UNSUBACK:
    case PINGRESP:
      // MQTT-2.2.2-1: reserved flag bits must be 0 for these types.
      if (flags !== 0) {
        throw malformed(`${typeName(type)} with reserved flags 0x${flags.toString(16)} (MQTT-2.2.2-1)`);
      }
      return;
    case 5:
    case 6:
    case 7:
      // QoS 2 flow: DPS never uses it and the client never subscribes with qos 2.
      throw new ProtocolError(
        `unsupported MQTT packet from the server: ${typeName(type)} (QoS 2 is not used by DPS)`,
      );
    case 0:
    case 15:
      throw malformed(`${typeName(type)} is reserved (MQTT 3.1.1 section 2.2.1)`);
    default:
      throw malformed(`${typeName(type)} is a packet only a client may send`);
  }
}

/** Checks a declared remaining length against what the type allows, before its body is buffered. */
function checkRemainingLength(firstByte: number, length: number): void {
  const type = firstByte >> 4;
  const name = typeName(type);
  switch (type) {
    case CONNACK:
    case PUBACK:
    case UNSUBACK:
      if (length !== 2) throw malformed(`${name} remaining length is ${length}, must be 2`);
      return;
    case PINGRESP:
      if (length !== 0) throw malformed(`${name} remaining length is ${length}, must be 0`);
      return;
    case SUBACK:
      // Message id and at least one return code (MQTT-3.9.3-1).
      if (length < 3) throw malformed(`${name} remaining length is ${length}, must be at least 3`);
      return;
    default: {
      // PUBLISH: topic length prefix, and the message id when qos > 0.
      const minimum = (firstByte & 0x06) === 0 ? 2 : 4;
      if (length < minimum)
        throw malformed(`${name} remaining length is ${length}, must be at least ${minimum}`);
    }
  }
}

function readMessageId(body: Buffer, offset: number, name: string): number {
  const messageId = body.readUInt16BE(offset);
  if (messageId === 0) throw malformed(`${name} with message id 0 (MQTT-2.3.1-1)`);
  return messageId;
}

/** Decodes a complete body whose length has already been checked by checkRemainingLength. */
function decodeBody(firstByte: number, body: Buffer): ServerPacket {
  switch (firstByte >> 4) {
    case CONNACK: {
      const acknowledgeFlags = body[0] ?? 0;
      if ((acknowledgeFlags & 0xfe) !== 0) {
        throw malformed(`CONNACK flags 0x${acknowledgeFlags.toString(16)} set reserved bits (MQTT-3.2.2-1)`);
      }
      return { type: 'connack', sessionPresent: acknowledgeFlags === 1, returnCode: body[1] ?? 0 };
    }
    case PUBACK:
      return { type: 'puback', messageId: readMessageId(body, 0, 'PUBACK') };
    case UNSUBACK:
      return { type: 'unsuback', messageId: readMessageId(body, 0, 'UNSUBACK') };
    case PINGRESP:
      return { type: 'pingresp' };
    case SUBACK: {
      const messageId = readMessageId(body, 0, 'SUBACK');
      const granted: number[] = [];
      for (let offset = 2; offset < body.length; offset++) {
        const code = body[offset] ?? 0;
        if (code > 2 && code !== 0x80) {
          throw malformed(`SUBACK return code 0x${code.toString(16)} is not 0, 1, 2 or 0x80 (MQTT-3.9.3-2)`);
        }
        granted.push(code);
      }
      return { type: 'suback', messageId, granted };
    }
    default: {
      const qos = ((firstByte >> 1) & 0x03) as 0 | 1 | 2;
      const topicLength = body.readUInt16BE(0);
      const topicEnd = 2 + topicLength;
      const headerEnd = topicEnd + (qos === 0 ? 0 : 2);
      if (headerEnd > body.length) {
        throw malformed(
          `PUBLISH variable header needs ${headerEnd} bytes but the remaining length is ${body.length}`,
        );
      }
      const topicBytes = body.subarray(2, topicEnd);
      // MQTT-1.5.3-1: ill-formed UTF-8 in a string is a protocol violation.
      if (!isUtf8(topicBytes)) throw malformed('PUBLISH topic is not valid UTF-8 (MQTT-1.5.3-1)');
      const packet: ServerPacket = {
        type: 'publish',
        topic: topicBytes.toString('utf8'),
        payload: body.subarray(headerEnd),
        qos,
        dup: (firstByte & 0x08) !== 0,
        retain: (firstByte & 0x01) !== 0,
      };
      if (qos !== 0) packet.messageId = readMessageId(body, topicEnd, 'PUBLISH');
      return packet;
    }
  }
}

/**
 * Splits a byte stream into packets. push() returns the complete packets decoded so far.
 *
 * Any malformed input throws a ProtocolError; the stream cannot be resynchronised after that, so every
 * later push() throws the same error (and packets completed earlier in the failing chunk are dropped
 * with the connection). At most maxPacketBytes + 5 bytes are ever held.
 */
export class PacketDecoder {
  readonly #maxPacketBytes: number;
  #failure: ProtocolError | undefined;
  /** The current packet's first byte, or -1 between packets. */
  #firstByte = -1;
  #remainingLength = 0;
  #lengthBytes = 0;
  #lengthKnown = false;
  /** The body in progress, allocated once its (checked) length is known and its first byte arrives. */
  #body: Buffer | undefined;
  #bodyBytes = 0;

  constructor(options: PacketDecoderOptions = {}) {
    const maxPacketBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    if (!Number.isInteger(maxPacketBytes) || maxPacketBytes < 2) {
      throw new ProtocolError(
        `maxPacketBytes ${String(maxPacketBytes)} is invalid: use an integer of 2 or more`,
        {
          phase: 'input',
        },
      );
    }
    this.#maxPacketBytes = maxPacketBytes;
  }

  /** Bytes held for the packet in progress (header included): for diagnostics and tests. */
  get bufferedBytes(): number {
    return this.#firstByte < 0 ? 0 : 1 + this.#lengthBytes + this.#bodyBytes;
  }

  push(chunk: Uint8Array): ServerPacket[] {
    if (this.#failure) throw this.#failure;
    try {
      return this.#decode(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (error) {
      this.#failure =
        error instanceof ProtocolError
          ? error
          : new ProtocolError(`could not decode an MQTT packet: ${String(error)}`, { cause: error });
      this.#body = undefined;
      throw this.#failure;
    }
  }

  #decode(chunk: Buffer): ServerPacket[] {
    const packets: ServerPacket[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#firstByte < 0) {
        const firstByte = chunk[offset++] ?? 0;
        checkFixedHeader(firstByte);
        this.#firstByte = firstByte;
        this.#remainingLength = 0;
        this.#lengthBytes = 0;
        this.#lengthKnown = false;
        continue;
      }
      if (!this.#lengthKnown) {
        const digit = chunk[offset++] ?? 0;
        this.#remainingLength += (digit & 0x7f) * 0x80 ** this.#lengthBytes;
        this.#lengthBytes++;
        if ((digit & 0x80) !== 0) {
          if (this.#lengthBytes === 4) throw malformed('remaining length takes more than 4 bytes');
          continue;
        }
        this.#lengthKnown = true;
        if (this.#remainingLength > this.#maxPacketBytes) {
          throw new ProtocolError(
            `MQTT ${typeName(this.#firstByte >> 4)} from the server declares ${this.#remainingLength} bytes, ` +
              `more than the ${this.#maxPacketBytes} this client accepts`,
          );
        }
        checkRemainingLength(this.#firstByte, this.#remainingLength);
        if (this.#remainingLength === 0) packets.push(this.#complete(Buffer.alloc(0)));
        continue;
      }
      // Copied, not sliced: packets and partial bodies never alias the caller's chunks.
      this.#body ??= Buffer.allocUnsafe(this.#remainingLength);
      const take = Math.min(this.#remainingLength - this.#bodyBytes, chunk.length - offset);
      chunk.copy(this.#body, this.#bodyBytes, offset, offset + take);
      this.#bodyBytes += take;
      offset += take;
      if (this.#bodyBytes === this.#remainingLength) {
        const body = this.#body;
        this.#body = undefined;
        this.#bodyBytes = 0;
        packets.push(this.#complete(body));
      }
    }
    return packets;
  }

  #complete(body: Buffer): ServerPacket {
    const packet = decodeBody(this.#firstByte, body);
    this.#firstByte = -1;
    return packet;
  }
}

// ===================================================================================================
// Tracing: one-line descriptions. Payloads are shown as byte counts and passwords as '<redacted>', so a
// trace can be pasted into an issue; the logger's redact() still runs over the line.
const REDACTED = '<redacted>';
const MAX_STRING_CHARS = 256;
/** Field names whose values are secrets wherever they appear (CONNECT's password above all). */
const SECRET_FIELD = /pass(?:word|phrase)|secret|token|signature|sig$|key$/i;

const CONNACK_RETURN_CODES: Readonly<Record<number, string>> = {
  0: 'accepted',
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

/** Strings print bare when that is unambiguous, JSON-quoted otherwise, so a line stays one line. */
function formatString(value: string): string {
  const shown = value.length > MAX_STRING_CHARS ? `${value.slice(0, MAX_STRING_CHARS)}…` : value;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  return shown === '' || /[\s"'\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(shown)
    ? JSON.stringify(shown)
    : shown;
}

function byteCount(value: unknown): number | undefined {
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  if (value instanceof Uint8Array) return value.byteLength;
  return undefined;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return formatString(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value === null || value === undefined) return String(value);
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  if (Array.isArray(value)) return `[${value.map((item) => formatValue(item)).join(',')}]`;
  return '{…}';
}

function formatFields(fields: Record<string, unknown>, skip: ReadonlySet<string>): string[] {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (key === 'type' || skip.has(key) || value === undefined) continue;
    const name = key === 'messageId' ? 'id' : key;
    parts.push(`${name}=${SECRET_FIELD.test(key) ? REDACTED : formatValue(value)}`);
  }
  return parts;
}

function describePublish(fields: Record<string, unknown>): string[] {
  const parts = [`qos=${formatValue(fields.qos ?? 0)}`];
  if (fields.messageId !== undefined) parts.push(`id=${formatValue(fields.messageId)}`);
  if (fields.dup === true) parts.push('dup');
  if (fields.retain === true) parts.push('retain');
  parts.push(`topic=${formatValue(fields.topic)}`);
  const bytes = byteCount(fields.payload);
  parts.push(bytes === undefined ? `payload=${formatValue(fields.payload)}` : `(${bytes} bytes)`);
  return parts;
}

function describeSubscriptions(subscriptions: unknown): string {
  if (!Array.isArray(subscriptions)) return formatValue(subscriptions);
  return subscriptions
    .map((subscription: unknown) => {
      if (typeof subscription !== 'object' || subscription === null) return formatValue(subscription);
      const { topic, qos } = subscription as { topic?: unknown; qos?: unknown };
      return `${formatValue(topic)}@qos${formatValue(qos)}`;
    })
    .join(',');
}

function describeFields(type: string, fields: Record<string, unknown>): string[] {
  switch (type) {
    case 'publish':
      return describePublish(fields);
    case 'connack': {
      const code = fields.returnCode;
      const meaning = typeof code === 'number' ? CONNACK_RETURN_CODES[code] : undefined;
      return [
        `sessionPresent=${fields.sessionPresent === true ? 1 : 0}`,
        `returnCode=${formatValue(code)}${meaning === undefined ? '' : ` (${meaning})`}`,
      ];
    }
    case 'suback': {
      const granted = Array.isArray(fields.granted)
        ? fields.granted
            .map((code: unknown) => (code === 0x80 ? '0x80(failure)' : formatValue(code)))
            .join(',')
        : formatValue(fields.granted);
      return [`id=${formatValue(fields.messageId)}`, `granted=${granted}`];
    }
    case 'subscribe':
      return [
        `id=${formatValue(fields.messageId)}`,
        describeSubscriptions(fields.subscriptions),
        ...formatFields(fields, new Set(['messageId', 'subscriptions'])),
      ];
    default:
      return formatFields(fields, new Set());
  }
}

/**
 * A one-line human description of a packet for traces, e.g.
 * `PUBLISH qos=1 id=3 topic=$dps/registrations/res/200/?$rid=1 (123 bytes)`. Never prints a password
 * or payload bytes, and never throws.
 */
export function describePacket(packet: ServerPacket | { type: string; [k: string]: unknown }): string {
  const type = typeof packet?.type === 'string' ? packet.type : 'unknown';
  try {
    const fields: Record<string, unknown> = { ...packet };
    return [formatString(type.toUpperCase()), ...describeFields(type, fields)].join(' ');
  } catch {
    return `${formatString(type.toUpperCase())} (not describable)`;
  }
}
