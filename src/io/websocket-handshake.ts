// The client's opening handshake (RFC 6455 §4.1-4.2): the HTTP/1.1 upgrade request, and the reading and
// checking of the server's answer. Pure: no sockets.
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { randomFromPool } from '../protocol/random-pool.js';

/** The HTTP answer to the WebSocket upgrade request. */
export interface UpgradeResponse {
  statusCode: number;
  statusMessage: string;
  /** Names in lower case; repeated headers joined with ", " (set-cookie: an array), as Node's http does. */
  headers: IncomingHttpHeaders;
}

/** A response head longer than this is not a WebSocket server's answer (Node's http allows 16 KiB). */
export const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;

const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface UpgradeRequest {
  /** The request bytes, ready to write. */
  bytes: Buffer;
  /** The Sec-WebSocket-Accept value a genuine answer carries. */
  expectedAccept: string;
}

/** GET with the upgrade headers; `hostHeader` already bracketed for IPv6 and with the port when not 443. */
export function buildUpgradeRequest(path: string, hostHeader: string, subprotocol: string): UpgradeRequest {
  const key = randomFromPool(16).toString('base64');
  const text =
    `GET ${path} HTTP/1.1\r\n` +
    `Host: ${hostHeader}\r\n` +
    'Connection: Upgrade\r\n' +
    'Upgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\n' +
    `Sec-WebSocket-Key: ${key}\r\n` +
    `Sec-WebSocket-Protocol: ${subprotocol}\r\n\r\n`;
  return { bytes: Buffer.from(text, 'latin1'), expectedAccept: acceptFor(key) };
}

/** §4.2.2: base64(SHA-1(key + GUID)). */
export function acceptFor(key: string): string {
  return createHash('sha1')
    .update(key + ACCEPT_GUID)
    .digest('base64');
}

/** The answer's head could not be read as HTTP/1.x. */
export class UpgradeResponseParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpgradeResponseParseError';
  }
}

/**
 * Finds a complete response head in `bytes`: undefined while more is needed; the response and the bytes
 * after the head (the server's first frames) once it is there. Throws UpgradeResponseParseError when the
 * bytes are not HTTP or the head grows past MAX_RESPONSE_HEAD_BYTES.
 */
export function readUpgradeResponse(bytes: Buffer): { response: UpgradeResponse; rest: Buffer } | undefined {
  if (!'HTTP/'.startsWith(bytes.subarray(0, 5).toString('latin1'))) {
    throw new UpgradeResponseParseError('expected HTTP/1.1, got bytes that are not HTTP');
  }
  const end = bytes.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0) {
    if (bytes.length > MAX_RESPONSE_HEAD_BYTES) {
      throw new UpgradeResponseParseError(
        `the response head is longer than ${MAX_RESPONSE_HEAD_BYTES} bytes`,
      );
    }
    return undefined;
  }
  const lines = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (status === null) {
    throw new UpgradeResponseParseError(
      `expected an HTTP/1.1 status line, got ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`,
    );
  }
  const headers: IncomingHttpHeaders = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || /[\s]/.test(line.slice(0, colon))) {
      throw new UpgradeResponseParseError(`malformed header line ${JSON.stringify(line.slice(0, 60))}`);
    }
    addHeader(headers, line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return {
    response: { statusCode: Number(status[1]), statusMessage: status[2] ?? '', headers },
    rest: bytes.subarray(end + 4),
  };
}

function addHeader(headers: IncomingHttpHeaders, name: string, value: string): void {
  if (name === 'set-cookie') {
    headers[name] = [...(headers[name] ?? []), value];
    return;
  }
  const earlier = headers[name];
  headers[name] = earlier === undefined ? value : `${String(earlier)}, ${value}`;
}

/**
 * What is wrong with a 101 answer (§4.2.2 items 2-6), or undefined when it is a valid WebSocket upgrade.
 * The subprotocol is checked by the caller, which has its own error for it.
 */
export function upgradeProblem(response: UpgradeResponse, expectedAccept: string): string | undefined {
  const upgrade = headerText(response.headers.upgrade).toLowerCase();
  if (upgrade !== 'websocket') return `the Upgrade header is ${JSON.stringify(upgrade)}, not "websocket"`;
  const connection = headerText(response.headers.connection)
    .toLowerCase()
    .split(/\s*,\s*/);
  if (!connection.includes('upgrade')) return 'the Connection header does not say "Upgrade"';
  if (headerText(response.headers['sec-websocket-accept']) !== expectedAccept) {
    return 'the Sec-WebSocket-Accept header does not match the key sent';
  }
  const extensions = headerText(response.headers['sec-websocket-extensions']);
  if (extensions !== '') return `the server chose extensions that were not offered (${extensions})`;
  return undefined;
}

export function headerText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}
