// A bare MQTT exchange for the connect and subscribe steps: send a packet, read what comes back (a
// packet, an HTTP answer, a close, or nothing in time), using the client's own codec.
import type { Duplex } from 'node:stream';
import { encodeDisconnect, PacketDecoder, type ServerPacket } from '../mqtt/codec.js';

export type ProbeAnswer =
  | { kind: 'packet'; packet: ServerPacket }
  /** The server answered in HTTP: an HTTPS (WebSocket) port, not MQTT. */
  | { kind: 'http'; statusLine: string }
  | { kind: 'closed'; message: string }
  | { kind: 'malformed'; message: string }
  | { kind: 'timeout' };

export class MqttProbe {
  private readonly decoder = new PacketDecoder();
  private readonly packets: ServerPacket[] = [];
  private waiter: ((answer: ProbeAnswer) => void) | undefined;
  private ended: ProbeAnswer | undefined;
  private receivedAny = false;

  constructor(
    private readonly stream: Duplex,
    private readonly timeoutMs: number,
  ) {
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('error', (error: Error) => this.end({ kind: 'closed', message: error.message }));
    stream.on('close', () => this.end({ kind: 'closed', message: 'the server closed the connection' }));
    stream.on('end', () => this.end({ kind: 'closed', message: 'the server closed the connection' }));
  }

  send(bytes: Buffer): void {
    if (this.ended === undefined) this.stream.write(bytes);
  }

  /** The next packet, or why there is none. */
  next(): Promise<ProbeAnswer> {
    const packet = this.packets.shift();
    if (packet !== undefined) return Promise.resolve({ kind: 'packet', packet });
    if (this.ended !== undefined) return Promise.resolve(this.ended);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve({ kind: 'timeout' });
      }, this.timeoutMs);
      this.waiter = (answer) => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve(answer);
      };
    });
  }

  /** DISCONNECT (when still open), then close. */
  close(): void {
    if (this.ended === undefined) {
      this.ended = { kind: 'closed', message: 'closed by the diagnosis' };
      this.stream.end(encodeDisconnect());
    }
    this.stream.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.ended !== undefined) return;
    if (!this.receivedAny && chunk.subarray(0, 5).toString('latin1') === 'HTTP/') {
      const statusLine = chunk.toString('latin1').split('\r\n', 1)[0] ?? 'HTTP/';
      this.end({ kind: 'http', statusLine });
      this.stream.destroy();
      return;
    }
    this.receivedAny = true;
    try {
      for (const packet of this.decoder.push(chunk)) {
        if (this.waiter !== undefined) this.waiter({ kind: 'packet', packet });
        else this.packets.push(packet);
      }
    } catch (error) {
      this.end({ kind: 'malformed', message: (error as Error).message });
      this.stream.destroy();
    }
  }

  private end(answer: ProbeAnswer): void {
    if (this.ended !== undefined) return;
    this.ended = answer;
    this.waiter?.(answer);
  }
}
