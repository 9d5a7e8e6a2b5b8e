// A WebSocket as the byte stream an MQTT session reads and writes: what `createWebSocketStream` (ws) does,
// minus a Duplex per connection and its one-write-at-a-time queue. Writes go straight to `ws.send`, so the
// session can cork the TLS socket beneath and send the answers to one chunk as one TLS record.
// Events and close semantics are those of `createWebSocketStream`: `data` per non-empty message, `end`
// when the WebSocket closes, `error` (held until the WebSocket has closed, so its close frame goes out)
// then `close`; destroy() terminates the connection, end() sends a close frame.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import type { SessionStream } from '../mqtt/mqtt-session.js';

export class WebSocketStream extends EventEmitter implements SessionStream {
  destroyed = false;
  writableEnded = false;
  /** False once the WebSocket failed: ws is already closing it with a close frame, do not cut it short. */
  #terminateOnDestroy = true;

  constructor(
    private readonly webSocket: WebSocket,
    /** The socket ws writes to (the upgraded TLS socket), corked while a session batches its answers. */
    private readonly socket: Duplex,
  ) {
    super();
    webSocket.on('message', (data: Buffer) => {
      // A Readable drops empty chunks; so does this, or an empty message would count as keep-alive.
      if (data.length > 0 && !this.destroyed) this.emit('data', data);
    });
    webSocket.once('error', (error: Error) => {
      if (this.destroyed) return;
      this.#terminateOnDestroy = false;
      this.#destroy(error);
    });
    webSocket.once('close', () => {
      if (this.destroyed) return;
      this.emit('end');
      this.destroy();
    });
  }

  /** Bytes written and not yet taken by the kernel: the device's unread answers. */
  get writableLength(): number {
    return this.webSocket.bufferedAmount;
  }

  write(chunk: Buffer): boolean {
    if (this.webSocket.readyState === WebSocket.OPEN) {
      this.webSocket.send(chunk);
      return true;
    }
    // ws reports a write after close through the callback only: the error, as the Duplex stream gave it.
    this.webSocket.send(chunk, (error) => {
      if (error === undefined || error === null || this.destroyed) return;
      this.emit('error', error);
      this.destroy();
    });
    return false;
  }

  /** Sends a close frame once the writes before it are out (the device closes, or ws after 30 s). */
  end(): this {
    if (this.writableEnded) return this;
    this.writableEnded = true;
    this.uncork();
    const { readyState } = this.webSocket;
    if (readyState !== WebSocket.CLOSED && !this.socket.writableFinished) this.webSocket.close();
    return this;
  }

  destroy(): this {
    this.#destroy(undefined);
    return this;
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    if (this.socket.writableCorked > 0) this.socket.uncork();
  }

  #destroy(error: Error | undefined): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const closed = (): void => {
      if (error !== undefined) this.emit('error', error);
      this.emit('close');
    };
    if (this.webSocket.readyState === WebSocket.CLOSED) {
      process.nextTick(closed);
      return;
    }
    this.webSocket.once('close', () => process.nextTick(closed));
    if (this.#terminateOnDestroy) this.webSocket.terminate();
  }
}
