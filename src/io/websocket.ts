// MQTT over WebSocket: TLS (directly or through the proxy tunnel), then the upgrade to the DPS path with
// subprotocol `mqtt`, then a Duplex of the binary messages (websocket-stream.ts): the spec's `mqtt_transport_ws_io`.
// The handshake and framing are our own (websocket-handshake.ts, websocket-frames.ts), checked against `ws`
// as the server in tests: a device needs a tenth of what `ws` does, and its HTTP client, its load time
// (about 15 ms) and its per-connection objects were the largest costs of a registration after TLS.
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { InvalidInputError, TransportError } from '../protocol/errors.js';
import { abortedError, startDeadline } from './deadline.js';
import { hostPort, unbracket } from './host-port.js';
import { openTls } from './tls.js';
import { DEFAULT_WS_PATH, DEFAULT_WS_PORT, type IoOptions } from './types.js';
import {
  buildUpgradeRequest,
  headerText,
  readUpgradeResponse,
  type UpgradeResponse,
  UpgradeResponseParseError,
  upgradeProblem,
} from './websocket-handshake.js';
import { webSocketStream } from './websocket-stream.js';

export type { UpgradeResponse } from './websocket-handshake.js';

export interface WebSocketIoOptions extends IoOptions {
  /** Default `/$iothub/websocket`. */
  path?: string;
  /**
   * Called with the server's answer to the upgrade request (101 or not), before the open settles: what
   * `dps-mqtt diagnose` reports (status, subprotocol, the `Date` header). Changes nothing else.
   */
  onUpgradeResponse?: (response: UpgradeResponse) => void;
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
  try {
    const socket = await openTls({
      ...options,
      signal: deadline.signal,
      timeoutMs: Number.POSITIVE_INFINITY,
    });
    return await upgrade(socket, options, deadline.signal);
  } finally {
    deadline.dispose();
  }
}

/** The Host header: the name as dialled, IPv6 bracketed, with the port unless it is the default 443. */
function hostHeader(host: string, port: number): string {
  const name = isIP(unbracket(host)) === 6 ? `[${unbracket(host)}]` : host;
  return port === DEFAULT_WS_PORT ? name : `${name}:${port}`;
}

function upgrade(socket: TLSSocket, options: WebSocketIoOptions, signal: AbortSignal): Promise<Duplex> {
  const target = hostPort(options.host, options.port);
  const path = options.path ?? DEFAULT_WS_PATH;
  return new Promise<Duplex>((resolve, reject) => {
    if (signal.aborted) {
      socket.destroy();
      reject(abortedError(signal, 'websocket', target));
      return;
    }
    const request = buildUpgradeRequest(path, hostHeader(options.host, options.port), SUBPROTOCOL);
    let received: Buffer = Buffer.alloc(0);
    const cleanUp = (): void => {
      signal.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const fail = (error: Error): void => {
      cleanUp();
      socket.on('error', () => {}); // late errors of a socket being torn down
      socket.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(abortedError(signal, 'websocket', target));
    const onError = (error: Error): void => fail(websocketError(error, target));
    const onClose = (): void =>
      fail(
        received.length === 0
          ? websocketError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), target)
          : new TransportError(`${target} closed the connection during the WebSocket upgrade`, {
              phase: 'websocket',
              retryable: true,
            }),
      );
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      let answer: ReturnType<typeof readUpgradeResponse>;
      try {
        answer = readUpgradeResponse(received);
      } catch (error) {
        const reason =
          error instanceof UpgradeResponseParseError ? `parse error: ${error.message}` : String(error);
        fail(websocketError(new Error(reason), target));
        return;
      }
      if (answer === undefined) return;
      const { response, rest } = answer;
      try {
        options.onUpgradeResponse?.(response);
      } catch {
        // An observer's mistake must not change the open.
      }
      const refusal = refusalOf(response, request.expectedAccept, target, path);
      if (refusal !== undefined) {
        fail(refusal);
        return;
      }
      cleanUp();
      resolve(webSocketStream(socket, target, rest));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(request.bytes);
  });
}

/** Why a complete answer does not open the WebSocket, or undefined when it does. */
function refusalOf(
  response: UpgradeResponse,
  expectedAccept: string,
  target: string,
  path: string,
): TransportError | undefined {
  const status = response.statusCode;
  if (status !== 101) {
    return new TransportError(
      `${target} refused the WebSocket upgrade to ${path}: ${status} ${response.statusMessage}`.trimEnd() +
        ` — ${upgradeHint(status)}`,
      { phase: 'websocket', retryable: status === 429 || status >= 500 },
    );
  }
  const problem = upgradeProblem(response, expectedAccept);
  if (problem !== undefined) {
    return new TransportError(`the WebSocket upgrade with ${target} failed: ${problem}`, {
      phase: 'websocket',
      retryable: true,
    });
  }
  const selected = headerText(response.headers['sec-websocket-protocol']);
  return selected === SUBPROTOCOL ? undefined : subprotocolError(target, selected);
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
