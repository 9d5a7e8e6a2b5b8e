// The service (enrollment management) API's credentials (protocol.md, "The service API"): a connection
// string `HostName=...;SharedAccessKeyName=...;SharedAccessKey=...` and the SAS token derived from it,
// `SharedAccessSignature sr={HostName}&sig={urlencoded base64}&skn={key name}&se={expiry}`, signed with
// HMAC-SHA256 over `sr + "\n" + se` (the resource as it appears in the token, raw or URL-encoded).
import { timingSafeEqual } from 'node:crypto';
import { computeSasSignature, parseSasToken, uriEncode } from './sas.js';

/** The policy name of a DPS instance's all-rights shared access policy. */
export const SERVICE_KEY_NAME = 'provisioningserviceowner';

export interface ServiceConnectionString {
  hostName: string;
  keyName: string;
  /** base64 */
  key: string;
}

export function formatServiceConnectionString(parts: ServiceConnectionString): string {
  return `HostName=${parts.hostName};SharedAccessKeyName=${parts.keyName};SharedAccessKey=${parts.key}`;
}

/** Parses `HostName=...;SharedAccessKeyName=...;SharedAccessKey=...` (any order); undefined when a part is missing. */
export function parseServiceConnectionString(text: string): ServiceConnectionString | undefined {
  const fields = new Map<string, string>();
  for (const part of text.split(';')) {
    if (part.trim() === '') continue;
    const equals = part.indexOf('=');
    if (equals <= 0) return undefined;
    fields.set(part.slice(0, equals).trim(), part.slice(equals + 1).trim());
  }
  const hostName = fields.get('HostName');
  const keyName = fields.get('SharedAccessKeyName');
  const key = fields.get('SharedAccessKey');
  if (!hostName || !keyName || !key) return undefined;
  return { hostName, keyName, key };
}

/** A token as the official service SDKs make it: `sr` is the host name, `skn` the key name. */
export function createServiceSasToken(
  credentials: ServiceConnectionString,
  expiresAtSeconds: number,
  options: { resourceEncoding?: 'encoded' | 'raw' } = {},
): string {
  const resource =
    options.resourceEncoding === 'encoded' ? uriEncode(credentials.hostName) : credentials.hostName;
  const signature = computeSasSignature(credentials.key, resource, expiresAtSeconds);
  return `SharedAccessSignature sr=${resource}&sig=${uriEncode(signature)}&skn=${uriEncode(credentials.keyName)}&se=${expiresAtSeconds}`;
}

export type ServiceTokenCheck = { ok: true } | { ok: false; reason: string };

/**
 * Checks an `Authorization` header value: a well-formed token for `keyName`, whose resource is one of
 * `hostNames` (optionally followed by a path), not expired, signed with `key`. The reason says which.
 */
export function verifyServiceSasToken(
  authorization: string | undefined,
  expected: { keyName: string; key: string; hostNames: string[]; nowSeconds: number },
): ServiceTokenCheck {
  if (authorization === undefined || authorization.trim() === '') {
    return { ok: false, reason: 'the Authorization header is missing: send a SharedAccessSignature token' };
  }
  const token = parseSasToken(authorization.trim());
  if (token === undefined) {
    return {
      ok: false,
      reason: 'the Authorization header is not a SharedAccessSignature token (sr=...&sig=...&skn=...&se=...)',
    };
  }
  const keyName = token.keyName === undefined ? undefined : safeDecode(token.keyName);
  if (keyName !== expected.keyName) {
    return {
      ok: false,
      reason: `the token's skn ${JSON.stringify(keyName ?? '')} is not the policy "${expected.keyName}"`,
    };
  }
  const resourceHost = token.resource.split('/')[0]?.toLowerCase() ?? '';
  if (!expected.hostNames.some((host) => host.toLowerCase() === resourceHost)) {
    return {
      ok: false,
      reason: `the token is for ${JSON.stringify(token.resource)}, not this service (${expected.hostNames[0] ?? ''})`,
    };
  }
  if (token.expiresAtSeconds <= expected.nowSeconds) {
    return {
      ok: false,
      reason: `the token expired at ${new Date(token.expiresAtSeconds * 1000).toISOString()}`,
    };
  }
  const sent = Buffer.from(token.signature, 'base64');
  // Signed over the resource exactly as sent; the encoded and raw forms are tried as well, as the service does.
  const forms = new Set([token.resourceAsSent, token.resource, uriEncode(token.resource)]);
  for (const form of forms) {
    const computed = Buffer.from(computeSasSignature(expected.key, form, token.expiresAtSeconds), 'base64');
    if (computed.length === sent.length && timingSafeEqual(computed, sent)) return { ok: true };
  }
  return { ok: false, reason: 'the token signature does not match the service key' };
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
