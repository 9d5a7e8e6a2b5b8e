// TLS to the service, over a direct TCP connection or an HTTP CONNECT tunnel: the IO of the MQTT-over-TLS
// transport, and the layer the WebSocket rides on.
import { X509Certificate } from 'node:crypto';
import { isIP, type Socket } from 'node:net';
import tls from 'node:tls';
import { InvalidInputError, TransportError } from '../protocol/errors.js';
import { checkEndpoint } from './check-endpoint.js';
import { abortedError, startDeadline } from './deadline.js';
import { forgetLookup, sharedLookup } from './dns-cache.js';
import { hostPort, unbracket } from './host-port.js';
import { openProxyTunnel } from './proxy-tunnel.js';
import { tcpError } from './tcp.js';
import { tlsError } from './tls-errors.js';
import {
  cachedTlsSession,
  type FirstHandshake,
  forgetTlsSession,
  planTlsSession,
  rememberTlsSession,
  tlsSessionKey,
} from './tls-session-cache.js';
import type { IoOptions } from './types.js';

/**
 * Resolves with a TLS socket whose handshake (and certificate check) has completed. Rejects with
 * InvalidInputError (bad certificate input, before any I/O), ProxyError, TransportError phase 'tcp' or
 * 'tls', TimeoutError or AbortError, and leaves nothing open.
 */
export async function openTls(options: IoOptions): Promise<tls.TLSSocket> {
  checkEndpoint('dps', options.host, options.port);
  const secureContext = createTlsContext(options);
  const deadline = startDeadline(options);
  const inner = { signal: deadline.signal, timeoutMs: Number.POSITIVE_INFINITY };
  try {
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_012: with a proxy, the CONNECT tunnel is the IO beneath TLS.
    // Without one, the TLS socket makes its own TCP connection (see handshake()).
    const tunnel =
      options.proxy === undefined
        ? undefined
        : await openProxyTunnel({
            proxy: options.proxy,
            targetHost: options.host,
            targetPort: options.port,
            ...inner,
          });
    return await handshake(tunnel, options, secureContext, deadline.signal);
  } finally {
    deadline.dispose();
  }
}

/**
 * Contexts that hold only trust (no client key) are shared: a fleet simulator registering thousands of
 * devices with one CA would otherwise parse the CA and build a context for every connection (about
 * 1 ms each). Contexts with a client certificate are never cached, so no private key outlives its handle.
 */
const sharedTrustContexts = new Map<string, Map<string, tls.SecureContext>>();
const MAX_SHARED_CONTEXTS = 16;
let sharedContextCount = 0;

function createTlsContext(options: IoOptions): tls.SecureContext {
  if (options.clientCertificate !== undefined) return buildTlsContext(options);
  // Keyed by the trustedCa string itself, not a key built from it: V8 keeps a string's hash, while a new
  // key string of a CA bundle would be hashed again (kilobytes) on every connection.
  const trustMode = options.trustMode ?? 'replace';
  const byCa = sharedTrustContexts.get(trustMode) ?? new Map<string, tls.SecureContext>();
  const ca = options.trustedCa ?? '';
  let context = byCa.get(ca);
  if (context === undefined) {
    context = buildTlsContext(options);
    if (sharedContextCount >= MAX_SHARED_CONTEXTS) {
      sharedTrustContexts.clear();
      byCa.clear();
      sharedContextCount = 0;
    }
    byCa.set(ca, context);
    sharedTrustContexts.set(trustMode, byCa);
    sharedContextCount += 1;
  }
  return context;
}

/** The trust, identity and protocol floor of the connection; throws InvalidInputError on bad PEM input. */
function buildTlsContext(options: IoOptions): tls.SecureContext {
  const contextOptions: tls.SecureContextOptions = { minVersion: 'TLSv1.2' };
  if (options.trustedCa !== undefined) {
    const trusted = certificatesIn(options.trustedCa);
    contextOptions.ca = options.trustMode === 'extend' ? [...tls.rootCertificates, ...trusted] : trusted;
  }
  if (options.clientCertificate !== undefined) {
    contextOptions.cert = options.clientCertificate.certPem;
    contextOptions.key = options.clientCertificate.keyPem;
    if (options.clientCertificate.passphrase !== undefined) {
      contextOptions.passphrase = options.clientCertificate.passphrase;
    }
  }
  try {
    return tls.createSecureContext(contextOptions);
  } catch (error) {
    // Only the client certificate can fail here: the CA certificates were parsed above.
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new InvalidInputError(
      'clientCertificate',
      `the client certificate or its key could not be loaded (${code}): check certPem, keyPem and passphrase, ` +
        'and that the key belongs to the certificate',
    );
  }
}

/** Node ignores what is not a certificate in `ca`, which would leave nothing trusted: refuse it up front. */
function certificatesIn(pem: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new InvalidInputError(
      'trustedCa',
      'trustedCa holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
    );
  }
  for (const [index, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      throw new InvalidInputError(
        'trustedCa',
        `certificate ${index + 1} in trustedCa is not a valid X.509 certificate`,
      );
    }
  }
  return blocks;
}

/**
 * The TLS handshake, over `tunnel` (a connected proxy tunnel) or, without one, over a TCP connection the
 * TLS socket makes itself: one socket object per connection, not a net.Socket with a TLS socket around it.
 */
function handshake(
  tunnel: Socket | undefined,
  options: IoOptions,
  secureContext: tls.SecureContext,
  signal: AbortSignal,
): Promise<tls.TLSSocket> {
  const target = hostPort(options.host, options.port);
  const startedAt = Date.now();
  return new Promise<tls.TLSSocket>((resolve, reject) => {
    if (signal.aborted) {
      tunnel?.destroy();
      reject(abortedError(signal, tunnel === undefined ? 'tcp' : 'tls', target));
      return;
    }
    const host = unbracket(options.host);
    const servername = isIP(host) === 0 ? host : undefined; // RFC 6066: no SNI for IP literals
    const sessionKey =
      options.tlsSessionResumption === false ? undefined : tlsSessionKey(options, servername);
    let tcpConnected = tunnel !== undefined;
    let socket: tls.TLSSocket | undefined;
    let offered: Buffer | undefined;
    let first: FirstHandshake | undefined;
    let settled = false;

    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      if (sessionKey !== undefined && offered !== undefined) forgetTlsSession(sessionKey, offered);
      first?.ended();
      cleanup();
      socket?.destroy();
      tunnel?.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(abortedError(signal, tcpConnected ? 'tls' : 'tcp', target));
    const onError = (error: NodeJS.ErrnoException): void => {
      if (tcpConnected) {
        fail(tlsError(error, options));
        return;
      }
      if (tunnel === undefined) forgetLookup(host); // the addresses may be stale: look the name up again
      fail(tcpError(error, target));
    };
    const onClose = (): void =>
      fail(
        new TransportError(`${target} closed the connection during the TLS handshake`, {
          phase: 'tls',
          retryable: true,
        }),
      );
    const onConnect = (): void => {
      tcpConnected = true;
      // An MQTT exchange is a few small packets: Nagle would hold each one back (the tunnel has it off).
      // Set once connected: set earlier, Node sets it again on connect (one system call more).
      socket?.setNoDelay(true);
    };
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort);
      socket?.off('connect', onConnect);
      socket?.off('secureConnect', onSecure);
      socket?.off('error', onError);
      socket?.off('close', onClose);
      tunnel?.off('error', onError);
    };
    // Only a session of a handshake that passed every check is remembered: a resumed session skips the
    // host name check. Node 20 holds a TLS 1.2 session back until then, but its documentation does not
    // promise it ("may or may not be before the handshake is complete"), so this does not rely on it.
    let secured = false;
    let pending: Buffer | undefined;
    const onSecure = (): void => {
      secured = true;
      if (sessionKey !== undefined && pending !== undefined) rememberTlsSession(sessionKey, pending);
      pending = undefined;
      first?.secured(Date.now() - startedAt);
      settled = true;
      cleanup();
      resolve(socket as tls.TLSSocket);
    };

    const begin = (session: Buffer | undefined): void => {
      if (settled) return;
      offered = session;
      // tls.connect() parses a `session` option twice (its TLSSocket constructor and connect() each set it),
      // a fifth of a resumed handshake's CPU. A socket that still has to connect starts its handshake on
      // 'connect', so the session is set once, below, with the (undocumented, hence checked) method
      // connect() itself uses; a proxy tunnel is already connected and needs the option.
      const setLater = tunnel === undefined && typeof setSessionOf(tls.TLSSocket.prototype) === 'function';
      // The TLS socket forwards the tunnel's errors to its own listeners: ours on the tunnel goes after
      // Node's, so that the TLS socket is not left emitting with none.
      tunnel?.off('error', onError);
      const tlsSocket = tls.connect({
        ...(tunnel === undefined
          ? { host, port: options.port, lookup: sharedLookup }
          : { socket: tunnel, host }),
        // `host` above is also the name the certificate is checked against, with or without SNI.
        ...(servername === undefined ? {} : { servername }),
        secureContext,
        rejectUnauthorized: options.insecureSkipVerify !== true,
        ...(session === undefined || setLater ? {} : { session }),
      });
      socket = tlsSocket;
      if (session !== undefined && setLater) setSessionOf(tlsSocket)?.call(tlsSocket, session);
      if (sessionKey !== undefined) {
        tlsSocket.on('session', (next: Buffer) => {
          if (secured) rememberTlsSession(sessionKey, next);
          else pending = next;
        });
        // The first handshake's waiters go on when its connection ends, session or not.
        if (first !== undefined) tlsSocket.once('close', () => first?.ended());
      }
      if (!tcpConnected) tlsSocket.once('connect', onConnect);
      tlsSocket.once('secureConnect', onSecure);
      tlsSocket.once('error', onError);
      tlsSocket.once('close', onClose);
      tunnel?.once('error', onError);
    };

    signal.addEventListener('abort', onAbort, { once: true });
    tunnel?.once('error', onError);
    if (sessionKey === undefined) {
      begin(undefined);
      return;
    }
    const plan = planTlsSession(sessionKey);
    if (plan.kind === 'resume') begin(plan.session);
    else if (plan.kind === 'first') {
      first = plan.handshake;
      begin(undefined);
    } else {
      // Another connection is making the first handshake to this endpoint: its session is on its way (this
      // connection's TCP connect waits with it, a round trip at the start of a fleet).
      void plan.firstHandshake.then(() => begin(cachedTlsSession(sessionKey)));
    }
  });
}

/** TLSSocket's setSession(), which Node's type declarations leave out. */
function setSessionOf(socket: tls.TLSSocket): ((session: Buffer) => void) | undefined {
  return (socket as tls.TLSSocket & { setSession?: (session: Buffer) => void }).setSession;
}
