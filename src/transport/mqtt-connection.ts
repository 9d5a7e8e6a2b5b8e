// One MQTT 3.1.1 client session over a byte stream: framing, packet ids, PUBACKs, keep-alive and
// tracing. It knows MQTT, not DPS; the common transport drives it.
import type { Duplex } from 'node:stream';
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
} from '../mqtt/codec.js';
import { DpsError, TransportError } from '../protocol/errors.js';

export interface MqttConnectionEvents {
  onPacket(packet: ServerPacket): void;
  /** The stream failed, the peer closed it, or it sent something malformed. Called at most once. */
  onClose(error: DpsError): void;
  /** Called with a one-line description of every packet in and out, when tracing is on. */
  trace?: ((line: string) => void) | undefined;
}

export class MqttConnection {
  private readonly decoder = new PacketDecoder();
  private nextMessageId = 1;
  private closed = false;
  private receivedAny = false;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private lastSendAt = Date.now();
  private lastReceiveAt = Date.now();

  constructor(
    private readonly stream: Duplex,
    private readonly events: MqttConnectionEvents,
  ) {
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('error', (error: Error) => {
      if (!this.closed) this.fail(new TransportError(`connection error: ${error.message}`, { cause: error }));
    });
    // Checked before the error is made: after our own DISCONNECT the close is expected, and an Error's stack
    // costs more than the rest of the close.
    const onPeerClose = (): void => {
      if (!this.closed) this.fail(new TransportError('the server closed the connection'));
    };
    stream.on('close', onPeerClose);
    stream.on('end', onPeerClose);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends CONNECT and, when keepAliveSeconds > 0, starts the PINGREQ timer. */
  connect(options: ConnectOptions): void {
    this.send(encodeConnect(options), () =>
      describePacket({
        type: 'connect',
        clientId: options.clientId,
        username: options.username,
        password: options.password === undefined ? undefined : '<redacted>',
        keepalive: options.keepAliveSeconds,
      }),
    );
    if (options.keepAliveSeconds > 0) this.startKeepAlive(options.keepAliveSeconds * 1000);
  }

  subscribe(topic: string, qos: 0 | 1): number {
    const messageId = this.allocateMessageId();
    this.send(encodeSubscribe(messageId, [{ topic, qos }]), () =>
      describePacket({ type: 'subscribe', messageId, subscriptions: [{ topic, qos }] }),
    );
    return messageId;
  }

  publish(topic: string, payload: Uint8Array | string, qos: 0 | 1): void {
    const messageId = qos === 1 ? this.allocateMessageId() : undefined;
    const options = messageId === undefined ? { topic, payload, qos } : { topic, payload, qos, messageId };
    this.send(
      encodePublish(options),
      () => `${describePacket({ type: 'publish', topic, qos, messageId, payload })}${bodyPreview(payload)}`,
    );
  }

  /** Sends DISCONNECT, then ends the stream; no error is reported for a close we asked for. */
  disconnect(): void {
    if (this.closed) return;
    this.send(encodeDisconnect(), () => 'DISCONNECT');
    this.closed = true;
    this.stopKeepAlive();
    this.stream.end();
    this.stream.destroy();
  }

  /** Tears the stream down at once (aborts, errors). */
  destroy(): void {
    this.closed = true;
    this.stopKeepAlive();
    this.stream.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    if (!this.receivedAny && chunk.subarray(0, 5).toString('latin1') === 'HTTP/') {
      // An HTTP(S) server's answer to CONNECT; the decoder would call it a PUBACK with reserved flags.
      this.fail(
        new TransportError(
          'the server answered in HTTP, not MQTT: the port probably speaks MQTT over WebSocket (443), the other ' +
            'transport: use transport mqtt-ws for this port, or the MQTT over TLS port (8883)',
          { phase: 'connack', retryable: false, reason: 'wrong-transport' },
        ),
      );
      return;
    }
    this.receivedAny = true;
    this.lastReceiveAt = Date.now();
    let packets: ServerPacket[];
    try {
      packets = this.decoder.push(chunk);
    } catch (error) {
      this.fail(error instanceof DpsError ? error : new TransportError(String(error)));
      return;
    }
    for (const packet of packets) {
      if (this.closed) return;
      this.events.trace?.(
        `<- ${describePacket(packet)}${packet.type === 'publish' ? bodyPreview(packet.payload) : ''}`,
      );
      if (packet.type === 'publish' && packet.qos === 1 && packet.messageId !== undefined) {
        const messageId = packet.messageId;
        this.send(encodePuback(messageId), () => describePacket({ type: 'puback', messageId }));
      }
      if (packet.type !== 'pingresp') this.events.onPacket(packet);
    }
  }

  private send(bytes: Buffer, describe: () => string): void {
    if (this.closed) return;
    this.events.trace?.(`-> ${describe()}`);
    this.lastSendAt = Date.now();
    this.stream.write(bytes);
  }

  private allocateMessageId(): number {
    const messageId = this.nextMessageId;
    this.nextMessageId = messageId === 0xffff ? 1 : messageId + 1;
    return messageId;
  }

  // Keep-alive: ping when we have been quiet for the interval; give up when the server has been
  // silent for 1.5 intervals (MQTT 3.1.1 §3.1.2.10 gives the server the same grace).
  private startKeepAlive(intervalMs: number): void {
    const checkEveryMs = Math.max(250, Math.floor(intervalMs / 4));
    this.keepAliveTimer = setInterval(() => {
      const now = Date.now();
      if (now - this.lastReceiveAt > intervalMs * 1.5) {
        this.fail(
          new TransportError(
            `no packet from the server for ${Math.round((now - this.lastReceiveAt) / 1000)} s (keep-alive)`,
          ),
        );
      } else if (now - this.lastSendAt >= intervalMs) {
        this.send(encodePingreq(), () => 'PINGREQ');
      }
    }, checkEveryMs);
    this.keepAliveTimer.unref();
  }

  private stopKeepAlive(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
  }

  private fail(error: DpsError): void {
    if (this.closed) return;
    this.closed = true;
    this.stopKeepAlive();
    this.stream.destroy();
    this.events.onClose(error);
  }
}

/** DPS bodies are short JSON; showing them makes a trace useful. The trace sink redacts. */
function bodyPreview(payload: Uint8Array | string): string {
  const text = typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8');
  if (text.trim() === '') return '';
  return ` ${text.length > 500 ? `${text.slice(0, 500)}...` : text}`;
}
