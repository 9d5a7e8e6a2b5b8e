// DPS shared access signatures and group-key derivation (protocol.md, "SAS token").
import { createHmac } from 'node:crypto';

export const SAS_KEY_NAME = 'registration';
/** The Node SDK uses one hour; the token only has to outlive the CONNECT. */
export const DEFAULT_SAS_LIFETIME_SECONDS = 3600;

/** RFC 3986 percent-encoding of everything but unreserved characters. */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export function sasResource(idScope: string, registrationId: string): string {
  return `${idScope}/registrations/${registrationId}`;
}

/** base64(HMAC-SHA256(key = base64decode(keyBase64), resourceAsSigned + "\n" + expiry)). */
export function computeSasSignature(
  keyBase64: string,
  resourceAsSigned: string,
  expiresAtSeconds: number,
): string {
  return createHmac('sha256', Buffer.from(keyBase64, 'base64'))
    .update(`${resourceAsSigned}\n${expiresAtSeconds}`)
    .digest('base64');
}

/** The device key of a group enrollment: base64(HMAC-SHA256(key = base64decode(groupKey), registrationId)). */
export function deriveDeviceKey(groupKeyBase64: string, registrationId: string): string {
  return createHmac('sha256', Buffer.from(groupKeyBase64, 'base64')).update(registrationId).digest('base64');
}

export interface SasTokenOptions {
  idScope: string;
  registrationId: string;
  /** The device key (base64). */
  key: string;
  expiresAtSeconds: number;
  /** `encoded` (documented, default) or `raw` (what the official Node SDK sends). */
  resourceEncoding?: 'encoded' | 'raw';
}

export function createSasToken(options: SasTokenOptions): string {
  const resource = sasResource(options.idScope, options.registrationId);
  const resourceAsSent = options.resourceEncoding === 'raw' ? resource : uriEncode(resource);
  const signature = computeSasSignature(options.key, resourceAsSent, options.expiresAtSeconds);
  return `SharedAccessSignature sr=${resourceAsSent}&sig=${uriEncode(signature)}&se=${options.expiresAtSeconds}&skn=${SAS_KEY_NAME}`;
}

export interface ParsedSasToken {
  /** The resource, decoded. */
  resource: string;
  /** The resource exactly as it appeared in the token: this is the form that was signed. */
  resourceAsSent: string;
  /** The base64 signature, decoded from its URL form. */
  signature: string;
  expiresAtSeconds: number;
  keyName: string | undefined;
}

/** Parses `SharedAccessSignature sr=...&sig=...&se=...&skn=...`; undefined when it is not one. */
export function parseSasToken(token: string): ParsedSasToken | undefined {
  const prefix = 'SharedAccessSignature ';
  if (!token.startsWith(prefix)) return undefined;
  const fields = new Map<string, string>();
  for (const pair of token.slice(prefix.length).split('&')) {
    const equals = pair.indexOf('=');
    if (equals <= 0) return undefined;
    fields.set(pair.slice(0, equals), pair.slice(equals + 1));
  }
  const resourceAsSent = fields.get('sr');
  const signature = fields.get('sig');
  const expiry = fields.get('se');
  if (
    resourceAsSent === undefined ||
    signature === undefined ||
    expiry === undefined ||
    !/^\d{1,12}$/.test(expiry)
  ) {
    return undefined;
  }
  const resource = safeDecode(resourceAsSent);
  const decodedSignature = safeDecode(signature);
  if (resource === undefined || decodedSignature === undefined) return undefined;
  return {
    resource,
    resourceAsSent,
    signature: decodedSignature,
    expiresAtSeconds: Number(expiry),
    keyName: fields.get('skn'),
  };
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
