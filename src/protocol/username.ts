// The MQTT user name DPS expects (protocol.md, "CONNECT").

export const DEFAULT_API_VERSION = '2019-03-31';

export interface UsernameParts {
  idScope: string;
  registrationId: string;
  apiVersion: string;
  /** The user agent, sent URL-encoded as `ClientVersion`. */
  userAgent?: string;
}

export function buildUsername(parts: UsernameParts): string {
  const base = `${parts.idScope}/registrations/${parts.registrationId}/api-version=${parts.apiVersion}`;
  return parts.userAgent ? `${base}&ClientVersion=${encodeURIComponent(parts.userAgent)}` : base;
}

export interface ParsedUsername {
  idScope: string;
  registrationId: string;
  apiVersion: string;
  clientVersion?: string;
}

/** Accepts the documented form and the SDKs' form with `&ClientVersion=...`; undefined otherwise. */
export function parseUsername(username: string): ParsedUsername | undefined {
  const match = /^([^/]+)\/registrations\/([^/]+)\/(.*)$/.exec(username);
  if (!match) return undefined;
  const [, idScope, registrationId, query] = match as unknown as [string, string, string, string];
  const params = new URLSearchParams(query);
  const apiVersion = params.get('api-version');
  if (!apiVersion) return undefined;
  const clientVersion = params.get('ClientVersion');
  return clientVersion === null
    ? { idScope, registrationId, apiVersion }
    : { idScope, registrationId, apiVersion, clientVersion };
}
