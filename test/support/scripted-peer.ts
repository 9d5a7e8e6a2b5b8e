// A scripted MQTT server on an in-memory stream pair, for unit tests of the common transport. It
// speaks through mqtt-packet (independent of our client codec) and lets each test answer packets.
import { Duplex } from 'node:stream';
import mqttPacket, { type Packet } from 'mqtt-packet';

/** Two connected in-memory streams: what one writes, the other reads; destroying one ends both. */
export function streamPair(): [Duplex, Duplex] {
  let left: Duplex;
  let right: Duplex;
  const make = (peer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        peer().push(chunk);
        callback();
      },
      final(callback) {
        peer().push(null);
        callback();
      },
      destroy(error, callback) {
        const other = peer();
        if (!other.destroyed) other.destroy();
        callback(error);
      },
    });
  left = make(() => right);
  right = make(() => left);
  return [left, right];
}

export interface ScriptedPeer {
  /** Every packet the client sent, in order. */
  received: Packet[];
  send(packet: Record<string, unknown>): void;
  /** Resolves with the next client packet of this type (or one already received and not yet taken). */
  next(cmd: string): Promise<Packet>;
  /** Publishes a DPS response. */
  respond(status: number, requestId: string, body: unknown, retryAfter?: string): void;
  close(): void;
  closed: Promise<void>;
}

export function createScriptedPeer(serverSide: Duplex): ScriptedPeer {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const received: Packet[] = [];
  const taken = new Set<Packet>();
  const waiters: Array<{ cmd: string; resolve: (packet: Packet) => void }> = [];
  parser.on('packet', (packet: Packet) => {
    received.push(packet);
    const waiter = waiters.findIndex((candidate) => candidate.cmd === packet.cmd);
    if (waiter >= 0) {
      taken.add(packet);
      waiters.splice(waiter, 1)[0]!.resolve(packet);
    }
  });
  serverSide.on('data', (chunk: Buffer) => parser.parse(chunk));
  const closed = new Promise<void>((resolve) => serverSide.on('close', () => resolve()));
  const send = (packet: Record<string, unknown>) => {
    if (!serverSide.destroyed) serverSide.write(mqttPacket.generate(packet as unknown as Packet));
  };
  return {
    received,
    send,
    next(cmd) {
      const ready = received.find((packet) => packet.cmd === cmd && !taken.has(packet));
      if (ready) {
        taken.add(ready);
        return Promise.resolve(ready);
      }
      return new Promise((resolve) => waiters.push({ cmd, resolve }));
    },
    respond(status, requestId, body, retryAfter) {
      const query = `$rid=${encodeURIComponent(requestId)}${retryAfter === undefined ? '' : `&retry-after=${retryAfter}`}`;
      send({
        cmd: 'publish',
        topic: `$dps/registrations/res/${status}/?${query}`,
        payload: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
        qos: 0,
        retain: false,
        dup: false,
      });
    },
    close: () => serverSide.destroy(),
    closed,
  };
}

/** The `$rid` of a request topic. */
export function requestIdOf(topic: string): string {
  const requestId = new URLSearchParams(topic.slice(topic.indexOf('?') + 1)).get('$rid');
  if (!requestId) throw new Error(`no $rid in ${topic}`);
  return requestId;
}
