// The server half of the MQTT 3.1.1 codec, for the emulator: decodes what a device sends (CONNECT,
// SUBSCRIBE, UNSUBSCRIBE, PUBLISH at QoS 0/1 (QoS 2 is decoded so that it can be refused), PUBACK,
// PINGREQ, DISCONNECT) and encodes what a server answers (CONNACK, SUBACK, UNSUBACK, PUBLISH, PUBACK,
// PINGRESP). A module of its own so that a device never loads it; src/mqtt/codec.ts is the device half.
// Checked against mqtt-packet in test/mqtt-server-codec.test.ts, and end to end by the official Azure
// IoT device SDK (MQTT.js underneath) against the emulator (test/emulator-sdk.test.ts).
import { isUtf8 } from 'node:buffer';
import { ProtocolError } from '../protocol/errors.js';
import { allocatePacket, checkMessageId, typeName } from './codec.js';

export { encodePuback, encodePublish, type PublishOptions } from './codec.js';

// ===================================================================================================
// Encoding: the packets a server sends
const CONNACK_BYTE = 0x20;
const SUBACK_BYTE = 0x90;
const UNSUBACK_BYTE = 0xb0;
const PINGRESP_BYTE = 0xd0;

function inputError(message: string): ProtocolError {
  return new ProtocolError(message, { phase: 'input' });
}

/** CONNACK: `sessionPresent` only with return code 0 (MQTT-3.2.2-4). */
export function encodeConnack(returnCode: number, sessionPresent = false): Buffer {
  if (!Number.isInteger(returnCode) || returnCode < 0 || returnCode > 0xff) {
    throw inputError(
      `MQTT CONNACK return code ${String(returnCode)} is invalid: use an integer from 0 to 255`,
    );
  }
  if (sessionPresent && returnCode !== 0) {
    throw inputError('MQTT CONNACK with a non-zero return code cannot set session present (MQTT-3.2.2-4)');
  }
  return Buffer.from([CONNACK_BYTE, 0x02, sessionPresent ? 1 : 0, returnCode]);
}

/** SUBACK: one code per subscription, the granted qos (0, 1, 2) or 0x80 for a failure (MQTT-3.9.3-2). */
export function encodeSuback(messageId: number, granted: ReadonlyArray<number>): Buffer {
  checkMessageId(messageId);
  if (granted.length === 0) throw inputError('MQTT SUBACK needs at least one return code');
  for (const code of granted) {
    if (code !== 0 && code !== 1 && code !== 2 && code !== 0x80) {
      throw inputError(`MQTT SUBACK return code ${String(code)} is invalid: use 0, 1, 2 or 0x80`);
    }
  }
  const [buffer, start] = allocatePacket(SUBACK_BYTE, 2 + granted.length);
  buffer.writeUInt16BE(messageId, start);
  buffer.set(granted, start + 2);
  return buffer;
}

export function encodeUnsuback(messageId: number): Buffer {
  checkMessageId(messageId);
  return Buffer.from([UNSUBACK_BYTE, 0x02, messageId >> 8, messageId & 0xff]);
}

export function encodePingresp(): Buffer {
  return Buffer.from([PINGRESP_BYTE, 0x00]);
}

// ===================================================================================================
// Decoding: the packets a device sends. Strict on framing and on the spec's MUSTs, bounded in memory
// (a packet above the limit is refused from its fixed header), and it throws nothing but ProtocolError.
export interface Will {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
}

export type ClientPacket =
  | {
      type: 'connect';
      clientId: string;
      username?: string;
      /** Binary data in MQTT 3.1.1; DPS carries a SAS token in it. */
      password?: Buffer;
      keepAliveSeconds: number;
      cleanSession: boolean;
      will?: Will;
    }
  /**
   * A CONNECT for another protocol level (MQTT 3.1 'MQIsdp' level 3, MQTT 5, ...): only its name and
   * level are read, so that the server can answer CONNACK 1 as MQTT-3.1.2-2 requires.
   */
  | { type: 'connectUnsupported'; protocolName: string; protocolLevel: number }
  | {
      type: 'publish';
      topic: string;
      payload: Buffer;
      /** 2 is decoded so that a server can refuse it; nothing else about QoS 2 is supported. */
      qos: 0 | 1 | 2;
      messageId?: number;
      dup: boolean;
      retain: boolean;
    }
  | { type: 'puback'; messageId: number }
  | { type: 'subscribe'; messageId: number; subscriptions: Array<{ topic: string; qos: 0 | 1 | 2 }> }
  | { type: 'unsubscribe'; messageId: number; topics: string[] }
  | { type: 'pingreq' }
  | { type: 'disconnect' };

export interface ClientPacketDecoderOptions {
  /**
   * The largest whole packet accepted, fixed header included; a packet declaring more fails from its
   * fixed header, before its body is buffered.
   */
  maxPacketBytes: number;
}

// MQTT 3.1.1 control packet types (section 2.2.1).
const CONNECT = 1;
const PUBLISH = 3;
const PUBACK = 4;
const SUBSCRIBE = 8;
const UNSUBSCRIBE = 10;
const PINGREQ = 12;
const DISCONNECT = 14;

// Connect flags, MQTT 3.1.1 section 3.1.2.3.
const USERNAME_FLAG = 0x80;
const PASSWORD_FLAG = 0x40;
const WILL_RETAIN_FLAG = 0x20;
const WILL_QOS_MASK = 0x18;
const WILL_FLAG = 0x04;
const CLEAN_SESSION_FLAG = 0x02;
const RESERVED_CONNECT_FLAG = 0x01;

/** The body of PINGREQ and DISCONNECT: nothing is read from it, so one serves every packet. */
const EMPTY_BODY = Buffer.alloc(0);

function malformed(message: string): ProtocolError {
  return new ProtocolError(`malformed MQTT packet from the device: ${message}`);
}

/** Checks the first byte of a packet: a type a client may send, with the flags the spec sets. */
function checkFixedHeader(firstByte: number): void {
  const type = firstByte >> 4;
  const flags = firstByte & 0x0f;
  switch (type) {
    case PUBLISH:
      if ((flags & 0x06) === 0x06) throw malformed('PUBLISH with qos 3 (MQTT-3.3.1-4)');
      return;
    case SUBSCRIBE:
    case UNSUBSCRIBE:
      // MQTT-3.8.1-1, MQTT-3.10.1-1: these two carry the reserved flags 0b0010.
      if (flags !== 0x02) {
        throw malformed(`${typeName(type)} with flags 0x${flags.toString(16)}, must be 0x2 (MQTT-2.2.2-2)`);
      }
      return;
    case CONNECT:
    case PUBACK:
    case PINGREQ:
    case DISCONNECT:
      if (flags !== 0) {
        throw malformed(`${typeName(type)} with reserved flags 0x${flags.toString(16)} (MQTT-2.2.2-2)`);
      }
      return;
    case 5:
    case 6:
    case 7:
      throw new ProtocolError(
        `unsupported MQTT packet from the device: ${typeName(type)} (QoS 2 is not used by DPS)`,
      );
    case 0:
    case 15:
      throw malformed(`${typeName(type)} is reserved (MQTT 3.1.1 section 2.2.1)`);
    default:
      throw malformed(`${typeName(type)} is a packet only a server may send`);
  }
}

/** Checks a declared remaining length against what the type allows, before its body is buffered. */
function checkRemainingLength(firstByte: number, length: number): void {
  const type = firstByte >> 4;
  const name = typeName(type);
  let minimum: number;
  switch (type) {
    case PUBACK:
      if (length !== 2) throw malformed(`${name} remaining length is ${length}, must be 2`);
      return;
    case PINGREQ:
    case DISCONNECT:
      if (length !== 0) throw malformed(`${name} remaining length is ${length}, must be 0`);
      return;
    case CONNECT:
      minimum = 2; // the protocol name's length: the rest is checked field by field
      break;
    case SUBSCRIBE:
      minimum = 6; // message id, then at least one filter of one character and its qos (MQTT-3.8.3-3)
      break;
    case UNSUBSCRIBE:
      minimum = 5; // message id, then at least one filter of one character (MQTT-3.10.3-2)
      break;
    default:
      // PUBLISH: the topic's length prefix and one character, and the message id when qos > 0.
      minimum = (firstByte & 0x06) === 0 ? 3 : 5;
  }
  if (length < minimum) throw malformed(`${name} remaining length is ${length}, must be at least ${minimum}`);
}

/** Reads the fields of one complete body, failing with the packet's name and the field it ran out in. */
class BodyReader {
  offset = 0;
  constructor(
    readonly body: Buffer,
    readonly name: string,
  ) {}

  get remaining(): number {
    return this.body.length - this.offset;
  }

  #need(bytes: number, field: string): void {
    if (bytes > this.remaining) {
      throw malformed(`${this.name} ends inside its ${field} (${this.remaining} of ${bytes} bytes left)`);
    }
  }

  byte(field: string): number {
    this.#need(1, field);
    return this.body[this.offset++] ?? 0;
  }

  uint16(field: string): number {
    this.#need(2, field);
    const value = this.body.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  messageId(): number {
    const messageId = this.uint16('message id');
    if (messageId === 0) throw malformed(`${this.name} with message id 0 (MQTT-2.3.1-1)`);
    return messageId;
  }

  /** A 2-byte length, then that many bytes, copied out of the body. */
  binary(field: string): Buffer {
    const length = this.uint16(field);
    this.#need(length, field);
    const value = Buffer.from(this.body.subarray(this.offset, this.offset + length));
    this.offset += length;
    return value;
  }

  string(field: string): string {
    const length = this.uint16(field);
    this.#need(length, field);
    const bytes = this.body.subarray(this.offset, this.offset + length);
    this.offset += length;
    // MQTT-1.5.3-1: ill-formed UTF-8 in a string is a protocol violation.
    if (!isUtf8(bytes)) throw malformed(`${this.name} ${field} is not valid UTF-8 (MQTT-1.5.3-1)`);
    return bytes.toString('utf8');
  }

  /** A topic name or filter: at least one character (MQTT-4.7.3-1). */
  topic(field: string): string {
    const topic = this.string(field);
    if (topic === '') throw malformed(`${this.name} ${field} is empty (MQTT-4.7.3-1)`);
    return topic;
  }

  end(): void {
    if (this.remaining !== 0) {
      throw malformed(`${this.name} has ${this.remaining} bytes after its last field`);
    }
  }
}

function decodeConnect(body: Buffer): ClientPacket {
  const reader = new BodyReader(body, 'CONNECT');
  const protocolName = reader.string('protocol name');
  if (protocolName !== 'MQTT' && protocolName !== 'MQIsdp') {
    // MQTT-3.1.2-1: an unknown protocol name may be disconnected; MQTT 3.1's is answered below.
    throw malformed(`CONNECT protocol name ${JSON.stringify(protocolName.slice(0, 40))} is not MQTT`);
  }
  const protocolLevel = reader.byte('protocol level');
  if (protocolName !== 'MQTT' || protocolLevel !== 4) {
    return { type: 'connectUnsupported', protocolName, protocolLevel };
  }
  const flags = reader.byte('connect flags');
  if ((flags & RESERVED_CONNECT_FLAG) !== 0) throw malformed('CONNECT reserved flag is set (MQTT-3.1.2-3)');
  const willQos = (flags & WILL_QOS_MASK) >> 3;
  const willRetain = (flags & WILL_RETAIN_FLAG) !== 0;
  const hasWill = (flags & WILL_FLAG) !== 0;
  if (hasWill) {
    if (willQos === 3) throw malformed('CONNECT will qos is 3 (MQTT-3.1.2-14)');
  } else if (willQos !== 0 || willRetain) {
    throw malformed('CONNECT sets a will qos or will retain without a will (MQTT-3.1.2-13, MQTT-3.1.2-15)');
  }
  const hasUsername = (flags & USERNAME_FLAG) !== 0;
  const hasPassword = (flags & PASSWORD_FLAG) !== 0;
  if (hasPassword && !hasUsername)
    throw malformed('CONNECT has a password without a username (MQTT-3.1.2-22)');
  const keepAliveSeconds = reader.uint16('keep-alive');
  const clientId = reader.string('client id');
  const packet: ClientPacket = {
    type: 'connect',
    clientId,
    keepAliveSeconds,
    cleanSession: (flags & CLEAN_SESSION_FLAG) !== 0,
  };
  if (hasWill) {
    const topic = reader.topic('will topic');
    const payload = reader.binary('will message');
    packet.will = { topic, payload, qos: willQos as 0 | 1 | 2, retain: willRetain };
  }
  if (hasUsername) packet.username = reader.string('username');
  if (hasPassword) packet.password = reader.binary('password');
  reader.end();
  return packet;
}

function decodeSubscribe(body: Buffer): ClientPacket {
  const reader = new BodyReader(body, 'SUBSCRIBE');
  const messageId = reader.messageId();
  const subscriptions: Array<{ topic: string; qos: 0 | 1 | 2 }> = [];
  while (reader.remaining > 0) {
    const topic = reader.topic('topic filter');
    const requested = reader.byte('requested qos');
    // MQTT-3.8.3-4: the upper six bits are reserved and the qos is 0, 1 or 2.
    if (requested > 2) {
      throw malformed(
        `SUBSCRIBE requested qos byte 0x${requested.toString(16)} is not 0, 1 or 2 (MQTT-3.8.3-4)`,
      );
    }
    subscriptions.push({ topic, qos: requested as 0 | 1 | 2 });
  }
  return { type: 'subscribe', messageId, subscriptions };
}

function decodeUnsubscribe(body: Buffer): ClientPacket {
  const reader = new BodyReader(body, 'UNSUBSCRIBE');
  const messageId = reader.messageId();
  const topics: string[] = [];
  while (reader.remaining > 0) topics.push(reader.topic('topic filter'));
  return { type: 'unsubscribe', messageId, topics };
}

function decodePublish(firstByte: number, body: Buffer): ClientPacket {
  const reader = new BodyReader(body, 'PUBLISH');
  const qos = ((firstByte >> 1) & 0x03) as 0 | 1 | 2;
  const topic = reader.topic('topic');
  // MQTT-3.3.2-2: a topic name carries no wildcards.
  if (topic.includes('+') || topic.includes('#')) {
    throw malformed(`PUBLISH topic ${JSON.stringify(topic.slice(0, 200))} has a wildcard (MQTT-3.3.2-2)`);
  }
  const messageId = qos === 0 ? undefined : reader.messageId();
  const packet: ClientPacket = {
    type: 'publish',
    topic,
    payload: body.subarray(reader.offset),
    qos,
    dup: (firstByte & 0x08) !== 0,
    retain: (firstByte & 0x01) !== 0,
  };
  if (messageId !== undefined) packet.messageId = messageId;
  return packet;
}

/** Decodes a complete body whose length has already been checked by checkRemainingLength. */
function decodeBody(firstByte: number, body: Buffer): ClientPacket {
  switch (firstByte >> 4) {
    case CONNECT:
      return decodeConnect(body);
    case SUBSCRIBE:
      return decodeSubscribe(body);
    case UNSUBSCRIBE:
      return decodeUnsubscribe(body);
    case PUBACK: {
      const reader = new BodyReader(body, 'PUBACK');
      return { type: 'puback', messageId: reader.messageId() };
    }
    case PINGREQ:
      return { type: 'pingreq' };
    case DISCONNECT:
      return { type: 'disconnect' };
    default:
      return decodePublish(firstByte, body);
  }
}

/**
 * Splits a device's byte stream into packets: `decode(chunk)` yields each complete packet as soon as it
 * is read, so a consumer can act on the packets before a malformed one (a CONNECT before garbage is
 * still answered); `push(chunk)` collects them.
 *
 * Malformed input throws a ProtocolError; the stream cannot be resynchronised after that, so every later
 * call throws the same error. A consumer that stops iterating part-way (because it closed the connection)
 * must not feed the decoder again. At most maxPacketBytes bytes (or a fixed header's 5) are ever held.
 */
export class ClientPacketDecoder {
  readonly #maxPacketBytes: number;
  #failure: ProtocolError | undefined;
  /** The current packet's first byte, or -1 between packets. */
  #firstByte = -1;
  #remainingLength = 0;
  #lengthBytes = 0;
  #lengthKnown = false;
  #body: Buffer | undefined;
  #bodyBytes = 0;
  /** Where #step reads in its chunk; decode() sets it before each step and reads it back after. */
  #offset = 0;

  constructor(options: ClientPacketDecoderOptions) {
    const { maxPacketBytes } = options;
    if (!Number.isInteger(maxPacketBytes) || maxPacketBytes < 2) {
      throw inputError(`maxPacketBytes ${String(maxPacketBytes)} is invalid: use an integer of 2 or more`);
    }
    this.#maxPacketBytes = maxPacketBytes;
  }

  /** Bytes held for the packet in progress (header included): for diagnostics and tests. */
  get bufferedBytes(): number {
    return this.#firstByte < 0 ? 0 : 1 + this.#lengthBytes + this.#bodyBytes;
  }

  push(chunk: Uint8Array): ClientPacket[] {
    return [...this.decode(chunk)];
  }

  *decode(chunk: Uint8Array): Generator<ClientPacket, void, undefined> {
    if (this.#failure) throw this.#failure;
    const bytes = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let offset = 0;
    while (offset < bytes.length) {
      let packet: ClientPacket | undefined;
      try {
        // The offset stays local between steps: a consumer may decode another chunk while this one yields.
        this.#offset = offset;
        packet = this.#step(bytes);
        offset = this.#offset;
      } catch (error) {
        this.#failure =
          error instanceof ProtocolError
            ? error
            : new ProtocolError(`could not decode an MQTT packet: ${String(error)}`, { cause: error });
        this.#body = undefined;
        throw this.#failure;
      }
      // Yielded outside the try: an exception in the consumer is its own, not a decoding failure.
      if (packet !== undefined) yield packet;
    }
  }

  /**
   * Consumes bytes of the chunk from #offset up to the end of one packet at most (the whole fixed header
   * in one call, without a result per byte); returns that packet, if complete.
   */
  #step(chunk: Buffer): ClientPacket | undefined {
    if (this.#firstByte < 0) {
      const firstByte = chunk[this.#offset++] ?? 0;
      checkFixedHeader(firstByte);
      this.#firstByte = firstByte;
      this.#remainingLength = 0;
      this.#lengthBytes = 0;
      this.#lengthKnown = false;
    }
    while (!this.#lengthKnown) {
      if (this.#offset >= chunk.length) return undefined;
      const digit = chunk[this.#offset++] ?? 0;
      this.#remainingLength += (digit & 0x7f) * 0x80 ** this.#lengthBytes;
      this.#lengthBytes++;
      if ((digit & 0x80) !== 0) {
        if (this.#lengthBytes === 4) throw malformed('remaining length takes more than 4 bytes');
        continue;
      }
      this.#lengthKnown = true;
      const total = 1 + this.#lengthBytes + this.#remainingLength;
      if (total > this.#maxPacketBytes) {
        throw new ProtocolError(
          `MQTT ${typeName(this.#firstByte >> 4)} from the device is ${total} bytes, ` +
            `more than the ${this.#maxPacketBytes}-byte limit`,
        );
      }
      checkRemainingLength(this.#firstByte, this.#remainingLength);
      if (this.#remainingLength === 0) return this.#complete(EMPTY_BODY);
    }
    if (this.#offset >= chunk.length) return undefined;
    // Copied, not sliced: packets and partial bodies never alias the caller's chunks.
    this.#body ??= Buffer.allocUnsafe(this.#remainingLength);
    const take = Math.min(this.#remainingLength - this.#bodyBytes, chunk.length - this.#offset);
    chunk.copy(this.#body, this.#bodyBytes, this.#offset, this.#offset + take);
    this.#bodyBytes += take;
    this.#offset += take;
    if (this.#bodyBytes < this.#remainingLength) return undefined;
    const body = this.#body;
    this.#body = undefined;
    this.#bodyBytes = 0;
    return this.#complete(body);
  }

  #complete(body: Buffer): ClientPacket {
    const packet = decodeBody(this.#firstByte, body);
    this.#firstByte = -1;
    return packet;
  }
}
