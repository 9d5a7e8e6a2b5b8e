// TLS session resumption across a process's connections to the same endpoint: a registration after the
// first (a warm process, a fleet) resumes the TLS session instead of repeating the full handshake, which
// saves the key exchange's CPU on both ends and, on the client, the server certificate's check.
import { createHash } from 'node:crypto';
import { withoutServerCertificate } from './tls-session-der.js';
import type { IoOptions } from './types.js';

/**
 * At most this many endpoints (and trust and identity combinations) are remembered; the least recently
 * used is forgotten first. Node's https.Agent keeps 100 (`maxCachedSessions`).
 */
export const MAX_CACHED_TLS_SESSIONS = 100;

/**
 * One serialized session (TLS 1.3 ticket or TLS 1.2 session) per key, most recently used last, kept without
 * the server's certificate (tls-session-der.ts: decoding it again is most of a resumption's TLS work).
 */
const sessions = new Map<string, Buffer>();

/**
 * A session is offered only to a connection that would have made the same one: the same host, port and
 * SNI name (a resumed session skips the server's certificate check, which the session's first handshake
 * did for this name), the same trust (CA set, trust mode, verification on or off), the same client
 * identity (a session carries the client certificate it was made with) and the same proxy. Hashes, not
 * the PEM text: the key holds no certificate material, and never a private key or password.
 */
export function tlsSessionKey(options: IoOptions, servername: string | undefined): string {
  const certificate = options.clientCertificate?.certPem;
  return [
    options.host,
    options.port,
    servername ?? '',
    options.insecureSkipVerify === true ? 'insecure' : 'verify',
    options.trustMode ?? 'replace',
    options.trustedCa === undefined ? '' : digest(options.trustedCa),
    certificate === undefined ? '' : digest(certificate),
    options.proxy === undefined ? '' : `${options.proxy.host}:${options.proxy.port}`,
  ].join('\n');
}

/** The session to offer for this key, if one is remembered. */
export function cachedTlsSession(key: string): Buffer | undefined {
  const session = sessions.get(key);
  if (session !== undefined) {
    // Most recently used last: what the bound evicts first is the oldest.
    sessions.delete(key);
    sessions.set(key, session);
  }
  return session;
}

/**
 * Remembers the newest session for the key. Call only for a connection whose handshake (including the
 * certificate and host name checks) succeeded: a session from a refused server must never be offered.
 */
export function rememberTlsSession(key: string, session: Buffer): void {
  sessions.delete(key);
  sessions.set(key, withoutServerCertificate(session));
  serversWithoutSessions.delete(key);
  endFirstHandshake(key);
  if (sessions.size > MAX_CACHED_TLS_SESSIONS) {
    const oldest = sessions.keys().next().value;
    if (oldest !== undefined) sessions.delete(oldest);
  }
}

/** Forgets the key's session if it is still `session` (a resumption with it failed). */
export function forgetTlsSession(key: string, session: Buffer): void {
  if (sessions.get(key) === session) sessions.delete(key);
}

/**
 * A fleet's first connections to an endpoint all start before any of them has a session: without
 * coordination each would make a full handshake (the server certificate's check, and on the server the
 * certificate's signature), a tenth of a 1000-device run at concurrency 100. So while one connection makes
 * the first handshake to a key, the others wait for its session (and only then connect) and resume
 * it. The wait ends when the session is remembered, when that handshake fails, or a grace after it
 * succeeded (the ticket of TLS 1.3 follows the handshake by about a round trip): a server that gave no
 * session is then remembered as such, and connections to it no longer wait.
 */
export type TlsSessionPlan =
  | { kind: 'resume'; session: Buffer }
  | { kind: 'wait'; firstHandshake: Promise<void> }
  | { kind: 'first'; handshake: FirstHandshake | undefined };

/** What the connection making the first handshake to a key reports, so that those waiting can go on. */
export interface FirstHandshake {
  /** The handshake passed its checks, `elapsedMs` after the connection began. */
  secured(elapsedMs: number): void;
  /** The handshake failed, or its connection ended: the waiting connections go ahead without a session. */
  ended(): void;
}

interface InFlight {
  done: Promise<void>;
  finish: () => void;
  grace: NodeJS.Timeout | undefined;
}

const firstHandshakes = new Map<string, InFlight>();
/** Keys whose server gave the first handshake no session (bounded like the sessions). */
const serversWithoutSessions = new Set<string>();

/** The grace for a ticket after the first handshake: twice its duration, within 50 ms and 2 s. */
export function ticketGraceMs(elapsedMs: number): number {
  return Math.min(2000, Math.max(50, 2 * elapsedMs));
}

/** What a new connection to `key` offers: a remembered session, the wait for one, or the first handshake. */
export function planTlsSession(key: string): TlsSessionPlan {
  const session = cachedTlsSession(key);
  if (session !== undefined) return { kind: 'resume', session };
  const inFlight = firstHandshakes.get(key);
  if (inFlight !== undefined) return { kind: 'wait', firstHandshake: inFlight.done };
  if (serversWithoutSessions.has(key)) return { kind: 'first', handshake: undefined };
  let finish = (): void => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const entry: InFlight = { done, finish, grace: undefined };
  firstHandshakes.set(key, entry);
  return {
    kind: 'first',
    handshake: {
      secured(elapsedMs) {
        if (firstHandshakes.get(key) !== entry || entry.grace !== undefined) return;
        entry.grace = setTimeout(() => {
          if (firstHandshakes.get(key) !== entry) return;
          serversWithoutSessions.add(key);
          if (serversWithoutSessions.size > MAX_CACHED_TLS_SESSIONS) serversWithoutSessions.clear();
          endFirstHandshake(key);
        }, ticketGraceMs(elapsedMs));
        entry.grace.unref();
      },
      ended() {
        if (firstHandshakes.get(key) === entry) endFirstHandshake(key);
      },
    },
  };
}

function endFirstHandshake(key: string): void {
  const entry = firstHandshakes.get(key);
  if (entry === undefined) return;
  firstHandshakes.delete(key);
  clearTimeout(entry.grace);
  entry.finish();
}

/** For tests: how many keys hold a session. */
export function cachedTlsSessionCount(): number {
  return sessions.size;
}

const digests = new Map<string, string>();

/** SHA-256 of a PEM text, remembered for the few distinct texts a process uses (bounded). */
function digest(text: string): string {
  let value = digests.get(text);
  if (value === undefined) {
    value = createHash('sha256').update(text).digest('base64');
    if (digests.size >= 64) digests.clear();
    digests.set(text, value);
  }
  return value;
}
