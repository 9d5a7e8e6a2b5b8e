// Loopback networking helpers shared by the socket-level tests: listening on an ephemeral port,
// closing servers without waiting for kept-alive connections, proving sockets closed, echo round trips,
// a peer that never answers, and a real HTTP CONNECT proxy (npm `proxy`).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createProxy, type ProxyServer } from 'proxy';

/** Listens on port 0 of `host` (IPv4 loopback unless told otherwise); resolves the port the OS chose. */
export async function listenOnLoopback(server: net.Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

/**
 * Closes a server and resolves once it stopped listening. An HTTP or HTTPS server (the proxy, the WSS
 * peer) first drops its open connections, so kept-alive or tunnelled sockets do not hold close() up.
 */
export async function closeServer(server: net.Server): Promise<void> {
  if (server instanceof http.Server || server instanceof https.Server) server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A loopback port that nothing listens on: one the OS just handed out, its server closed again. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  const port = await listenOnLoopback(server);
  await closeServer(server);
  return port;
}

/**
 * One promise per connection `server` accepts from now on, each settled when that socket closes: await
 * them all to prove nothing stays open. With `resume`, what each socket receives is read and dropped, for
 * a plain TCP server nobody else reads (a socket nobody reads never notices the peer's FIN).
 */
export function trackSocketCloses(server: net.Server, options: { resume?: boolean } = {}): Promise<void>[] {
  const closed: Promise<void>[] = [];
  server.on('connection', (socket: net.Socket) => {
    closed.push(once(socket, 'close').then(() => undefined));
    if (options.resume) socket.resume();
  });
  return closed;
}

/** Resolves with what `promise` rejected with; fails the test if it resolves instead. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected a rejection, but the promise resolved'),
    (error: unknown) => error,
  );
}

/**
 * Writes `bytes` to `stream` and resolves with what comes back once at least as many bytes arrived:
 * one round trip through an echoing peer. Leaving the stream's async iterator destroys the stream, so
 * call it only when the stream is not needed afterwards.
 */
export async function echoOnce(stream: NodeJS.ReadWriteStream, bytes: Buffer): Promise<Buffer> {
  const received: Buffer[] = [];
  let length = 0;
  stream.write(bytes);
  for await (const chunk of stream) {
    received.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if (length >= bytes.length) break;
  }
  return Buffer.concat(received);
}

export interface SilentServer {
  server: net.Server;
  port: number;
  /** The server side of the first connection, once it received its first bytes (left paused). */
  firstBytes: Promise<net.Socket>;
}

/** A TCP server on loopback that reads and never answers: a TLS peer or a proxy stuck mid-handshake. */
export async function startSilentServer(): Promise<SilentServer> {
  let seen: (socket: net.Socket) => void = () => {};
  const firstBytes = new Promise<net.Socket>((resolve) => {
    seen = resolve;
  });
  const server = net.createServer((socket) => socket.once('data', () => seen(socket)));
  const port = await listenOnLoopback(server);
  return { server, port, firstBytes };
}

export interface ConnectProxyOptions {
  /** Decides each CONNECT request (answered 407 when false); without it every request is let through. */
  authenticate?: (request: http.IncomingMessage) => boolean;
  /** The loopback address to listen on; 127.0.0.1 unless told otherwise. */
  host?: string;
}

export interface ConnectProxy {
  server: ProxyServer;
  port: number;
  /** The target (`host:port`) of every CONNECT request received, accepted or not, in order. */
  targets: string[];
  close(): Promise<void>;
}

/** A real HTTP CONNECT proxy (npm `proxy`) listening on an ephemeral loopback port. */
export async function startConnectProxy(options: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const server: ProxyServer = createProxy(http.createServer());
  const targets: string[] = [];
  server.on('connect', (request: http.IncomingMessage) => targets.push(request.url ?? ''));
  if (options.authenticate) server.authenticate = options.authenticate;
  const port = await listenOnLoopback(server, options.host);
  return { server, port, targets, close: () => closeServer(server) };
}
