// The HTTPS requests that reach the emulator's WebSocket port: the service (enrollment management) API
// and the device API over HTTPS. This file only decides which room a request belongs to; each API
// lives in its own module and shares the registrar and the enrollment store with the MQTT listeners.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionPeer } from '../mqtt/mqtt-session.js';

/** One API's request handler; it owns the answer from here on. */
export type HttpsHandler = (request: IncomingMessage, response: ServerResponse, peer: SessionPeer) => void;

export interface HttpsApis {
  /** `/enrollments`, `/enrollmentGroups`, `/registrations` (the service API). */
  service?: HttpsHandler;
  /** `/{idScope}/registrations/{registrationId}/...` (the device API). */
  device?: HttpsHandler;
}

// Compared case-insensitively: the service's paths are (the Node service SDK itself sends both
// `/enrollmentGroups/...` and `/enrollmentgroups/.../attestationmechanism`).
const SERVICE_PREFIXES = ['/enrollments', '/enrollmentgroups', '/registrations'];

/** Which API a path belongs to, by its first segment. */
export function apiOfPath(pathname: string): keyof HttpsApis | undefined {
  const lower = pathname.toLowerCase();
  if (SERVICE_PREFIXES.some((prefix) => lower === prefix || lower.startsWith(`${prefix}/`))) {
    return 'service';
  }
  if (/^\/[^/]+\/registrations\/[^/]+\/(register|operations\/[^/]+)\/?$/.test(pathname)) return 'device';
  return undefined;
}

export function httpsRouter(apis: HttpsApis): HttpsHandler {
  return (request, response, peer) => {
    const pathname = pathnameOf(request.url);
    if (pathname === undefined) {
      // `GET http://[ HTTP/1.1` passes the HTTP parser but not new URL(): refuse it, never throw.
      response.writeHead(400, { 'content-type': 'text/plain', connection: 'close' });
      response.end('dps-mqtt emulator: the request target is not a valid URL\n');
      return;
    }
    const api = apiOfPath(pathname);
    const handler = api === undefined ? undefined : apis[api];
    if (handler !== undefined) {
      handler(request, response, peer);
      return;
    }
    // Neither API: the port is the MQTT-over-WebSocket endpoint.
    response.writeHead(api === undefined ? 426 : 404, {
      'content-type': 'text/plain',
      ...(api === undefined ? { upgrade: 'websocket' } : {}),
    });
    response.end(
      api === undefined
        ? 'dps-mqtt emulator: connect with a WebSocket to /$iothub/websocket, subprotocol mqtt\n'
        : `dps-mqtt emulator: the ${api} API is not enabled\n`,
    );
  };
}

/** The path of a request target; undefined when it is not a URL (the APIs may then parse it safely). */
export function pathnameOf(url: string | undefined): string | undefined {
  try {
    return new URL(url ?? '/', 'https://emulator').pathname;
  } catch {
    return undefined;
  }
}
