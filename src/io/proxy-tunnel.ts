// A TCP tunnel through an HTTP proxy (CONNECT host:port), the IO beneath TLS for both transports.
// Node's own http client speaks CONNECT: no dependency, and Basic auth is one header.
import type http from 'node:http';
import type { Socket } from 'node:net';
import { InvalidInputError, ProxyError } from '../protocol/errors.js';
import { checkEndpoint } from './check-endpoint.js';
import { abortedError, isDeadlineExceeded, startDeadline } from './deadline.js';
import { hostPort, unbracket } from './host-port.js';
import type { ProxyOptions } from './types.js';

export interface ProxyTunnelOptions {
  proxy: ProxyOptions;
  targetHost: string;
  targetPort: number;
  signal?: AbortSignal | undefined;
  /** Default DEFAULT_OPEN_TIMEOUT_MS; Infinity leaves the bound to `signal`. */
  timeoutMs?: number | undefined;
}

/**
 * Resolves with a socket connected, through the proxy, to targetHost:targetPort (Nagle off). Rejects with
 * ProxyError (statusCode set when the proxy answered) and leaves nothing open.
 */
export async function openProxyTunnel(options: ProxyTunnelOptions): Promise<Socket> {
  const { proxy } = options;
  checkEndpoint('proxy', proxy.host, proxy.port);
  checkEndpoint('target', options.targetHost, options.targetPort);
  if (proxy.username?.includes(':')) {
    throw new InvalidInputError(
      'proxy.username',
      'proxy user name cannot contain ":" (HTTP Basic authentication)',
    );
  }
  const proxyName = hostPort(proxy.host, proxy.port);
  const target = hostPort(options.targetHost, options.targetPort);
  const headers: http.OutgoingHttpHeaders = { Host: target };
  if (proxy.username !== undefined) {
    const credentials = Buffer.from(`${proxy.username}:${proxy.password ?? ''}`, 'utf8').toString('base64');
    headers['Proxy-Authorization'] = `Basic ${credentials}`;
  }
  // Loaded here, not at the top: Node's HTTP stack costs a direct connection's start-up a millisecond or two.
  const { request: httpRequest } = await import('node:http');
  const deadline = startDeadline(options);
  const { signal } = deadline;

  try {
    return await new Promise<Socket>((resolve, reject) => {
      if (signal.aborted) {
        reject(tunnelAborted(signal, proxyName, target));
        return;
      }
      const request = httpRequest({
        method: 'CONNECT',
        host: unbracket(proxy.host),
        port: proxy.port,
        path: target,
        headers,
        agent: false,
        setHost: false,
      });
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        return true;
      };
      const onAbort = (): void => {
        if (!settle()) return;
        request.destroy();
        reject(tunnelAborted(signal, proxyName, target));
      };
      signal.addEventListener('abort', onAbort, { once: true });

      // Node reports every answer to CONNECT here, 2xx or not; the socket is ours from now on.
      request.once('connect', (response: http.IncomingMessage, socket: Socket, head: Buffer) => {
        const status = response.statusCode ?? 0;
        if (!settle()) {
          socket.destroy();
          return;
        }
        if (status >= 200 && status < 300) {
          socket.setNoDelay(true); // an MQTT exchange is a few small packets: Nagle would stall each one
          if (head.length > 0) socket.unshift(head);
          resolve(socket);
          return;
        }
        socket.destroy();
        const answer = `${status} ${response.statusMessage ?? ''}`.trim();
        reject(
          new ProxyError(
            `proxy ${proxyName} refused CONNECT to ${target}: ${answer} — ${refusalHint(status, proxy)}`,
            {
              statusCode: status,
              retryable: status === 429 || status >= 500,
            },
          ),
        );
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (!settle()) return;
        request.destroy();
        reject(
          new ProxyError(
            `could not reach proxy ${proxyName}: ${error.code ?? error.message} — ${networkHint(error.code)}`,
            {
              cause: error,
              retryable: error.code !== 'ENOTFOUND',
            },
          ),
        );
      });
      request.once('close', () => {
        if (!settle()) return;
        reject(
          new ProxyError(`proxy ${proxyName} closed the connection without answering CONNECT to ${target}`, {
            retryable: true,
          }),
        );
      });
      request.end();
    });
  } finally {
    deadline.dispose();
  }
}

function tunnelAborted(signal: AbortSignal, proxyName: string, target: string): Error {
  if (isDeadlineExceeded(signal)) {
    return new ProxyError(
      `proxy ${proxyName} did not open a tunnel to ${target} in time — check the proxy host and port, ` +
        'and that the proxy can reach the target',
      { retryable: true, cause: signal.reason },
    );
  }
  return abortedError(signal, 'proxy', `the tunnel through proxy ${proxyName} to ${target}`);
}

function refusalHint(status: number, proxy: ProxyOptions): string {
  if (status === 407) {
    return proxy.username === undefined
      ? 'the proxy requires authentication: set the proxy user name and password'
      : 'check the proxy user name and password';
  }
  if (status === 403 || status === 405) return 'the proxy does not allow tunnels to this host and port';
  if (status === 404 || status === 502 || status === 504) {
    return 'the proxy could not reach the target: check the DPS host name and that outbound traffic to it is allowed';
  }
  if (status === 429 || status >= 500) return 'the proxy is unavailable; try again later';
  return 'the proxy does not accept this CONNECT request';
}

function networkHint(code: string | undefined): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'nothing listens there: check the proxy host and port';
    case 'ENOTFOUND':
      return 'the proxy host name does not resolve: check it';
    case 'ECONNRESET':
      return 'the proxy dropped the connection: check that it is an HTTP proxy (not SOCKS or HTTPS)';
    default:
      return 'check the proxy host and port and the network path to it';
  }
}
