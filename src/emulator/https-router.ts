// The HTTPS requests that reach the emulator's WebSocket port: the service (enrollment management) API
// and the device API over HTTPS. This file only decides which room a request belongs to; each API
// lives in its own module and shares the registrar and the enrollment store with the MQTT listeners.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionPeer } from './session.js';

/** One API's request handler; it owns the answer from here on. */
export type HttpsHandler = (request: IncomingMessage, response: ServerResponse, peer: SessionPeer) => void;

export interface HttpsApis {
  /** `/enrollments`, `/enrollmentGroups`, `/registrations` (the service API). */
  service?: HttpsHandler;
  /** `/{idScope}/registrations/{registrationId}/...` (the device API). */
  device?: HttpsHandler;
}

const SERVICE_PREFIXES = ['/enrollments', '/enrollmentGroups', '/registrations'];

/** Which API a path belongs to, by its first segment. */
export function apiOfPath(pathname: string): keyof HttpsApis | undefined {
  if (SERVICE_PREFIXES.some((prefix) => pathname === prefix || pathname.startsWith(`${prefix}/`))) {
    return 'service';
  }
  if (/^\/[^/]+\/registrations\/[^/]+\/(register|operations\/[^/]+)\/?$/.test(pathname)) return 'device';
  return undefined;
}

export function httpsRouter(apis: HttpsApis): HttpsHandler {
  return (request, response, peer) => {
    const pathname = new URL(request.url ?? '/', 'https://emulator').pathname;
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
