// MQTT over WebSocket: TLS (directly or through the proxy tunnel), then the upgrade to the DPS path with
// subprotocol `mqtt`, then a Duplex of the binary messages (websocket-stream.ts): the spec's `mqtt_transport_ws_io`.
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type WebSocket from 'ws';
import { InvalidInputError, TransportError } from '../protocol/errors.js';
import { abortedError, startDeadline } from './deadline.js';
import { hostPort, unbracket } from './host-port.js';
import { openTls } from './tls.js';
import { DEFAULT_WS_PATH, type IoOptions } from './types.js';
import { webSocketStream } from './websocket-stream.js';

export interface WebSocketIoOptions extends IoOptions {
  /** Default `/$iothub/websocket`. */
  path?: string;
  /**
   * Called with the server's answer to the upgrade request (101 or not), before the open settles: what
   * `dps-mqtt diagnose` reports (status, subprotocol, the `Date` header). Changes nothing else.
   */
  onUpgradeResponse?: (response: UpgradeResponse) => void;
}

/** The HTTP answer to the WebSocket upgrade request. */
export interface UpgradeResponse {
  statusCode: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
}

const SUBPROTOCOL = 'mqtt';

/**
 * PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: resolves with a Duplex carrying MQTT bytes as binary WebSocket
 * messages; `end()` closes the WebSocket, and the stream ends when the server closes it.
 * PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: any failure rejects with a typed error (InvalidInputError,
 * ProxyError, TransportError phase 'tcp' | 'tls' | 'websocket', TimeoutError, AbortError) and destroys
 * every socket it made.
 */
export async function openWebSocket(options: WebSocketIoOptions): Promise<Duplex> {
  if (options.path !== undefined && !/^\/[^\s#]*$/.test(options.path)) {
    throw new InvalidInputError(
      'path',
      `WebSocket path ${JSON.stringify(options.path)} is invalid: it must start with "/"`,
    );
  }
  const deadline = startDeadline(options);
  // `ws` costs ~15 ms to load: load it while the network does the TCP and TLS round trips.
  const wsModule = loadWsSoon();
  wsModule.catch(() => {}); // awaited below; this only keeps an early TLS failure from leaving it unhandled
  try {
    const socket = await openTls({
      ...options,
      signal: deadline.signal,
      timeoutMs: Number.POSITIVE_INFINITY,
    });
    let ws: typeof import('ws');
    try {
      ws = await wsModule;
    } catch (error) {
      socket.destroy();
      throw new TransportError('the "ws" package could not be loaded: reinstall dps-mqtt', {
        phase: 'websocket',
        cause: error,
        retryable: false,
      });
    }
    return await upgrade(ws, socket, options, deadline.signal);
  } finally {
    deadline.dispose();
  }
}

/**
 * `require('ws')` rather than `import('ws')`: the ESM wrapper makes Node scan every CommonJS file of the
 * package, which measured 28-35 ms against 14-20 ms (docs/benchmarks.md). Deferred to the next turn of
 * the event loop so the TCP connect is already under way while it runs.
 */
function loadWsSoon(): Promise<typeof import('ws')> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(createRequire(import.meta.url)('ws') as typeof import('ws'));
      } catch (error) {
        reject(error);
      }
    });
  });
}

function upgrade(
  ws: typeof import('ws'),
  socket: TLSSocket,
  options: WebSocketIoOptions,
  signal: AbortSignal,
): Promise<Duplex> {
  const target = hostPort(options.host, options.port);
  const path = options.path ?? DEFAULT_WS_PATH;
  const urlHost = isIP(unbracket(options.host)) === 6 ? `[${unbracket(options.host)}]` : options.host;
  return new Promise<Duplex>((resolve, reject) => {
    if (signal.aborted) {
      socket.destroy();
      reject(abortedError(signal, 'websocket', target));
      return;
    }
    const client: WebSocket = new ws.WebSocket(`wss://${urlHost}:${options.port}${path}`, SUBPROTOCOL, {
      // The upgrade request rides on our TLS socket (proxy tunnel, trust and SNI already settled).
      createConnection: () => socket,
      perMessageDeflate: false, // MQTT packets are small; compression costs a round of CPU for nothing
      followRedirects: false,
    });
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      client.terminate();
      socket.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(abortedError(signal, 'websocket', target));
    signal.addEventListener('abort', onAbort, { once: true });

    const report = (response: IncomingMessage): void => {
      try {
        options.onUpgradeResponse?.({
          statusCode: response.statusCode ?? 0,
          statusMessage: response.statusMessage ?? '',
          headers: response.headers,
        });
      } catch {
        // An observer's mistake must not change the open.
      }
    };
    client.once('upgrade', report);
    client.on('unexpected-response', (_request: ClientRequest, response: IncomingMessage) => {
      const status = response.statusCode ?? 0;
      report(response);
      response.resume();
      fail(
        new TransportError(
          `${target} refused the WebSocket upgrade to ${path}: ${status} ${response.statusMessage ?? ''}`.trimEnd() +
            ` — ${upgradeHint(status)}`,
          { phase: 'websocket', retryable: status === 429 || status >= 500 },
        ),
      );
    });
    // Stays for the life of the socket: ws reports a failed handshake here, and terminate() may too.
    client.on('error', (error: Error) => fail(websocketError(error, target)));
    client.once('close', () =>
      fail(
        new TransportError(`${target} closed the connection during the WebSocket upgrade`, {
          phase: 'websocket',
          retryable: true,
        }),
      ),
    );
    client.once('open', () => {
      if (settled) return;
      if (client.protocol !== SUBPROTOCOL) {
        fail(subprotocolError(target, client.protocol));
        return;
      }
      settled = true;
      signal.removeEventListener('abort', onAbort);
      client.removeAllListeners('unexpected-response');
      client.removeAllListeners('close');
      // The stream's own listeners take over from here: it destroys itself with the error.
      client.removeAllListeners('error');
      resolve(webSocketStream(client, target));
    });
  });
}

function websocketError(error: Error, target: string): TransportError {
  if (/subprotocol/i.test(error.message)) return subprotocolError(target, undefined, error);
  // TLS worked, but the server hung up on the HTTP request or answered with something that is not HTTP:
  // what an MQTT-over-TLS port (8883) does with a WebSocket upgrade.
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || /socket hang up|parse error|expected http/i.test(error.message)) {
    return new TransportError(
      `${target} did not answer the WebSocket upgrade with HTTP (${error.message}): the port probably speaks ` +
        'MQTT over TLS (8883), the other transport: use transport mqtt for this port, or the WebSocket port (443)',
      { phase: 'websocket', cause: error, retryable: false, reason: 'wrong-transport' },
    );
  }
  return new TransportError(`the WebSocket upgrade with ${target} failed: ${error.message}`, {
    phase: 'websocket',
    cause: error,
    retryable: true,
  });
}

function subprotocolError(target: string, selected: string | undefined, cause?: Error): TransportError {
  const answer = selected === undefined || selected === '' ? 'selected none' : `selected "${selected}"`;
  return new TransportError(
    `${target} did not accept WebSocket subprotocol "${SUBPROTOCOL}" (it ${answer}${cause === undefined ? '' : `: ${cause.message}`}): ` +
      'check that the host is a DPS endpoint serving MQTT over WebSocket',
    { phase: 'websocket', cause, retryable: false },
  );
}

function upgradeHint(status: number): string {
  if (status === 404)
    return 'the server does not serve MQTT over WebSocket at this path: check the host and path';
  if (status === 401 || status === 403) return 'the server or a proxy in between refused the request';
  if (status === 429 || status >= 500) return 'the service is unavailable; try again later';
  return 'check that the host is a DPS endpoint serving MQTT over WebSocket';
}
