// DPS request and response topics (protocol.md, "Topics").
import { ProtocolError } from './errors.js';
import { clampRetryAfterSeconds } from './limits.js';

export const SUBSCRIBE_TOPIC = '$dps/registrations/res/#';
const RESPONSE_PREFIX = '$dps/registrations/res/';
const REGISTER_PREFIX = '$dps/registrations/PUT/iotdps-register/?';
const STATUS_PREFIX = '$dps/registrations/GET/iotdps-get-operationstatus/?';

export function registerTopic(requestId: string): string {
  return `${REGISTER_PREFIX}$rid=${encodeURIComponent(requestId)}`;
}

export function operationStatusTopic(requestId: string, operationId: string): string {
  return `${STATUS_PREFIX}$rid=${encodeURIComponent(requestId)}&operationId=${encodeURIComponent(operationId)}`;
}

export function responseTopic(statusCode: number, requestId: string, retryAfterSeconds?: number): string {
  const retryAfter = retryAfterSeconds === undefined ? '' : `&retry-after=${retryAfterSeconds}`;
  return `${RESPONSE_PREFIX}${statusCode}/?$rid=${encodeURIComponent(requestId)}${retryAfter}`;
}

export interface ResponseTopic {
  statusCode: number;
  requestId: string;
  /** Clamped to the documented limit; undefined when absent or not a usable number. */
  retryAfterSeconds: number | undefined;
}

/** Parses `$dps/registrations/res/{status}/?$rid={rid}[&retry-after={seconds}]`. */
export function parseResponseTopic(topic: string): ResponseTopic {
  if (!topic.startsWith(RESPONSE_PREFIX)) {
    throw new ProtocolError(
      `unexpected topic ${describeTopic(topic)}: DPS answers on ${RESPONSE_PREFIX}{status}/?$rid=...`,
    );
  }
  const rest = topic.slice(RESPONSE_PREFIX.length);
  const match = /^(\d{3})\/\?(.*)$/s.exec(rest);
  if (!match) {
    throw new ProtocolError(
      `malformed response topic ${describeTopic(topic)}: expected a 3-digit status and a query`,
    );
  }
  const statusCode = Number(match[1]);
  const params = new URLSearchParams(match[2]);
  const requestId = params.get('$rid');
  if (statusCode < 100 || !requestId) {
    throw new ProtocolError(`malformed response topic ${describeTopic(topic)}: status or $rid missing`);
  }
  return { statusCode, requestId, retryAfterSeconds: parseRetryAfter(params.get('retry-after')) };
}

/** `retry-after` is whole or fractional seconds; negative or non-numeric values are ignored. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || !/^\d{1,15}(\.\d{1,6})?$/.test(value.trim())) return undefined;
  return clampRetryAfterSeconds(Number(value));
}

export type RequestTopic =
  | { kind: 'register'; requestId: string }
  | { kind: 'operationStatus'; requestId: string; operationId: string };

/** The emulator's side: which request a client published; undefined for any other topic. */
export function parseRequestTopic(topic: string): RequestTopic | undefined {
  const prefix = topic.startsWith(REGISTER_PREFIX)
    ? REGISTER_PREFIX
    : topic.startsWith(STATUS_PREFIX)
      ? STATUS_PREFIX
      : undefined;
  if (prefix === undefined) return undefined;
  const params = new URLSearchParams(topic.slice(prefix.length));
  const requestId = params.get('$rid');
  if (!requestId) return undefined;
  if (prefix === REGISTER_PREFIX) return { kind: 'register', requestId };
  const operationId = params.get('operationId');
  return operationId ? { kind: 'operationStatus', requestId, operationId } : undefined;
}

/** Topics come from the network: quote them and cut them short in messages. */
function describeTopic(topic: string): string {
  return JSON.stringify(topic.length > 120 ? `${topic.slice(0, 120)}...` : topic);
}
