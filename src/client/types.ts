// The public shape of the provisioning client: options in, a typed result or a typed error out.
import type { ProxyOptions } from '../io/types.js';
import type { JsonObject, JsonValue, RegistrationState } from '../protocol/responses.js';

export type TransportKind = 'mqtt-ws' | 'mqtt';

/** How the device proves who it is. PEM fields accept the PEM text or a path to a PEM file. */
export type DeviceSecurity =
  | { symmetricKey: string }
  /** A group enrollment's key: the device key is derived for the registration id. */
  | { groupKey: string }
  | { certificate: string; privateKey: string; passphrase?: string };

export interface ProvisioningClientOptions {
  idScope: string;
  /** Required for keys; for X.509 it defaults to the certificate's subject CN (and must equal it). */
  registrationId?: string;
  security: DeviceSecurity;
  /** `host` or `host:port`. Default `global.azure-devices-provisioning.net`. */
  endpoint?: string;
  /** Default `mqtt-ws` (port 443, through firewalls and proxies). */
  transport?: TransportKind;
  /** CA certificate(s) to trust for the DPS server: PEM text or a file path. */
  trustedCa?: string;
  /** With trustedCa: `replace` (default) trusts only it; `extend` adds it to Node's bundled roots. */
  trustMode?: 'replace' | 'extend';
  /**
   * HTTP proxy: a URL (`http://user:password@host:port`), options, or `false` for none. When not
   * given, `HTTPS_PROXY` / `https_proxy` is used unless `NO_PROXY` / `no_proxy` matches the endpoint.
   */
  proxy?: string | ProxyOptions | false;
  /** Custom allocation data sent to DPS; echoed to custom allocation policies. */
  payload?: JsonValue;
  /** Default `2019-03-31`; `2021-06-01` returns the trust bundle. */
  apiVersion?: string;
  /** Overall deadline for register(), in milliseconds. Default 120 000. */
  timeoutMs?: number;
  /** MQTT keep-alive in seconds. Default 180. */
  keepAliveSeconds?: number;
  /** Trace every MQTT packet (secrets redacted) to this sink, or to stderr when `true`. */
  trace?: boolean | ((line: string) => void);
  /** Send SUBSCRIBE and the request without waiting for CONNACK/SUBACK (saves round trips). */
  pipeline?: boolean;
  /** Do not verify the server certificate. Debugging only; prints a warning. */
  insecureSkipVerify?: boolean;
  /** Progress events as they happen. */
  onProgress?: (event: ProgressEvent) => void;
  /** Backoff when the service gives no retry-after: first delay and cap, in milliseconds. */
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  /**
   * Ask DPS to issue the device an X.509 certificate (api-version 2025-07-01-preview or later, chosen
   * automatically): a key type to generate a new key pair (default `ec-p384`), or your own CSR.
   */
  certificate?: CertificateRequestOptions;
}

/** Key types the client generates for certificate issuance. */
export type CertificateKeyType = 'ec-p384' | 'ec-p256' | 'rsa-2048';

/**
 * `{ keyType }`: the client generates the key pair and the CSR (subject CN = registration id) and returns
 * the private key with the chain. `{ csr }`: your own PKCS#10 request (PEM text, or DER bytes); its CN must
 * be the registration id and no private key is returned.
 */
export type CertificateRequestOptions = { keyType?: CertificateKeyType } | { csr: string | Uint8Array };

/** The certificate DPS issued, checked against the CSR and the registration id before it is returned. */
export interface IssuedCertificate {
  /** The chain as PEM, leaf first (then the issuing CA, then the root), as the service returned it. */
  chainPem: string;
  /** The generated key (PKCS#8 PEM); absent when the caller brought its own CSR. */
  privateKeyPem?: string;
  notBefore: Date;
  notAfter: Date;
  /** The leaf's serial number: upper-case hex, as X509Certificate.serialNumber gives it. */
  serialNumber: string;
}

export interface CreateCertificateRequestOptions {
  registrationId: string;
  /** Default `ec-p384`, the type the DPS docs name. */
  keyType?: CertificateKeyType;
}

/** A new key pair and its CSR, from createCertificateRequest(). */
export interface CertificateRequest {
  /** The CSR as DER, as base64 on one line (what DPS receives), and as PEM. */
  csrDer: Buffer;
  csrBase64: string;
  csrPem: string;
  /** PKCS#8 PEM, unencrypted: store it with care. */
  privateKeyPem: string;
  keyType: CertificateKeyType;
}

export interface RegisterCallOptions {
  signal?: AbortSignal;
  /** Overrides the client's payload for this call. */
  payload?: JsonValue;
}

// The option names each options bag accepts, kept next to the types so they cannot drift apart (the
// `satisfies` clauses fail to compile when a field is added or renamed): register() and startEmulator()
// refuse any other name, so a typo is an error instead of an option silently ignored.

/** Every ProvisioningClientOptions field. */
export const PROVISIONING_CLIENT_OPTION_NAMES = Object.keys({
  idScope: true,
  registrationId: true,
  security: true,
  endpoint: true,
  transport: true,
  trustedCa: true,
  trustMode: true,
  proxy: true,
  payload: true,
  apiVersion: true,
  timeoutMs: true,
  keepAliveSeconds: true,
  trace: true,
  pipeline: true,
  insecureSkipVerify: true,
  onProgress: true,
  retry: true,
  certificate: true,
} satisfies Record<keyof ProvisioningClientOptions, true>);

/** Every field of any DeviceSecurity variant. */
export const DEVICE_SECURITY_FIELD_NAMES = Object.keys({
  symmetricKey: true,
  groupKey: true,
  certificate: true,
  privateKey: true,
  passphrase: true,
} satisfies Record<KeysOfUnion<DeviceSecurity>, true>);

type KeysOfUnion<T> = T extends unknown ? keyof T : never;

/** Every field of ProvisioningClientOptions.retry. */
export const RETRY_OPTION_NAMES = Object.keys({
  initialDelayMs: true,
  maxDelayMs: true,
} satisfies Record<keyof NonNullable<ProvisioningClientOptions['retry']>, true>);

/** Every ProxyOptions field (the object form of ProvisioningClientOptions.proxy). */
export const PROXY_OPTION_NAMES = Object.keys({
  host: true,
  port: true,
  username: true,
  password: true,
} satisfies Record<keyof ProxyOptions, true>);

/** Every RegisterCallOptions field. */
export const REGISTER_CALL_OPTION_NAMES = Object.keys({
  signal: true,
  payload: true,
} satisfies Record<keyof RegisterCallOptions, true>);

export type ProgressEvent =
  | { type: 'connecting'; attempt: number }
  | { type: 'connected' }
  | { type: 'registering' }
  | { type: 'assigning'; operationId: string; pollCount: number; retryAfterMs: number }
  | { type: 'transient'; reason: string; statusCode?: number; waitMs: number; attempt: number }
  | {
      type: 'assigned';
      assignedHub: string;
      deviceId: string;
      /** registrationState.substatus: `deviceDataMigrated`, `deviceDataReset` and `reprovisionedToInitialAssignment` mean the device moved hubs. */
      substatus?: string;
    };

export interface RegistrationTimings {
  /** From register() to the result. */
  totalMs: number;
  /** Connections opened (1 unless the connection dropped or a request went unanswered). */
  connections: number;
  /** Status queries sent. */
  polls: number;
  /** Waits for 429/5xx answers and reconnections. */
  transientRetries: number;
}

export interface RegistrationResult {
  registrationId: string;
  assignedHub: string;
  deviceId: string;
  /** Always `assigned`: every other final status rejects with a RegistrationFailedError. */
  status: 'assigned';
  substatus?: string;
  operationId: string;
  etag?: string;
  createdDateTimeUtc?: string;
  lastUpdatedDateTimeUtc?: string;
  /** Custom allocation data returned by the service. */
  payload?: JsonValue;
  /** api-version 2021-06-01 and later. */
  trustBundle?: JsonObject;
  /** With `certificate`: the checked chain DPS issued (and the generated private key). */
  issuedCertificate?: IssuedCertificate;
  /** api-version 2026-11-02-preview: `classic` or `mqttV5` (absent means classic). */
  connectionProfile?: string;
  /** The full registration state as DPS returned it. */
  registrationState: RegistrationState;
  timings: RegistrationTimings;
  /** How the device authenticates to its IoT hub next. */
  attestation: 'symmetricKey' | 'x509';
}
