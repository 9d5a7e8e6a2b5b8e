// A TCP forwarder on loopback that delays every chunk by a fixed time in each direction, and records when
// client bytes arrive and when server bytes reach the client, so round trips can be counted afterwards.
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface ConnectionTrace {
  acceptedAt: number;
  /** performance.now() of every chunk the client sent, as it reached the proxy. */
  clientChunksAt: number[];
  /** performance.now() of every chunk of server bytes the proxy handed to the client. */
  serverDeliveriesAt: number[];
}

export interface DelayProxy {
  port: number;
  connections: ConnectionTrace[];
  close(): Promise<void>;
}

/** Forwards bytes in order, each no earlier than `notBefore` and `delayMs` after it arrived. */
class DelayedPipe {
  private lastDeliveryAt = 0;
  private pending = 0;
  private ended = false;

  constructor(
    private readonly target: net.Socket,
    private readonly delayMs: number,
    private readonly notBefore: number,
    private readonly onDelivered: (at: number) => void,
  ) {}

  push(chunk: Buffer): void {
    this.schedule(() => {
      if (!this.target.destroyed) this.target.write(chunk);
      this.onDelivered(performance.now());
    });
  }

  end(): void {
    this.ended = true;
    if (this.pending === 0) this.schedule(() => this.target.end());
  }

  private schedule(action: () => void): void {
    const now = performance.now();
    const deliverAt = Math.max(now + this.delayMs, this.lastDeliveryAt, this.notBefore);
    this.lastDeliveryAt = deliverAt;
    this.pending += 1;
    // Equal delays fire in the order they were set, and deliverAt never decreases: order is kept.
    setTimeout(
      () => {
        this.pending -= 1;
        action();
        if (this.ended && this.pending === 0 && !this.target.destroyed) this.target.end();
      },
      Math.max(0, deliverAt - now),
    );
  }
}

/**
 * The first client bytes are held until three one-way delays after the accept: with a real link, the
 * SYN takes one delay, the SYN-ACK another, and only then do the client's first bytes leave (the kernel
 * completes the loopback handshake at once, so the proxy models it).
 */
export function startDelayProxy(options: { targetPort: number; oneWayDelayMs: number }): Promise<DelayProxy> {
  const connections: ConnectionTrace[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const acceptedAt = performance.now();
    const trace: ConnectionTrace = { acceptedAt, clientChunksAt: [], serverDeliveriesAt: [] };
    connections.push(trace);
    const upstream = net.connect({ host: '127.0.0.1', port: options.targetPort });
    for (const socket of [client, upstream]) {
      socket.setNoDelay(true);
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    }
    const toServer = new DelayedPipe(
      upstream,
      options.oneWayDelayMs,
      acceptedAt + 3 * options.oneWayDelayMs,
      () => {},
    );
    const toClient = new DelayedPipe(client, options.oneWayDelayMs, 0, (at) =>
      trace.serverDeliveriesAt.push(at),
    );
    client.on('data', (chunk: Buffer) => {
      trace.clientChunksAt.push(performance.now());
      toServer.push(chunk);
    });
    upstream.on('data', (chunk: Buffer) => toClient.push(chunk));
    client.once('end', () => toServer.end());
    upstream.once('end', () => toClient.end());
    const destroyBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.once('error', destroyBoth);
    upstream.once('error', destroyBoth);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error('the delay proxy has no port'));
        return;
      }
      resolve({
        port: address.port,
        connections,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/**
 * Client-to-server flights before `until`: the TCP SYN, then every burst of client bytes that follows
 * bytes from the server (the client had to wait for them), the first burst included (it waited for the
 * SYN-ACK).
 */
export function countFlights(trace: ConnectionTrace, until: number): number {
  if (trace.acceptedAt > until) return 0;
  let flights = 1;
  let previousChunkAt: number | undefined;
  for (const chunkAt of trace.clientChunksAt) {
    if (chunkAt > until) break;
    const waitedOnServer =
      previousChunkAt === undefined ||
      trace.serverDeliveriesAt.some(
        (deliveredAt) => deliveredAt > previousChunkAt! && deliveredAt <= chunkAt,
      );
    if (waitedOnServer) flights += 1;
    previousChunkAt = chunkAt;
  }
  return flights;
}
