// The public shape of the provisioning client: options in, a typed result or a typed error out.
import type { ProxyOptions } from '../io/types.js';
import type { JsonObject, JsonValue, RegistrationState, RegistrationStatus } from '../protocol/responses.js';

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
}

export interface RegisterCallOptions {
  signal?: AbortSignal;
  /** Overrides the client's payload for this call. */
  payload?: JsonValue;
}

export type ProgressEvent =
  | { type: 'connecting'; attempt: number }
  | { type: 'connected' }
  | { type: 'registering' }
  | { type: 'assigning'; operationId: string; pollCount: number; retryAfterMs: number }
  | { type: 'transient'; reason: string; statusCode?: number; waitMs: number; attempt: number }
  | { type: 'assigned'; assignedHub: string; deviceId: string };

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
  status: RegistrationStatus;
  substatus?: string;
  operationId: string;
  etag?: string;
  createdDateTimeUtc?: string;
  lastUpdatedDateTimeUtc?: string;
  /** Custom allocation data returned by the service. */
  payload?: JsonValue;
  /** api-version 2021-06-01 and later. */
  trustBundle?: JsonObject;
  /** The full registration state as DPS returned it. */
  registrationState: RegistrationState;
  timings: RegistrationTimings;
  /** How the device authenticates to its IoT hub next. */
  attestation: 'symmetricKey' | 'x509';
}
