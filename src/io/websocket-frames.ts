// RFC 6455 framing, the client's half: frames the client sends (masked) and a streaming reader of the
// frames a server sends (never masked). No extensions are negotiated, so the RSV bits are always zero.
// Pure: no sockets. Checked against `ws` as the peer in test/io-websocket-frames.test.ts.
import { copyRandomFromPool } from '../protocol/random-pool.js';

export const OPCODE_CONTINUATION = 0x0;
export const OPCODE_TEXT = 0x1;
export const OPCODE_BINARY = 0x2;
export const OPCODE_CLOSE = 0x8;
export const OPCODE_PING = 0x9;
export const OPCODE_PONG = 0xa;

/** Close codes the client sends (RFC 6455 §7.4.1). */
export const CLOSE_NORMAL = 1000;
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_TOO_BIG = 1009;

/** A frame from the server broke RFC 6455 (or MQTT's binary-only rule); `closeCode` is what to answer. */
export class WebSocketFrameError extends Error {
  constructor(
    message: string,
    readonly closeCode: number,
  ) {
    super(message);
    this.name = 'WebSocketFrameError';
  }
}

/** One whole (FIN) client frame, masked, in a single buffer: one socket write per frame. */
export function encodeClientFrame(opcode: number, payload: Uint8Array): Buffer {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const headerLength = 2 + lengthBytes + 4;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x80 | opcode;
  if (lengthBytes === 0) {
    frame[1] = 0x80 | length;
  } else if (lengthBytes === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  // §5.3: a fresh, unpredictable masking key for every frame, written straight into the header.
  const maskAt = 2 + lengthBytes;
  copyRandomFromPool(frame, maskAt, 4);
  const mask0 = frame[maskAt]!;
  const mask1 = frame[maskAt + 1]!;
  const mask2 = frame[maskAt + 2]!;
  const mask3 = frame[maskAt + 3]!;
  // Four bytes a step: a quarter of the loop's iterations, which is what makes V8 optimize it early.
  let index = 0;
  let at = headerLength;
  for (; index + 4 <= length; index += 4, at += 4) {
    frame[at] = payload[index]! ^ mask0;
    frame[at + 1] = payload[index + 1]! ^ mask1;
    frame[at + 2] = payload[index + 2]! ^ mask2;
    frame[at + 3] = payload[index + 3]! ^ mask3;
  }
  for (; index < length; index += 1, at += 1) {
    frame[at] = payload[index]! ^ frame[maskAt + (index & 3)]!;
  }
  return frame;
}

/** A close frame's payload: the code, then the reason in UTF-8 (at most 123 bytes, §5.5). */
export function closePayload(code: number, reason = ''): Buffer {
  const reasonBytes = Buffer.from(reason, 'utf8').subarray(0, 123);
  const payload = Buffer.allocUnsafe(2 + reasonBytes.length);
  payload.writeUInt16BE(code, 0);
  reasonBytes.copy(payload, 2);
  return payload;
}

/** What the reader hands on, in arrival order. */
export interface ServerFrameSink {
  /** Bytes of a binary message, possibly part of a frame: MQTT is a byte stream, boundaries do not matter. */
  onData(bytes: Buffer): void;
  onPing(payload: Buffer): void;
  onPong(): void;
  /** `code` 1005 when the close frame carried none (§7.1.5). */
  onClose(code: number, reason: string): void;
}

const EMPTY = Buffer.alloc(0);
/** Larger than any MQTT packet (256 MB); a length beyond it is a broken or hostile peer. */
const MAX_FRAME_PAYLOAD = 2 ** 32;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the server's frames from a byte stream cut anywhere. Data payloads are passed on as they arrive,
 * not buffered whole; only a header or a control frame cut in two is kept until the rest comes. Throws
 * WebSocketFrameError on a protocol violation; after a close frame it reads nothing more.
 */
export class ServerFrameReader {
  private pending: Buffer = EMPTY;
  /** Payload bytes of the current data frame not yet arrived. */
  private remaining = 0;
  /** Inside a fragmented binary message (a frame without FIN was read). */
  private inMessage = false;
  private closed = false;

  push(chunk: Buffer, sink: ServerFrameSink): void {
    if (this.closed) return;
    const bytes = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = EMPTY;
    let offset = 0;
    while (offset < bytes.length && !this.closed) {
      if (this.remaining > 0) {
        const end = Math.min(bytes.length, offset + this.remaining);
        this.remaining -= end - offset;
        sink.onData(bytes.subarray(offset, end));
        offset = end;
        continue;
      }
      const consumed = this.readFrameStart(bytes, offset, sink);
      if (consumed === 0) break;
      offset += consumed;
    }
    // Copied: the rest of a header is a few bytes, and must not pin the whole chunk.
    if (offset < bytes.length && !this.closed) this.pending = Buffer.from(bytes.subarray(offset));
  }

  /** Reads a frame header (and a whole control frame); 0 when more bytes are needed first. */
  private readFrameStart(bytes: Buffer, offset: number, sink: ServerFrameSink): number {
    const available = bytes.length - offset;
    if (available < 2) return 0;
    const first = bytes[offset] ?? 0;
    const second = bytes[offset + 1] ?? 0;
    const fin = (first & 0x80) !== 0;
    const opcode = first & 0x0f;
    if ((first & 0x70) !== 0) {
      throw new WebSocketFrameError(
        'the server set RSV bits, but no extension was negotiated',
        CLOSE_PROTOCOL_ERROR,
      );
    }
    if ((second & 0x80) !== 0) {
      throw new WebSocketFrameError(
        'the server sent a masked frame (RFC 6455 §5.1 forbids it)',
        CLOSE_PROTOCOL_ERROR,
      );
    }
    const shortLength = second & 0x7f;
    const headerLength = shortLength === 126 ? 4 : shortLength === 127 ? 10 : 2;
    if (available < headerLength) return 0;
    let length = shortLength;
    if (shortLength === 126) {
      length = bytes.readUInt16BE(offset + 2);
    } else if (shortLength === 127) {
      const high = bytes.readUInt32BE(offset + 2);
      length = high * 0x1_0000_0000 + bytes.readUInt32BE(offset + 6);
      if (length >= MAX_FRAME_PAYLOAD) {
        throw new WebSocketFrameError(
          `the server sent a frame of ${length} bytes, over the limit`,
          CLOSE_TOO_BIG,
        );
      }
    }
    if (opcode >= OPCODE_CLOSE) {
      if (!fin || length > 125) {
        throw new WebSocketFrameError(
          'the server sent a fragmented or oversized control frame',
          CLOSE_PROTOCOL_ERROR,
        );
      }
      if (available < headerLength + length) return 0;
      const payload = bytes.subarray(offset + headerLength, offset + headerLength + length);
      this.readControlFrame(opcode, payload, sink);
      return headerLength + length;
    }
    this.checkDataOpcode(opcode);
    this.inMessage = !fin;
    this.remaining = length;
    return headerLength;
  }

  private checkDataOpcode(opcode: number): void {
    if (opcode === OPCODE_TEXT) {
      // [MQTT-6.0.0-1]: MQTT packets travel in binary frames only.
      throw new WebSocketFrameError(
        'the server sent a text frame; MQTT needs binary frames',
        CLOSE_UNSUPPORTED_DATA,
      );
    }
    if (opcode === OPCODE_CONTINUATION && !this.inMessage) {
      throw new WebSocketFrameError(
        'the server sent a continuation frame outside a message',
        CLOSE_PROTOCOL_ERROR,
      );
    }
    if (opcode === OPCODE_BINARY && this.inMessage) {
      throw new WebSocketFrameError('the server started a message inside another', CLOSE_PROTOCOL_ERROR);
    }
    if (opcode !== OPCODE_CONTINUATION && opcode !== OPCODE_BINARY) {
      throw new WebSocketFrameError(
        `the server sent a frame with reserved opcode ${opcode}`,
        CLOSE_PROTOCOL_ERROR,
      );
    }
  }

  private readControlFrame(opcode: number, payload: Buffer, sink: ServerFrameSink): void {
    if (opcode === OPCODE_PING) {
      sink.onPing(Buffer.from(payload));
    } else if (opcode === OPCODE_PONG) {
      sink.onPong();
    } else if (opcode === OPCODE_CLOSE) {
      const { code, reason } = parseClosePayload(payload);
      this.closed = true;
      sink.onClose(code, reason);
    } else {
      throw new WebSocketFrameError(
        `the server sent a frame with reserved opcode ${opcode}`,
        CLOSE_PROTOCOL_ERROR,
      );
    }
  }
}

function parseClosePayload(payload: Buffer): { code: number; reason: string } {
  if (payload.length === 0) return { code: 1005, reason: '' };
  if (payload.length === 1) {
    throw new WebSocketFrameError(
      'the server sent a close frame with a 1-byte payload',
      CLOSE_PROTOCOL_ERROR,
    );
  }
  const code = payload.readUInt16BE(0);
  if (!isValidCloseCode(code)) {
    throw new WebSocketFrameError(
      `the server sent close code ${code}, which is not allowed on the wire`,
      CLOSE_PROTOCOL_ERROR,
    );
  }
  try {
    return { code, reason: utf8.decode(payload.subarray(2)) };
  } catch {
    throw new WebSocketFrameError('the server sent a close reason that is not UTF-8', CLOSE_PROTOCOL_ERROR);
  }
}

/** §7.4: 1000-1003, 1007-1014 and the registered / private range 3000-4999. */
function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}
