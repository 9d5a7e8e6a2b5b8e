// The open WebSocket as a byte stream for MQTT, framed by websocket-frames.ts straight onto the TLS
// socket. It behaves like a net.Socket without half-open: each write is one binary message (one socket
// write, frame header included); the server's close, or the socket's, ends the readable side and then the
// stream closes. Pings are answered; a protocol violation closes with the RFC's code and a typed error.
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { TransportError } from '../protocol/errors.js';
import {
  CLOSE_NORMAL,
  closePayload,
  encodeClientFrame,
  OPCODE_BINARY,
  OPCODE_CLOSE,
  OPCODE_PONG,
  ServerFrameReader,
  type ServerFrameSink,
  WebSocketFrameError,
} from './websocket-frames.js';

/** How long a closed stream lets its socket flush the close frame and TLS close_notify before cutting it. */
const SOCKET_LINGER_MS = 2000;

/** Wraps a socket whose upgrade succeeded; `firstBytes` are those that came after the 101 head. */
export function webSocketStream(socket: Socket, target: string, firstBytes: Buffer): Duplex {
  return new ClientWebSocketStream(socket, target, firstBytes);
}

class ClientWebSocketStream extends Duplex implements ServerFrameSink {
  private readonly reader = new ServerFrameReader();
  private closeSent = false;
  private closeReceived = false;
  private peerEnded = false;
  private flushScheduled = false;

  constructor(
    private readonly socket: Socket,
    private readonly target: string,
    firstBytes: Buffer,
  ) {
    super({ allowHalfOpen: false }); // MQTT has no use for a half-closed connection
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    // The server hung up without a close frame (or the network did): the stream ends, as with ws.
    socket.on('close', () => this.endFromPeer());
    socket.on('end', () => this.endFromPeer());
    socket.on('error', () => this.endFromPeer());
    if (firstBytes.length > 0) this.receive(firstBytes);
  }

  override _read(): void {
    if (this.socket.isPaused()) this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.sendFrames([chunk], callback);
  }

  /** Packets written together (a pipelined CONNECT, SUBSCRIBE, PUBLISH) leave in one socket write. */
  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    this.sendFrames(
      chunks.map((entry) => entry.chunk),
      callback,
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.sendClose(CLOSE_NORMAL);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.socket.destroyed) {
      // Say why to the server (1000, or the protocol error's code already queued), let the frame and
      // close_notify leave, then cut: a peer that does not read gets SOCKET_LINGER_MS, no more.
      this.sendClose(CLOSE_NORMAL);
      this.flush();
      this.socket.destroySoon();
      setTimeout(() => this.socket.destroy(), SOCKET_LINGER_MS).unref();
    }
    callback(error);
  }

  onData(bytes: Buffer): void {
    if (!this.push(bytes)) this.socket.pause();
  }

  onPing(payload: Buffer): void {
    if (!this.closeSent) this.writeToSocket(encodeClientFrame(OPCODE_PONG, payload));
  }

  onPong(): void {
    // Unsolicited pongs are allowed (§5.5.3); the client sends no pings of its own (MQTT has PINGREQ).
  }

  onClose(code: number): void {
    this.closeReceived = true;
    // §5.5.1: answer with a close frame echoing the code, then the connection is done.
    this.sendClose(code === 1005 ? undefined : code);
    this.endFromPeer();
  }

  private receive(chunk: Buffer): void {
    if (this.destroyed) return;
    try {
      this.reader.push(chunk, this);
    } catch (error) {
      if (!(error instanceof WebSocketFrameError)) throw error;
      this.sendClose(error.closeCode);
      this.destroy(
        new TransportError(`the WebSocket connection with ${this.target} failed: ${error.message}`, {
          phase: 'websocket',
          cause: error,
          retryable: true,
        }),
      );
    }
  }

  private sendFrames(chunks: Buffer[], callback: (error?: Error | null) => void): void {
    if (this.closeSent) {
      callback(
        new TransportError(`the WebSocket connection with ${this.target} is closing`, {
          phase: 'websocket',
          retryable: true,
        }),
      );
      return;
    }
    const frames = chunks.map((chunk) => encodeClientFrame(OPCODE_BINARY, chunk));
    // Done as soon as the socket has it: the socket buffers and reports errors itself, so this stream never
    // holds writes that a destroy() right after a DISCONNECT would discard. Its backpressure still applies.
    if (this.writeToSocket(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames))) {
      callback();
    } else {
      this.socket.once('drain', () => callback());
    }
  }

  /** At most one close frame per connection (§5.5.1); `code` undefined sends one without a status. */
  private sendClose(code: number | undefined): void {
    if (this.closeSent || this.socket.destroyed || !this.socket.writable) return;
    this.closeSent = true;
    this.writeToSocket(
      encodeClientFrame(OPCODE_CLOSE, code === undefined ? Buffer.alloc(0) : closePayload(code)),
    );
  }

  /**
   * Frames written in one turn of the event loop leave together, in one TLS record and one system call:
   * a PUBACK and the DISCONNECT and close frame that follow it, say. The socket is corked at the first
   * write and uncorked once the turn's callbacks and promise continuations have run.
   */
  private writeToSocket(bytes: Buffer): boolean {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.socket.cork();
      setImmediate(this.flush);
    }
    return this.socket.write(bytes);
  }

  private readonly flush = (): void => {
    if (!this.flushScheduled) return;
    this.flushScheduled = false;
    this.socket.uncork();
  };

  /** The readable side ends (once), then the stream closes. */
  private endFromPeer(): void {
    if (this.destroyed || this.peerEnded) return;
    this.peerEnded = true;
    this.push(null);
    // After the 'end' above is delivered (next ticks), not before: readers see the end, then the close.
    setImmediate(() => {
      if (this.closeReceived && !this.socket.destroyed) this.socket.destroySoon();
      this.destroy();
    });
  }
}
