// The open WebSocket as a byte stream for MQTT. Not ws's createWebSocketStream: its stream ends but never
// closes when the server closes the WebSocket (it waits for the writable side, which nobody ends), so a
// transport waiting for 'close' would hang. This one behaves like a net.Socket without half-open: the
// peer's close ends the readable side, then the stream finishes and closes.
import { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import { TransportError } from '../protocol/errors.js';

/** Wraps an OPEN WebSocket: each write is one binary message, each message received is pushed whole. */
export function webSocketStream(ws: WebSocket, target: string): Duplex {
  const stream = new Duplex({
    allowHalfOpen: false, // MQTT has no use for a half-closed connection
    read() {
      if (ws.isPaused) ws.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      // The callback fires once the frame is handed to the socket: the stream's own buffer then applies
      // backpressure to the writer.
      ws.send(chunk, { binary: true }, callback);
    },
    final(callback) {
      ws.close(1000);
      callback();
    },
    destroy(error, callback) {
      if (ws.readyState !== ws.CLOSED) ws.terminate();
      callback(error);
    },
  });
  ws.on('message', (data: Buffer) => {
    if (stream.destroyed) return;
    if (!stream.push(data)) ws.pause();
  });
  ws.on('close', () => {
    if (!stream.destroyed) stream.push(null);
  });
  // ws reports protocol violations here (a malformed frame, an oversized message); socket errors it
  // turns into a close. Either way the WebSocket is closing.
  ws.on('error', (error: Error) => {
    if (stream.destroyed) return;
    stream.destroy(
      new TransportError(`the WebSocket connection with ${target} failed: ${error.message}`, {
        phase: 'websocket',
        cause: error,
        retryable: true,
      }),
    );
  });
  return stream;
}
