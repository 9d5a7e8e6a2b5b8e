// A direct TCP connection to the service (diagnose's TCP step), and the TCP failure as a typed error, which
// the TLS IO shares (its TLS socket makes its own TCP connection).
import net from 'node:net';
import { TransportError } from '../protocol/errors.js';
import { checkEndpoint } from './check-endpoint.js';
import { abortedError, startDeadline } from './deadline.js';
import { forgetLookup, sharedLookup } from './dns-cache.js';
import { hostPort, unbracket } from './host-port.js';

export interface TcpOptions {
  host: string;
  port: number;
  signal?: AbortSignal | undefined;
  /** Default DEFAULT_OPEN_TIMEOUT_MS; Infinity leaves the bound to `signal`. */
  timeoutMs?: number | undefined;
}

/** Resolves with a connected socket (Nagle off); rejects with TransportError phase 'tcp', nothing left open. */
export async function openTcp(options: TcpOptions): Promise<net.Socket> {
  checkEndpoint('dps', options.host, options.port);
  const target = hostPort(options.host, options.port);
  const deadline = startDeadline(options);
  const { signal } = deadline;
  try {
    return await new Promise<net.Socket>((resolve, reject) => {
      if (signal.aborted) {
        reject(abortedError(signal, 'tcp', target));
        return;
      }
      const name = unbracket(options.host);
      // The name's lookup is shared with other connections for a moment (dns-cache.ts).
      const socket = net.connect({ host: name, port: options.port, noDelay: true, lookup: sharedLookup });
      const cleanup = (): void => {
        signal.removeEventListener('abort', onAbort);
        socket.off('connect', onConnect);
        socket.off('error', onError);
      };
      const onAbort = (): void => {
        cleanup();
        socket.destroy();
        reject(abortedError(signal, 'tcp', target));
      };
      const onConnect = (): void => {
        cleanup();
        resolve(socket);
      };
      const onError = (error: NodeJS.ErrnoException): void => {
        cleanup();
        socket.destroy();
        forgetLookup(name); // the addresses may be stale: look the name up again
        reject(tcpError(error, target));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', onConnect);
      socket.once('error', onError);
    });
  } finally {
    deadline.dispose();
  }
}

/** A connection failure as a TransportError in phase 'tcp', with what to check. */
export function tcpError(error: NodeJS.ErrnoException, target: string): TransportError {
  const code = error.code ?? error.message;
  const hints: Record<string, string> = {
    ECONNREFUSED: 'nothing listens there: check the host and port',
    ENOTFOUND: 'the host name does not resolve: check it',
    EAI_AGAIN: 'name resolution failed for now: check the network and DNS',
    ETIMEDOUT:
      'no answer: a firewall may drop the port; MQTT over WebSocket on 443 or a proxy may get through',
    EHOSTUNREACH: 'the host is unreachable: check the network',
    ENETUNREACH: 'the network is unreachable: check the network',
    ECONNRESET: 'the connection was reset: a firewall may block the port',
  };
  const hint = hints[code] ?? 'check the host, port and network path';
  return new TransportError(`could not connect to ${target}: ${code} — ${hint}`, {
    phase: 'tcp',
    cause: error,
    retryable: code !== 'ENOTFOUND',
    ...(code === 'ECONNREFUSED' ? { reason: 'connection-refused' as const } : {}),
    ...(code === 'ENOTFOUND' ? { reason: 'host-not-found' as const } : {}),
  });
}
