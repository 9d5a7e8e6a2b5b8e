// The two ways in: MQTT over TLS (8883) and MQTT over WebSocket over TLS (443) at `/$iothub/websocket`
// (and `/`, which the .NET SDK dials) with subprotocol `mqtt` (`MQTT` from the C SDK).
// Client certificates are requested but never required here: the session checks them and refuses with a
// CONNACK, which a device can report, rather than a TLS alert, which it cannot tell from a network fault.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import { WebSocketServer } from 'ws';
import type { EmulatorLogger } from '../log.js';
import type { SessionPeer, SessionStream } from '../mqtt/mqtt-session.js';
import type { CertificateAndKey } from '../pki/pki.js';
import { pathnameOf } from './https-router.js';
import { createPeerChains, type PeerChains } from './peer-chains.js';
import { WebSocketStream } from './websocket-stream.js';

export const WEBSOCKET_PATHS = ['/$iothub/websocket', '/'];
export const WEBSOCKET_SUBPROTOCOLS = ['mqtt', 'MQTT'];

export interface ListenerOptions {
  host: string;
  mqttPort: number;
  wssPort: number;
  server: CertificateAndKey;
  /** CA names offered in the TLS CertificateRequest (the emulator's CA and enrolled group CAs). */
  clientCaPems: string[];
  maxPacketBytes: number;
  handshakeTimeoutMs: number;
  logger: EmulatorLogger;
  onConnection(stream: SessionStream, peer: SessionPeer): void;
  /** Plain HTTPS requests on the WebSocket port (the service API and the HTTPS device API). */
  onHttpsRequest?(request: IncomingMessage, response: ServerResponse, peer: SessionPeer): void;
}

export interface Listeners {
  mqttPort: number;
  wssPort: number;
  /**
   * Replaces the CA names offered in the CertificateRequest (enrollment groups added or removed at run
   * time); connections from then on get the new list.
   */
  setClientCaPems(pems: string[]): void;
  /** Stops accepting, destroys every open socket, and resolves when both servers are closed. */
  close(): Promise<void>;
}

export async function startListeners(options: ListenerOptions): Promise<Listeners> {
  const tlsOptions = {
    cert: options.server.certPem,
    key: options.server.keyPem,
    ca: options.clientCaPems,
    minVersion: 'TLSv1.2' as const,
    requestCert: true,
    rejectUnauthorized: false,
    // Session tickets (TLS 1.3 and 1.2), so a device's or a fleet's next connection resumes instead of a
    // full handshake. One key for both listeners and across setSecureContext, so a CA list change does
    // not void every ticket. A resumed session keeps the client's leaf but not the intermediates it sent:
    // peer-chains.ts adds back those seen with that leaf at its full handshake.
    ticketKeys: randomBytes(48),
    handshakeTimeout: options.handshakeTimeoutMs,
  };
  const sockets = new Set<Socket>();
  const peerChains = createPeerChains();
  const upgradeTimers = new WeakMap<Socket, NodeJS.Timeout>();
  const track = (socket: Socket): void => {
    // Nagle off: an answer is one small TLS record, and with Nagle on it waits for the device's delayed
    // ACK of the previous one (about 40 ms on Linux) before it leaves.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  const mqttServer = createTlsServer(tlsOptions, (socket) => {
    options.onConnection(socket, sessionPeer('mqtt', socket, peerChains));
  });
  mqttServer.on('connection', track);
  mqttServer.on('secureConnection', (socket: TLSSocket) => peerChains.record(socket));
  mqttServer.on('tlsClientError', (error, socket) => {
    // tls.Server reports a failed or timed-out handshake but leaves the socket open: close it here, or a
    // client that never sends a ClientHello holds a descriptor for ever.
    socket.destroy();
    options.logger({
      event: 'tlsError',
      transport: 'mqtt',
      remoteAddress: socket.remoteAddress,
      error: error.message,
    });
  });

  const webSocketServer = new WebSocketServer({
    noServer: true,
    // No Set of every client and no 'close' listener each: the sockets are tracked (and closed) above.
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: options.maxPacketBytes,
    handleProtocols: (protocols) =>
      WEBSOCKET_SUBPROTOCOLS.find((protocol) => protocols.has(protocol)) ?? false,
  });
  // The service's upgrade answer carries the time, as HTTP servers do: clients (dps-mqtt diagnose) compare
  // it with their own clock, because a skew beyond the SAS lifetime explains refusals.
  webSocketServer.on('headers', (headers) => {
    headers.push(`Date: ${new Date().toUTCString()}`);
  });
  const wssServer = createHttpsServer(tlsOptions, (request, response) => {
    const tlsSocket = request.socket as TLSSocket;
    // A request is not an upgrade: the upgrade deadline no longer applies (the HTTP server's own
    // timeouts bound a slow request).
    clearTimeout(upgradeTimers.get(tlsSocket));
    if (options.onHttpsRequest) {
      options.onHttpsRequest(request, response, {
        transport: 'https',
        remoteAddress: tlsSocket.remoteAddress,
        clientCertificates: () => peerChains.chainOf(tlsSocket),
      });
      return;
    }
    // Without the HTTPS APIs this endpoint only upgrades to MQTT over WebSocket.
    response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
    response.end('dps-mqtt emulator: connect with a WebSocket to /$iothub/websocket, subprotocol mqtt\n');
  });
  wssServer.on('connection', track);
  // handshakeTimeout covers TLS only: a client must also finish the WebSocket upgrade in time (the HTTP
  // server's own headersTimeout is 60 s and counts only once a request starts).
  wssServer.on('secureConnection', (socket: TLSSocket) => {
    peerChains.record(socket);
    const timer = setTimeout(() => socket.destroy(), options.handshakeTimeoutMs);
    timer.unref();
    upgradeTimers.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  });
  wssServer.on('tlsClientError', (error, socket) => {
    socket.destroy(); // as above (https.Server happens to do it too)
    options.logger({
      event: 'tlsError',
      transport: 'wss',
      remoteAddress: socket.remoteAddress,
      error: error.message,
    });
  });
  wssServer.on('upgrade', (request, socket: Duplex, head: Buffer) => {
    const tlsSocket = request.socket as TLSSocket;
    clearTimeout(upgradeTimers.get(tlsSocket));
    // The usual paths need no URL parser: new URL() gives them back unchanged.
    const path = WEBSOCKET_PATHS.includes(request.url ?? '')
      ? (request.url as string)
      : (pathnameOf(request.url) ?? '');
    const offered = String(request.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((protocol) => protocol.trim());
    const refusal = !WEBSOCKET_PATHS.includes(path)
      ? { status: '404 Not Found', reason: `path ${JSON.stringify(path)} is not /$iothub/websocket` }
      : !offered.some((protocol) => WEBSOCKET_SUBPROTOCOLS.includes(protocol))
        ? { status: '400 Bad Request', reason: 'the WebSocket subprotocol must be mqtt' }
        : undefined;
    if (refusal !== undefined) {
      options.logger({
        event: 'upgradeRefused',
        transport: 'wss',
        remoteAddress: tlsSocket.remoteAddress,
        ...refusal,
      });
      socket.end(
        `HTTP/1.1 ${refusal.status}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${refusal.reason}\n`,
      );
      return;
    }
    webSocketServer.handleUpgrade(request, socket, head, (webSocket) => {
      options.onConnection(new WebSocketStream(webSocket, socket), sessionPeer('wss', tlsSocket, peerChains));
    });
  });

  const [mqttPort, wssPort] = await Promise.all([
    listen(mqttServer, options.host, options.mqttPort),
    listen(wssServer, options.host, options.wssPort),
  ]).catch(async (error: unknown) => {
    await Promise.all([closeServer(mqttServer), closeServer(wssServer)]);
    throw error;
  });

  return {
    mqttPort,
    wssPort,
    setClientCaPems(pems) {
      const context = { ...tlsOptions, ca: pems };
      mqttServer.setSecureContext(context);
      wssServer.setSecureContext(context);
    },
    async close() {
      const closing = Promise.all([closeServer(mqttServer), closeServer(wssServer)]);
      for (const socket of sockets) socket.destroy();
      webSocketServer.close();
      await closing;
    },
  };
}

/** The peer of an MQTT session: its address is read lazily (a getpeername() call), when it is logged. */
function sessionPeer(transport: 'mqtt' | 'wss', socket: TLSSocket, peerChains: PeerChains): SessionPeer {
  return {
    transport,
    get remoteAddress() {
      return socket.remoteAddress;
    },
    clientCertificates: () => peerChains.chainOf(socket),
  };
}

function listen(server: TlsServer | HttpsServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      const code = (error as NodeJS.ErrnoException).code;
      const hint =
        code === 'EADDRINUSE'
          ? `: port ${port} is in use (choose another port, or 0 for any free port)`
          : code === 'EACCES'
            ? `: binding port ${port} needs privileges (use a port above 1023)`
            : code === 'EADDRNOTAVAIL'
              ? `: ${host} is not an address of this machine (EADDRNOTAVAIL); use 127.0.0.1, 0.0.0.0 (every interface) or one of its own addresses`
              : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
                ? `: the host name ${host} does not resolve (${code}); give an IP address or a name of this machine`
                : `: ${error.message}`;
      reject(new Error(`cannot listen on ${host}:${port}${hint}`, { cause: error }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: TlsServer | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}
