// TLS to the service, over a direct TCP connection or an HTTP CONNECT tunnel: the IO of the MQTT-over-TLS
// transport, and the layer the WebSocket rides on.
import { X509Certificate } from 'node:crypto';
import { isIP, type Socket } from 'node:net';
import tls from 'node:tls';
import { InvalidInputError, TransportError, type TransportFailureReason } from '../protocol/errors.js';
import { checkEndpoint } from './check-endpoint.js';
import { abortedError, startDeadline } from './deadline.js';
import { hostPort, unbracket } from './host-port.js';
import { openProxyTunnel } from './proxy-tunnel.js';
import { connectTcp, tcpError } from './tcp.js';
import {
  cachedTlsSession,
  forgetTlsSession,
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
    // Without a proxy, TLS is set up on the socket while TCP still connects (see handshake()).
    const raw =
      options.proxy === undefined
        ? connectTcp(options.host, options.port)
        : await openProxyTunnel({
            proxy: options.proxy,
            targetHost: options.host,
            targetPort: options.port,
            ...inner,
          });
    return await handshake(raw, options, secureContext, deadline.signal);
  } finally {
    deadline.dispose();
  }
}

/**
 * Contexts that hold only trust (no client key) are shared: a fleet simulator registering thousands of
 * devices with one CA would otherwise parse the CA and build a context for every connection (about
 * 1 ms each). Contexts with a client certificate are never cached, so no private key outlives its handle.
 */
const sharedTrustContexts = new Map<string, tls.SecureContext>();
const MAX_SHARED_CONTEXTS = 16;

function createTlsContext(options: IoOptions): tls.SecureContext {
  if (options.clientCertificate !== undefined) return buildTlsContext(options);
  const cacheKey = `${options.trustMode ?? 'replace'}\n${options.trustedCa ?? ''}`;
  let context = sharedTrustContexts.get(cacheKey);
  if (context === undefined) {
    context = buildTlsContext(options);
    if (sharedTrustContexts.size >= MAX_SHARED_CONTEXTS) sharedTrustContexts.clear();
    sharedTrustContexts.set(cacheKey, context);
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

function handshake(
  raw: Socket,
  options: IoOptions,
  secureContext: tls.SecureContext,
  signal: AbortSignal,
): Promise<tls.TLSSocket> {
  const target = hostPort(options.host, options.port);
  return new Promise<tls.TLSSocket>((resolve, reject) => {
    if (signal.aborted) {
      raw.destroy();
      reject(abortedError(signal, raw.connecting ? 'tcp' : 'tls', target));
      return;
    }
    const host = unbracket(options.host);
    const servername = isIP(host) === 0 ? host : undefined; // RFC 6066: no SNI for IP literals
    const sessionKey =
      options.tlsSessionResumption === false ? undefined : tlsSessionKey(options, servername);
    const offered = sessionKey === undefined ? undefined : cachedTlsSession(sessionKey);
    // tls.connect() parses a `session` option twice (its TLSSocket constructor and connect() each set it),
    // a fifth of a resumed handshake's CPU. On a socket still connecting the handshake waits for 'connect',
    // so the session is set once, below, with the (undocumented, hence checked) method connect() itself
    // uses; a proxy tunnel is already connected and needs the option.
    let tcpConnected = !raw.connecting;
    const setLater = !tcpConnected && typeof setSessionOf(tls.TLSSocket.prototype) === 'function';
    const socket = tls.connect({
      socket: raw,
      host, // the name the certificate is checked against, with or without SNI
      ...(servername === undefined ? {} : { servername }),
      secureContext,
      rejectUnauthorized: options.insecureSkipVerify !== true,
      ...(offered === undefined || setLater ? {} : { session: offered }),
    });
    if (offered !== undefined && setLater) setSessionOf(socket)?.call(socket, offered);
    if (!tcpConnected) raw.once('connect', () => (tcpConnected = true));
    // Only a session of a handshake that passed every check is remembered: a resumed session skips the
    // host name check. Node 20 holds a TLS 1.2 session back until then, but its documentation does not
    // promise it ("may or may not be before the handshake is complete"), so this does not rely on it.
    let secured = false;
    let pending: Buffer | undefined;
    if (sessionKey !== undefined) {
      socket.on('session', (session: Buffer) => {
        if (secured) rememberTlsSession(sessionKey, session);
        else pending = session;
      });
    }
    const fail = (error: Error): void => {
      if (sessionKey !== undefined && offered !== undefined) forgetTlsSession(sessionKey, offered);
      cleanup();
      socket.destroy();
      raw.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(abortedError(signal, tcpConnected ? 'tls' : 'tcp', target));
    const onError = (error: NodeJS.ErrnoException): void =>
      fail(tcpConnected ? tlsError(error, options) : tcpError(error, target));
    const onClose = (): void =>
      fail(
        new TransportError(`${target} closed the connection during the TLS handshake`, {
          phase: 'tls',
          retryable: true,
        }),
      );
    const onSecure = (): void => {
      secured = true;
      if (sessionKey !== undefined && pending !== undefined) rememberTlsSession(sessionKey, pending);
      pending = undefined;
      cleanup();
      socket.setNoDelay(true);
      resolve(socket);
    };
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort);
      socket.off('secureConnect', onSecure);
      socket.off('error', onError);
      socket.off('close', onClose);
      raw.off('error', onError);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('secureConnect', onSecure);
    socket.once('error', onError);
    socket.once('close', onClose);
    raw.once('error', onError);
  });
}

/** TLSSocket's setSession(), which Node's type declarations leave out. */
function setSessionOf(socket: tls.TLSSocket): ((session: Buffer) => void) | undefined {
  return (socket as tls.TLSSocket & { setSession?: (session: Buffer) => void }).setSession;
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'CERT_REVOKED',
]);

const CLIENT_CERTIFICATE_REFUSED = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
]);

const NOT_TLS = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_HTTP_REQUEST',
]);

const NO_COMMON_VERSION = new Set([
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
]);

/** Certificate and protocol failures cannot heal by retrying: say so, and say what to change. */
function tlsError(error: NodeJS.ErrnoException & { reason?: unknown }, options: IoOptions): TransportError {
  const target = hostPort(options.host, options.port);
  const code = error.code ?? 'error';
  // OpenSSL's own text is a multi-line dump; its `reason` is the one readable phrase in it.
  const detail = `${code}: ${typeof error.reason === 'string' ? error.reason : firstLine(error.message)}`;
  const permanent = (
    message: string,
    reason: TransportFailureReason | undefined,
    hint?: string,
  ): TransportError => {
    const failure = new TransportError(message, { phase: 'tls', cause: error, retryable: false, reason });
    failure.hint = hint;
    return failure;
  };
  const proxyNote =
    options.proxy === undefined
      ? ''
      : "; a proxy that inspects TLS presents its own certificate: then trust the proxy's CA as well";

  if (UNTRUSTED.has(code)) {
    // The what-to-do names library options, so it goes in the hint: the CLI replaces it with its flags.
    const fix =
      options.trustedCa === undefined
        ? 'pass the CA that issued it as trustedCa'
        : 'trustedCa does not hold the CA that issued it: pass that CA (trustMode "extend" keeps the public roots)';
    return permanent(
      `the TLS certificate of ${target} is not trusted (${detail})`,
      'untrusted-certificate',
      `${fix}${proxyNote}`,
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return permanent(
      `the TLS certificate of ${target} is not issued for "${unbracket(options.host)}" (${detail}): ` +
        'check the host name (the global endpoint is global.azure-devices-provisioning.net)',
      'certificate-name-mismatch',
    );
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return permanent(
      `the TLS certificate of ${target} is outside its validity period (${detail}): check the device clock ` +
        `(it reads ${new Date().toISOString()}); if it is right, the server must renew its certificate`,
      'certificate-expired',
    );
  }
  if (CLIENT_CERTIFICATE_REFUSED.has(code)) {
    return permanent(
      `${target} refused the TLS client certificate (${detail}): ` +
        (options.clientCertificate === undefined
          ? 'the server requires one: pass clientCertificate'
          : 'check that the server trusts its issuer and that it has not expired'),
      'client-certificate-refused',
    );
  }
  if (NOT_TLS.has(code)) {
    return permanent(
      `the endpoint ${target} does not speak TLS (${code}): it answered with something else, such as plain HTTP; ` +
        'check the host and port (443 for MQTT over WebSocket, 8883 for MQTT over TLS)',
      'not-tls',
    );
  }
  if (NO_COMMON_VERSION.has(code)) {
    return permanent(
      `${target} and this client share no TLS version (${detail}): DPS requires TLS 1.2 or newer`,
      'no-common-tls-version',
    );
  }
  return new TransportError(`the TLS handshake with ${target} failed (${detail})`, {
    phase: 'tls',
    cause: error,
    retryable: true,
  });
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0]?.trim() ?? '';
}
