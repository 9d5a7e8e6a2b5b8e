// The transport provider of the spec (prov_transport_mqtt_ws_client_requirements.md), rendered in
// TypeScript: a plain object of operations taking a handle; return codes become thrown typed errors
// for misuse, and callbacks for asynchronous outcomes (mqtt_common.md, "Rendering in TypeScript").
import type { IoFactory, ProxyOptions } from '../io/types.js';
import type { DpsError } from '../protocol/errors.js';
import type { JsonValue, OperationStatus, RegistrationState } from '../protocol/responses.js';

/** The device's attestation. DPS offers no TPM over MQTT; the transport refuses it (062). */
export type HsmType = 'symmetricKey' | 'x509' | 'tpm';

export interface TransportCreateOptions {
  /** DPS host name, optionally `host:port` (emulators, tests). */
  uri: string;
  hsmType: HsmType;
  idScope: string;
  registrationId: string;
  apiVersion: string;
}

/** What the common transport needs from a concrete provider: its IO and its default port. */
export interface TransportIoBinding {
  transportIo: IoFactory;
  defaultPort: number;
  /** A name for traces and errors: `mqtt-ws` or `mqtt`. */
  transportName: string;
}

/** The final outcome of a registration, reported once through the registration-data callback. */
export type RegistrationOutcome =
  | {
      kind: 'assigned';
      assignedHub: string;
      deviceId: string;
      registrationState: RegistrationState;
      operationStatus: OperationStatus;
    }
  | { kind: 'error'; error: DpsError };

export type TransportStatus =
  | { status: 'connecting' }
  | { status: 'connected' }
  /** CONNACK accepted the credentials and the response subscription is granted. */
  | { status: 'authenticated' }
  | { status: 'registering' }
  /** DPS is still assigning: poll with getOperationStatus after retryAfterMs. */
  | { status: 'assigning'; operationId: string; retryAfterMs: number; operationStatus: OperationStatus }
  /** A 429 or 5xx: the transport resends the same request after retryAfterMs. */
  | { status: 'transient'; statusCode: number; retryAfterMs: number; attempt: number }
  | { status: 'disconnected' };

export type RegistrationDataCallback = (outcome: RegistrationOutcome) => void;
export type StatusCallback = (status: TransportStatus) => void;

export interface OpenOptions {
  onRegistrationData: RegistrationDataCallback;
  onStatus: StatusCallback;
  /** TPM endorsement and storage root keys: only to say TPM is not supported (008, 058). */
  ek?: Uint8Array;
  srk?: Uint8Array;
}

export interface RegisterOptions {
  /**
   * The challenge callback: returns the MQTT password for key name `registration` (the SAS token).
   * Called at every connect, so a reconnect gets a fresh token. Not used with X.509.
   */
  challenge?: (keyName: 'registration') => string;
  /** Custom allocation data sent as the register body's `payload`. */
  payload?: JsonValue;
  /**
   * A PKCS#10 request, base64 DER on one line, sent as the register body's `csr` (certificate issuance,
   * api-version 2025-07-01-preview or later). Every resend of the request carries this same CSR.
   */
  csr?: string;
}

/** Receives trace lines; every line has already passed through `redact`. */
export type TraceSink = (line: string) => void;

export interface TransportOptionValues {
  /** MQTT keep-alive in seconds (default 180, like the Node SDK). */
  keepAliveSeconds: number;
  /** Bound on opening the IO and on each MQTT exchange (CONNACK, SUBACK, a response), ms. */
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  /** How many 429/5xx answers in a row the transport retries before it reports an error. */
  maxTransientRetries: number;
  /** Send SUBSCRIBE and the request without waiting for CONNACK and SUBACK (MQTT 3.1.1 §3.1.4). */
  pipeline: boolean;
  /** Where trace lines go when tracing is on (default: stderr). */
  traceSink: TraceSink;
  /** User agent sent as ClientVersion in the user name. */
  userAgent: string;
  /** PEM trust: replace the default roots with the trusted certificate, or extend them. */
  trustMode: 'replace' | 'extend';
  /** Accept any server certificate (debugging only; prints a warning). */
  insecureSkipVerify: boolean;
}

export type TransportOptionName = keyof TransportOptionValues;

/** The provider table of the spec, plus setOption. Every operation but create takes the handle. */
export interface TransportProvider<Handle> {
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_001 */
  create(options: TransportCreateOptions): Handle;
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_002 */
  destroy(handle: Handle | undefined): void;
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_003 */
  open(handle: Handle, options: OpenOptions): void;
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_004 */
  close(handle: Handle): void;
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_005 */
  registerDevice(handle: Handle, options: RegisterOptions): void;
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_006 */
  getOperationStatus(handle: Handle): void;
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_007 */
  doWork(handle: Handle): void;
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_008 */
  setTrace(handle: Handle, traceOn: boolean): void;
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_009 */
  x509Cert(handle: Handle, certificate: string, privateKey: string): void;
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_010 */
  setTrustedCert(handle: Handle, certificate: string): void;
  /** PROV_TRANSPORT_MQTT_WS_CLIENT_07_011 */
  setProxy(handle: Handle, proxy: ProxyOptions): void;
  setOption<Name extends TransportOptionName>(
    handle: Handle,
    name: Name,
    value: TransportOptionValues[Name],
  ): void;
}
