// What a failed TLS handshake means, for the user: certificate and protocol failures cannot heal by
// retrying, so they say what to change; anything else is a retryable transport failure.
import { TransportError, type TransportFailureReason } from '../protocol/errors.js';
import { hostPort, unbracket } from './host-port.js';
import type { IoOptions } from './types.js';

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
export function tlsError(
  error: NodeJS.ErrnoException & { reason?: unknown },
  options: IoOptions,
): TransportError {
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
