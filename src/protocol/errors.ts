// Every error dps-mqtt raises is a DpsError with a stable `code` and, where it applies, the phase of
// the registration it happened in: "it failed" is the most common complaint about today's SDKs.
import type { RegistrationStatus } from './responses.js';

/** Where in a registration something went wrong. */
export type Phase =
  | 'input'
  | 'proxy'
  | 'tcp'
  | 'tls'
  | 'websocket'
  | 'connack'
  | 'subscribe'
  | 'register'
  | 'poll'
  | 'response';

export type DpsErrorCode =
  | 'ERR_INVALID_INPUT'
  | 'ERR_NOT_SUPPORTED'
  | 'ERR_INVALID_STATE'
  | 'ERR_PROTOCOL'
  | 'ERR_TRANSPORT'
  | 'ERR_PROXY'
  | 'ERR_AUTHENTICATION'
  | 'ERR_SERVICE'
  | 'ERR_REGISTRATION_FAILED'
  | 'ERR_TIMEOUT'
  | 'ERR_ABORTED'
  | 'ERR_CERTIFICATE_CHAIN';

export interface DpsErrorOptions {
  phase?: Phase;
  cause?: unknown;
}

/** Every error's message is one line for people; `code`, `phase` and `hint` are for programs and UIs. */

export class DpsError extends Error {
  readonly code: DpsErrorCode;
  readonly phase: Phase | undefined;
  /** What the user can do about it, when there is something specific to say. */
  hint: string | undefined;

  constructor(code: DpsErrorCode, message: string, options: DpsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.phase = options.phase;
  }
}

/** A value given by the caller is missing or malformed; raised before any network I/O. */
export class InvalidInputError extends DpsError {
  declare readonly code: 'ERR_INVALID_INPUT';
  /** The option or argument that was wrong, e.g. `registrationId`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super('ERR_INVALID_INPUT', message, { phase: 'input' });
    this.field = field;
  }
}

/** Something DPS does not offer over MQTT, such as TPM attestation. */
export class NotSupportedError extends DpsError {
  declare readonly code: 'ERR_NOT_SUPPORTED';
  constructor(message: string) {
    super('ERR_NOT_SUPPORTED', message, { phase: 'input' });
  }
}

/** An operation was called at a moment the transport cannot accept it. */
export class InvalidStateError extends DpsError {
  declare readonly code: 'ERR_INVALID_STATE';
  constructor(message: string) {
    super('ERR_INVALID_STATE', message);
  }
}

/** The peer sent something that does not follow the DPS or MQTT protocol. */
export class ProtocolError extends DpsError {
  declare readonly code: 'ERR_PROTOCOL';
  constructor(message: string, options: DpsErrorOptions = {}) {
    super('ERR_PROTOCOL', message, { phase: options.phase ?? 'response', cause: options.cause });
  }
}

/**
 * Why a connection failed, where the IO can tell: stable words a CLI or UI maps to its own advice
 * (the CLI names its flags, the library its options).
 */
export type TransportFailureReason =
  | 'connection-refused'
  | 'host-not-found'
  | 'untrusted-certificate'
  | 'certificate-name-mismatch'
  | 'certificate-expired'
  | 'client-certificate-refused'
  | 'not-tls'
  | 'no-common-tls-version'
  /** The port answered in the other transport's protocol: MQTT at a WebSocket port, or the reverse. */
  | 'wrong-transport';

/** The connection could not be made or was lost (TCP, TLS, WebSocket). */
export class TransportError extends DpsError {
  declare readonly code: 'ERR_TRANSPORT';
  /** True when trying again later may succeed (a drop), false when it cannot (an untrusted certificate). */
  readonly retryable: boolean;
  /** Why, when the IO could tell. */
  readonly reason: TransportFailureReason | undefined;
  constructor(
    message: string,
    options: DpsErrorOptions & { retryable?: boolean; reason?: TransportFailureReason } = {},
  ) {
    super('ERR_TRANSPORT', message, options);
    this.retryable = options.retryable ?? true;
    this.reason = options.reason;
  }
}

/** The HTTP proxy refused the CONNECT tunnel or could not be reached. */
export class ProxyError extends DpsError {
  declare readonly code: 'ERR_PROXY';
  /** The proxy's HTTP status, when it answered. */
  readonly statusCode: number | undefined;
  readonly retryable: boolean;
  constructor(message: string, options: DpsErrorOptions & { statusCode?: number; retryable?: boolean } = {}) {
    super('ERR_PROXY', message, { phase: 'proxy', cause: options.cause });
    this.statusCode = options.statusCode;
    this.retryable = options.retryable ?? false;
  }
}

/** The service refused the device's credentials (a non-zero CONNACK return code). */
export class AuthenticationError extends DpsError {
  declare readonly code: 'ERR_AUTHENTICATION';
  readonly returnCode: number;
  constructor(returnCode: number, message: string) {
    super('ERR_AUTHENTICATION', message, { phase: 'connack' });
    this.returnCode = returnCode;
  }
}

/** The service answered a request with an error status and (usually) an error body. */
export class ProvisioningServiceError extends DpsError {
  declare readonly code: 'ERR_SERVICE';
  readonly statusCode: number;
  readonly errorCode: number | undefined;
  readonly trackingId: string | undefined;
  readonly timestampUtc: string | undefined;
  readonly retryable: boolean;
  /** The service's own wait hint, in milliseconds, when it gave one. */
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    details: {
      statusCode: number;
      errorCode?: number | undefined;
      trackingId?: string | undefined;
      timestampUtc?: string | undefined;
      retryAfterMs?: number | undefined;
      phase?: Phase;
    },
  ) {
    super('ERR_SERVICE', message, { phase: details.phase });
    this.statusCode = details.statusCode;
    this.errorCode = details.errorCode;
    this.trackingId = details.trackingId;
    this.timestampUtc = details.timestampUtc;
    this.retryAfterMs = details.retryAfterMs;
    this.retryable = details.statusCode === 429 || details.statusCode >= 500;
  }
}

/** DPS finished the registration with status `failed` or `disabled`. */
export class RegistrationFailedError extends DpsError {
  declare readonly code: 'ERR_REGISTRATION_FAILED';
  /** `failed` or `disabled` as DPS reports them (any status but `assigned` that ends a registration). */
  readonly status: RegistrationStatus;
  /** registrationState.errorCode, e.g. 400207 when a custom allocation webhook refused the device. */
  readonly errorCode: number | undefined;
  /** registrationState.errorMessage: the service's reason, as it sent it. */
  readonly errorMessage: string | undefined;
  readonly operationId: string | undefined;
  constructor(
    message: string,
    details: {
      status: RegistrationStatus;
      errorCode?: number | undefined;
      errorMessage?: string | undefined;
      operationId?: string | undefined;
    },
  ) {
    super('ERR_REGISTRATION_FAILED', message, { phase: 'poll' });
    this.status = details.status;
    this.errorCode = details.errorCode;
    this.errorMessage = details.errorMessage;
    this.operationId = details.operationId;
  }
}

export class TimeoutError extends DpsError {
  declare readonly code: 'ERR_TIMEOUT';
  constructor(message: string, options: DpsErrorOptions = {}) {
    super('ERR_TIMEOUT', message, options);
  }
}

export class AbortError extends DpsError {
  declare readonly code: 'ERR_ABORTED';
  constructor(message = 'the registration was aborted by the caller', options: DpsErrorOptions = {}) {
    super('ERR_ABORTED', message, options);
  }
}

/** Which check an issued certificate chain failed (protocol.md, "Certificate issuance"). */
export type CertificateChainCheck =
  | 'missing-chain'
  | 'chain-format'
  | 'leaf-public-key'
  | 'leaf-common-name'
  | 'chain-issuer'
  | 'leaf-validity';

/**
 * DPS assigned the device but the certificate chain it issued is unusable: missing, malformed, not for
 * the CSR's key or the registration id, not a chain, or not currently valid. Never a silent success.
 */
export class CertificateChainError extends DpsError {
  declare readonly code: 'ERR_CERTIFICATE_CHAIN';
  readonly check: CertificateChainCheck;
  /** The service's raw chain (base64 DER, as received), for diagnosis. */
  readonly chainBase64: string[];
  constructor(check: CertificateChainCheck, message: string, chainBase64: readonly string[] = []) {
    super('ERR_CERTIFICATE_CHAIN', message, { phase: 'response' });
    this.check = check;
    this.chainBase64 = [...chainBase64];
  }
}

/**
 * Every concrete error dps-mqtt raises, as a union discriminated by `code`: after
 * `if (isDpsError(error) && error.code === 'ERR_SERVICE')`, TypeScript knows `error.statusCode`.
 */
export type AnyDpsError =
  | InvalidInputError
  | NotSupportedError
  | InvalidStateError
  | ProtocolError
  | TransportError
  | ProxyError
  | AuthenticationError
  | ProvisioningServiceError
  | RegistrationFailedError
  | TimeoutError
  | AbortError
  | CertificateChainError;

/** True for every error dps-mqtt raises; narrows to the union whose `code` tells the classes apart. */
export function isDpsError(error: unknown): error is AnyDpsError {
  return error instanceof DpsError;
}
