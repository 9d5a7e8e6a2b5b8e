// The common DPS-over-MQTT transport (shared/spec/mqtt_common.md): connect, subscribe, register,
// poll, retry-after and transient errors, driven by doWork(). The concrete providers only pass in
// the IO that carries MQTT; everything else lives here.
import { X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { ProxyOptions } from '../io/types.js';
import type { ServerPacket } from '../mqtt/codec.js';
import {
  AuthenticationError,
  DpsError,
  InvalidInputError,
  InvalidStateError,
  NotSupportedError,
  type Phase,
  ProtocolError,
  ProvisioningServiceError,
  RegistrationFailedError,
  TimeoutError,
  TransportError,
} from '../protocol/errors.js';
import { DEFAULT_RETRY_AFTER_SECONDS } from '../protocol/limits.js';
import { redact } from '../protocol/redact.js';
import {
  classifyStatusCode,
  type OperationStatus,
  parseOperationStatus,
  parseServiceErrorBody,
} from '../protocol/responses.js';
import {
  operationStatusTopic,
  parseResponseTopic,
  registerTopic,
  SUBSCRIBE_TOPIC,
} from '../protocol/topics.js';
import { buildUsername } from '../protocol/username.js';
import {
  serialiseJsonValue,
  validateApiVersion,
  validateCertificateAndKey,
  validateIdScope,
  validateRegistrationId,
} from '../protocol/validate.js';
import { MqttConnection } from './mqtt-connection.js';
import type {
  OpenOptions,
  RegisterOptions,
  TransportCreateOptions,
  TransportIoBinding,
  TransportOptionName,
  TransportOptionValues,
  TransportStatus,
} from './types.js';

const CONNACK_MEANINGS: Readonly<Record<number, string>> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected: the client id must be the registration id',
  3: 'server unavailable',
  4: 'bad user name or password: check the ID scope, the registration id and the key',
  5: 'not authorized: check the enrollment and the device credentials (key, certificate)',
};

/** The register body's `csr`: base64 DER with no line breaks (protocol.md, "Certificate issuance"). */
const BASE64_ONE_LINE = /^[A-Za-z0-9+/]+={0,2}$/;

export const DEFAULT_USER_AGENT = `dps-mqtt/0.1.0 (node ${process.version}; ${process.platform}; ${process.arch})`;

function defaultOptions(): TransportOptionValues {
  return {
    keepAliveSeconds: 180,
    connectTimeoutMs: 30_000,
    responseTimeoutMs: 30_000,
    maxTransientRetries: 10,
    pipeline: false,
    traceSink: (line) => process.stderr.write(`${line}\n`),
    userAgent: DEFAULT_USER_AGENT,
    trustMode: 'replace',
    insecureSkipVerify: false,
  };
}

/** A fleet registers many devices with one CA: parse it once, not once per handle. */
let lastParsedTrustedCa: string | undefined;

type ConnectionState = 'disconnected' | 'opening' | 'awaitingConnack' | 'awaitingSuback' | 'ready';

interface PendingRequest {
  kind: 'register' | 'operationStatus';
  /** Set once published; a fresh one for every attempt, so a late answer to an old attempt is foreign. */
  requestId: string | undefined;
  transientAttempts: number;
  waitingForRetry: boolean;
}

/** The transport handle: one device's registration over one (re)connecting MQTT session. */
export class CommonMqttTransport {
  readonly host: string;
  readonly port: number;
  readonly idScope: string;
  readonly registrationId: string;
  readonly apiVersion: string;
  readonly hsmType: TransportCreateOptions['hsmType'];
  readonly transportName: string;

  private readonly binding: TransportIoBinding;
  private options = defaultOptions();
  private traceOn = false;
  private trustedCa: string | undefined;
  private clientCertificate: { certPem: string; keyPem: string } | undefined;
  private proxy: ProxyOptions | undefined;

  private callbacks: Pick<OpenOptions, 'onRegistrationData' | 'onStatus'> | undefined;
  private challenge: RegisterOptions['challenge'];
  private payload: RegisterOptions['payload'];
  /** The CSR of this registration: every resend carries the same one (never a new key). */
  private csr: string | undefined;
  private operationId: string | undefined;
  private registrationInFlight = false;
  private request: PendingRequest | undefined;
  /**
   * `$rid` only has to be unique among this client's outstanding requests (protocol.md); a counter, as the
   * C SDK uses, is unique for the transport's whole life, reconnections included, and costs no UUID.
   */
  private requestCount = 0;

  private connectionState: ConnectionState = 'disconnected';
  private connection: MqttConnection | undefined;
  private openAbort: AbortController | undefined;
  private exchangeTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private destroyed = false;

  constructor(create: TransportCreateOptions, binding: TransportIoBinding) {
    if (!binding || typeof binding.transportIo !== 'function') {
      throw new InvalidInputError(
        'transportIo',
        'the transport needs an IO factory (PROV_TRANSPORT_MQTT_COMMON_07_002)',
      );
    }
    if (create.hsmType === 'tpm') {
      throw new NotSupportedError(
        'TPM attestation is not available over MQTT: DPS supports TPM only over HTTPS and AMQP; use a symmetric key or an X.509 certificate',
      );
    }
    if (create.hsmType !== 'symmetricKey' && create.hsmType !== 'x509') {
      throw new InvalidInputError(
        'hsmType',
        `attestation ${JSON.stringify(create.hsmType)} is unknown: use symmetricKey or x509`,
      );
    }
    const { host, port } = parseEndpoint(create.uri, binding.defaultPort);
    this.host = host;
    this.port = port;
    this.idScope = validateIdScope(create.idScope);
    this.registrationId = validateRegistrationId(create.registrationId);
    this.apiVersion = validateApiVersion(create.apiVersion);
    this.hsmType = create.hsmType;
    this.binding = binding;
    this.transportName = binding.transportName;
  }

  // --- operations of the provider table -------------------------------------------------------

  open(options: OpenOptions): void {
    this.assertUsable();
    if (this.callbacks)
      throw new InvalidStateError('the transport is already open: close it before opening again');
    if (typeof options?.onRegistrationData !== 'function' || typeof options.onStatus !== 'function') {
      throw new InvalidInputError(
        'open',
        'open needs both the registration-data callback and the status callback',
      );
    }
    if (options.ek !== undefined || options.srk !== undefined) {
      throw new NotSupportedError(
        'TPM endorsement and storage keys were given, but DPS has no TPM attestation over MQTT',
      );
    }
    // Keep our own references, not the caller's object (PROV_TRANSPORT_MQTT_COMMON_07_009).
    this.callbacks = { onRegistrationData: options.onRegistrationData, onStatus: options.onStatus };
  }

  close(): void {
    this.assertUsable();
    if (!this.callbacks) throw new InvalidStateError('the transport is not open: call open() first');
    this.teardownConnection(true);
    this.request = undefined;
    this.registrationInFlight = false;
    this.callbacks = undefined;
  }

  destroy(): void {
    if (this.destroyed) return;
    if (this.callbacks) this.close();
    else this.teardownConnection(false);
    // Release stored secrets (PROV_TRANSPORT_MQTT_COMMON_07_006).
    this.challenge = undefined;
    this.clientCertificate = undefined;
    this.proxy = undefined;
    this.payload = undefined;
    this.csr = undefined;
    this.destroyed = true;
  }

  registerDevice(options: RegisterOptions = {}): void {
    this.assertOpen();
    if (this.registrationInFlight) {
      throw new InvalidStateError(
        'a registration is already in progress: wait for its result before registering again',
      );
    }
    if (this.hsmType === 'symmetricKey' && typeof options.challenge !== 'function') {
      throw new InvalidInputError(
        'challenge',
        'symmetric-key registration needs the challenge callback that returns the SAS token',
      );
    }
    if (this.hsmType === 'x509' && !this.clientCertificate) {
      throw new InvalidInputError(
        'certificate',
        'X.509 registration needs the device certificate and key: call x509Cert() first',
      );
    }
    // Serialised now, so a payload that cannot become JSON throws here and not in a socket handler.
    if (options.payload !== undefined) serialiseJsonValue(options.payload, 'payload');
    if (
      options.csr !== undefined &&
      (typeof options.csr !== 'string' || !BASE64_ONE_LINE.test(options.csr))
    ) {
      throw new InvalidInputError('csr', 'csr must be a PKCS#10 request as base64 DER on one line');
    }
    this.challenge = options.challenge;
    this.payload = options.payload;
    this.csr = options.csr;
    this.operationId = undefined;
    this.registrationInFlight = true;
    this.request = { kind: 'register', requestId: undefined, transientAttempts: 0, waitingForRetry: false };
  }

  getOperationStatus(): void {
    this.assertOpen();
    if (!this.operationId) {
      throw new InvalidStateError(
        'there is no operation to query: register the device first and wait for "assigning"',
      );
    }
    if (this.request) throw new InvalidStateError('a request is already in flight: wait for its answer');
    this.registrationInFlight = true;
    this.request = {
      kind: 'operationStatus',
      requestId: undefined,
      transientAttempts: 0,
      waitingForRetry: false,
    };
  }

  /** Advances the state machine one step; safe to call at any rate, from anywhere. */
  doWork(): void {
    if (this.destroyed || !this.callbacks || !this.request || this.request.waitingForRetry) return;
    if (this.connectionState === 'disconnected') {
      this.startConnecting();
    } else if (this.connectionState === 'ready' && this.request.requestId === undefined) {
      this.sendRequest();
    }
  }

  setTrace(traceOn: boolean): void {
    this.assertUsable();
    this.traceOn = traceOn === true;
  }

  x509Cert(certificate: string, privateKey: string): void {
    this.assertUsable();
    validateCertificateAndKey(certificate, privateKey);
    this.clientCertificate = { certPem: certificate, keyPem: privateKey };
  }

  setTrustedCert(certificate: string): void {
    this.assertUsable();
    if (typeof certificate !== 'string' || !certificate.includes('-----BEGIN CERTIFICATE-----')) {
      throw new InvalidInputError(
        'trustedCa',
        'the trusted certificate must be PEM (-----BEGIN CERTIFICATE-----)',
      );
    }
    try {
      if (certificate !== lastParsedTrustedCa) new X509Certificate(certificate);
      lastParsedTrustedCa = certificate;
    } catch {
      throw new InvalidInputError(
        'trustedCa',
        'the trusted certificate could not be parsed: pass the CA certificate in PEM form',
      );
    }
    this.trustedCa = certificate;
  }

  setProxy(proxy: ProxyOptions): void {
    this.assertUsable();
    this.proxy = validateProxy(proxy);
  }

  setOption<Name extends TransportOptionName>(name: Name, value: TransportOptionValues[Name]): void {
    this.assertUsable();
    validateOption(name, value);
    this.options = { ...this.options, [name]: value };
    if (name === 'insecureSkipVerify' && value === true) {
      process.emitWarning(
        'dps-mqtt: insecureSkipVerify is on: the server certificate is NOT verified, anyone on the network path can impersonate DPS and read the device credentials',
        { code: 'DPS_MQTT_INSECURE_TLS' },
      );
    }
  }

  // --- connection ------------------------------------------------------------------------------

  private startConnecting(): void {
    let password: string | undefined;
    try {
      password = this.hsmType === 'symmetricKey' ? this.challenge?.('registration') : undefined;
    } catch (error) {
      this.fail(new InvalidInputError('challenge', `the challenge callback failed: ${errorMessage(error)}`));
      return;
    }
    this.connectionState = 'opening';
    this.notify({ status: 'connecting' });
    const abort = new AbortController();
    this.openAbort = abort;
    const ioOptions = {
      host: this.host,
      port: this.port,
      trustMode: this.options.trustMode,
      insecureSkipVerify: this.options.insecureSkipVerify,
      signal: abort.signal,
      timeoutMs: this.options.connectTimeoutMs,
      ...(this.trustedCa === undefined ? {} : { trustedCa: this.trustedCa }),
      ...(this.clientCertificate === undefined ? {} : { clientCertificate: this.clientCertificate }),
      ...(this.proxy === undefined ? {} : { proxy: this.proxy }),
    };
    this.binding.transportIo(ioOptions).then(
      (stream) => this.guarded(() => this.onStreamOpen(stream, abort, password)),
      (error: unknown) => {
        if (this.openAbort !== abort) return; // closed meanwhile
        this.openAbort = undefined;
        this.fail(asDpsError(error, 'tcp'));
      },
    );
  }

  private onStreamOpen(stream: Duplex, abort: AbortController, password: string | undefined): void {
    if (this.openAbort !== abort || this.destroyed) {
      stream.destroy();
      return;
    }
    this.openAbort = undefined;
    const transport = this;
    const traceLine = (line: string): void => this.trace(line);
    const connection = new MqttConnection(stream, {
      onPacket: (packet) => this.onPacket(connection, packet),
      onClose: (error) => this.onConnectionClosed(connection, error),
      // A getter, so that with tracing off no packet is described at all (set_trace may turn it on later).
      get trace() {
        return transport.traceOn ? traceLine : undefined;
      },
    });
    this.connection = connection;
    this.connectionState = 'awaitingConnack';
    connection.connect({
      clientId: this.registrationId,
      username: buildUsername({
        idScope: this.idScope,
        registrationId: this.registrationId,
        apiVersion: this.apiVersion,
        userAgent: this.options.userAgent,
      }),
      ...(password === undefined ? {} : { password }),
      keepAliveSeconds: this.options.keepAliveSeconds,
      cleanSession: true,
    });
    this.startExchangeTimer(this.options.connectTimeoutMs, 'connack', 'CONNACK');
    if (this.options.pipeline) {
      // MQTT 3.1.1 §3.1.4: a client may send further packets right after CONNECT.
      connection.subscribe(SUBSCRIBE_TOPIC, 1);
      this.sendRequest();
    }
  }

  private onPacket(connection: MqttConnection, packet: ServerPacket): void {
    if (connection !== this.connection) return;
    // Runs in a socket handler: whatever goes wrong must reach the caller, not crash the process.
    this.guarded(() => {
      // PUBACKs of our requests need no action: the response is what counts.
      if (packet.type === 'connack') this.onConnack(connection, packet.returnCode);
      else if (packet.type === 'suback') this.onSuback(packet.granted);
      else if (packet.type === 'publish') this.onResponse(packet.topic, packet.payload);
    });
  }

  /** Runs an event handler; an exception becomes the registration's error instead of an uncaught one. */
  private guarded(action: () => void): void {
    try {
      action();
    } catch (error) {
      const phase = this.connectionPhase();
      try {
        this.fail(
          error instanceof DpsError
            ? error
            : new TransportError(`unexpected error while handling the connection: ${errorMessage(error)}`, {
                phase,
                cause: error,
                retryable: false,
              }),
        );
      } catch {
        // The caller's own callback threw while being told: nothing more can be reported.
      }
    }
  }

  private onConnack(connection: MqttConnection, returnCode: number): void {
    if (this.connectionState !== 'awaitingConnack') {
      this.fail(new ProtocolError('the server sent a second CONNACK', { phase: 'connack' }));
      return;
    }
    this.clearExchangeTimer();
    if (returnCode !== 0) {
      const meaning = CONNACK_MEANINGS[returnCode] ?? 'refused';
      this.fail(
        new AuthenticationError(
          returnCode,
          `DPS refused the connection (CONNACK return code ${returnCode}): ${meaning}`,
        ),
      );
      return;
    }
    this.notify({ status: 'connected' });
    this.connectionState = 'awaitingSuback';
    if (!this.options.pipeline) connection.subscribe(SUBSCRIBE_TOPIC, 1);
    this.startExchangeTimer(this.options.responseTimeoutMs, 'subscribe', 'SUBACK');
  }

  private onSuback(granted: number[]): void {
    if (this.connectionState !== 'awaitingSuback') {
      // SUBACK only ever follows CONNACK, pipelined or not: anything else is out of order.
      this.fail(new ProtocolError('the server sent SUBACK before CONNACK', { phase: 'subscribe' }));
      return;
    }
    this.clearExchangeTimer();
    if (granted.length !== 1 || granted[0] === 0x80) {
      this.fail(
        new ProtocolError(`the server refused the subscription to ${SUBSCRIBE_TOPIC}`, {
          phase: 'subscribe',
        }),
      );
      return;
    }
    this.connectionState = 'ready';
    this.notify({ status: 'authenticated' });
    if (this.request?.requestId !== undefined) {
      this.startExchangeTimer(this.options.responseTimeoutMs, this.requestPhase(), 'a response');
    }
    this.doWork();
  }

  private sendRequest(): void {
    const request = this.request;
    const connection = this.connection;
    if (!request || !connection) return;
    this.requestCount += 1;
    request.requestId = String(this.requestCount);
    if (request.kind === 'register') {
      let body: string;
      try {
        body = JSON.stringify({
          registrationId: this.registrationId,
          ...(this.payload === undefined ? {} : { payload: this.payload }),
          ...(this.csr === undefined ? {} : { csr: this.csr }),
        });
      } catch (error) {
        // The caller changed the payload after registerDevice() checked it.
        this.fail(
          new InvalidInputError('payload', `payload cannot be converted to JSON: ${errorMessage(error)}`),
        );
        return;
      }
      this.notify({ status: 'registering' });
      connection.publish(registerTopic(request.requestId), body, 1);
    } else {
      connection.publish(operationStatusTopic(request.requestId, this.operationId ?? ''), '', 1);
    }
    if (this.connectionState === 'ready') {
      this.startExchangeTimer(this.options.responseTimeoutMs, this.requestPhase(), 'a response');
    }
  }

  // --- responses -------------------------------------------------------------------------------

  private onResponse(topic: string, body: Buffer): void {
    let response: ReturnType<typeof parseResponseTopic>;
    try {
      response = parseResponseTopic(topic);
    } catch (error) {
      this.fail(asDpsError(error, this.requestPhase()));
      return;
    }
    const request = this.request;
    if (!request || request.requestId !== response.requestId) {
      this.trace(`ignoring a response for $rid=${response.requestId}: not the request in flight`);
      return;
    }
    this.clearExchangeTimer();
    const phase = this.requestPhase();
    const retryAfterMs = Math.round((response.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS) * 1000);
    const statusClass = classifyStatusCode(response.statusCode);
    if (statusClass !== 'success') {
      const details = parseServiceErrorBody(body);
      const error = new ProvisioningServiceError(
        `DPS answered ${response.statusCode}${details.errorCode ? ` (error ${details.errorCode})` : ''} to the ${phase === 'register' ? 'register request' : 'status query'}${details.message ? `: ${details.message}` : ''}`,
        { statusCode: response.statusCode, ...details, retryAfterMs, phase },
      );
      if (statusClass === 'transient') this.retryTransient(request, error, retryAfterMs);
      else this.fail(error);
      return;
    }
    let operation: OperationStatus;
    try {
      operation = parseOperationStatus(body);
    } catch (error) {
      this.fail(asDpsError(error, phase));
      return;
    }
    this.onOperationStatus(operation, retryAfterMs);
  }

  private onOperationStatus(operation: OperationStatus, retryAfterMs: number): void {
    this.request = undefined;
    if (operation.operationId) this.operationId = operation.operationId;
    const state = operation.registrationState;
    switch (operation.status) {
      case 'assigned':
        this.registrationInFlight = false;
        this.callbacks?.onRegistrationData({
          kind: 'assigned',
          assignedHub: state?.assignedHub ?? '',
          deviceId: state?.deviceId ?? '',
          registrationState: state ?? { registrationId: this.registrationId },
          operationStatus: operation,
        });
        return;
      case 'assigning':
      case 'unassigned':
        if (!this.operationId) {
          this.fail(
            new ProtocolError(`status "${operation.status}" came without an operationId to poll`, {
              phase: 'poll',
            }),
          );
          return;
        }
        this.notify({
          status: 'assigning',
          operationId: this.operationId,
          retryAfterMs,
          operationStatus: operation,
        });
        return;
      default: {
        const reason = state?.errorMessage ? `: ${state.errorMessage}` : '';
        this.fail(
          new RegistrationFailedError(
            `DPS ended the registration with status "${operation.status}"${state?.errorCode ? ` (error ${state.errorCode})` : ''}${reason}`,
            {
              status: operation.status,
              errorCode: state?.errorCode,
              errorMessage: state?.errorMessage,
              operationId: this.operationId,
            },
          ),
          false,
        );
      }
    }
  }

  /** 429 and 5xx: wait retry-after and send the same request again, a bounded number of times. */
  private retryTransient(
    request: PendingRequest,
    error: ProvisioningServiceError,
    retryAfterMs: number,
  ): void {
    request.transientAttempts += 1;
    if (request.transientAttempts > this.options.maxTransientRetries) {
      this.fail(error);
      return;
    }
    request.requestId = undefined;
    request.waitingForRetry = true;
    this.notify({
      status: 'transient',
      statusCode: error.statusCode,
      retryAfterMs,
      attempt: request.transientAttempts,
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      request.waitingForRetry = false;
      this.guarded(() => this.doWork());
    }, retryAfterMs);
  }

  // --- errors and teardown ---------------------------------------------------------------------

  private onConnectionClosed(connection: MqttConnection, error: DpsError): void {
    if (connection !== this.connection) return;
    this.connection = undefined;
    const phase = this.connectionPhase();
    this.connectionState = 'disconnected';
    this.clearExchangeTimer();
    if (this.request) {
      const message = `${error.message} (while waiting for ${phase === 'connack' ? 'CONNACK' : phase === 'subscribe' ? 'SUBACK' : 'the answer to the request'})`;
      this.fail(
        error instanceof TransportError
          ? new TransportError(message, {
              phase,
              cause: error,
              retryable: error.retryable,
              reason: error.reason,
            })
          : error,
      );
    } else {
      this.notify({ status: 'disconnected' });
    }
  }

  /**
   * Moves to the error state, tears the connection down and reports the error once through the
   * registration-data callback, then returns to idle (PROV_TRANSPORT_MQTT_COMMON_07_049, _057).
   */
  private fail(error: DpsError, disconnect = true): void {
    this.request = undefined;
    this.registrationInFlight = false;
    if (disconnect) this.teardownConnection(false);
    const callbacks = this.callbacks;
    if (disconnect) callbacks?.onStatus({ status: 'disconnected' });
    callbacks?.onRegistrationData({ kind: 'error', error });
  }

  private teardownConnection(graceful: boolean): void {
    this.clearExchangeTimer();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.openAbort?.abort();
    this.openAbort = undefined;
    const connection = this.connection;
    this.connection = undefined;
    this.connectionState = 'disconnected';
    if (connection) {
      if (graceful) connection.disconnect();
      else connection.destroy();
    }
  }

  private startExchangeTimer(timeoutMs: number, phase: Phase, awaited: string): void {
    this.clearExchangeTimer();
    this.exchangeTimer = setTimeout(() => {
      this.exchangeTimer = undefined;
      this.fail(
        new TimeoutError(`no ${awaited} from ${this.host}:${this.port} within ${timeoutMs} ms`, { phase }),
      );
    }, timeoutMs);
  }

  private clearExchangeTimer(): void {
    if (this.exchangeTimer) clearTimeout(this.exchangeTimer);
    this.exchangeTimer = undefined;
  }

  private connectionPhase(): Phase {
    if (this.connectionState === 'awaitingConnack') return 'connack';
    if (this.connectionState === 'awaitingSuback') return 'subscribe';
    return this.requestPhase();
  }

  private requestPhase(): Phase {
    return this.request?.kind === 'operationStatus' ? 'poll' : 'register';
  }

  private notify(status: TransportStatus): void {
    this.callbacks?.onStatus(status);
  }

  private trace(line: string): void {
    if (!this.traceOn) return;
    try {
      this.options.traceSink(
        redact(`[dps-mqtt ${this.transportName} ${this.registrationId}] ${line}`, [this.proxy?.password]),
      );
    } catch {
      // A throwing trace sink must not break the registration (nor the process, from a socket handler).
    }
  }

  private assertUsable(): void {
    if (this.destroyed) throw new InvalidStateError('the transport was destroyed: create a new one');
  }

  private assertOpen(): void {
    this.assertUsable();
    if (!this.callbacks) throw new InvalidStateError('the transport is not open: call open() first');
  }
}

/** `host`, `host:port`, `[v6]:port`; a scheme or path is refused with a hint. */
export function parseEndpoint(uri: string, defaultPort: number): { host: string; port: number } {
  if (typeof uri !== 'string' || uri.trim() === '') {
    throw new InvalidInputError(
      'endpoint',
      'the DPS endpoint is missing: use global.azure-devices-provisioning.net or host:port',
    );
  }
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/\s[\]]+))(?::(\d{1,5}))?$/.exec(uri.trim());
  const port = match?.[3] === undefined ? defaultPort : Number(match[3]);
  const host = match?.[1] ?? match?.[2];
  if (!host || port < 1 || port > 65535) {
    throw new InvalidInputError(
      'endpoint',
      `the DPS endpoint ${JSON.stringify(uri)} is invalid: give a host name with an optional port (global.azure-devices-provisioning.net, localhost:8443), without a scheme or path`,
    );
  }
  return { host, port };
}

export function validateProxy(proxy: ProxyOptions): ProxyOptions {
  if (!proxy || typeof proxy.host !== 'string' || proxy.host.trim() === '') {
    throw new InvalidInputError('proxy', 'the proxy host name is missing: give the proxy as host and port');
  }
  if (!Number.isInteger(proxy.port) || proxy.port < 1 || proxy.port > 65535) {
    throw new InvalidInputError(
      'proxy',
      `the proxy port ${JSON.stringify(proxy.port)} is invalid: use 1-65535`,
    );
  }
  if (proxy.password !== undefined && !proxy.username) {
    throw new InvalidInputError(
      'proxy',
      'a proxy password was given without a user name: give both, or neither',
    );
  }
  return { ...proxy };
}

function validateOption(name: TransportOptionName, value: unknown): void {
  const positiveInteger = (max: number) =>
    typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
  const valid: Record<TransportOptionName, () => boolean> = {
    keepAliveSeconds: () => positiveInteger(65535),
    connectTimeoutMs: () => positiveInteger(600_000) && value !== 0,
    responseTimeoutMs: () => positiveInteger(600_000) && value !== 0,
    maxTransientRetries: () => positiveInteger(1_000_000),
    pipeline: () => typeof value === 'boolean',
    traceSink: () => typeof value === 'function',
    userAgent: () => typeof value === 'string' && value.length < 512,
    trustMode: () => value === 'replace' || value === 'extend',
    insecureSkipVerify: () => typeof value === 'boolean',
  };
  const check = valid[name];
  if (!check) throw new InvalidInputError(String(name), `unknown transport option ${JSON.stringify(name)}`);
  if (!check())
    throw new InvalidInputError(
      name,
      `transport option ${name} has an invalid value ${JSON.stringify(value)}`,
    );
}

function asDpsError(error: unknown, phase: Phase): DpsError {
  if (error instanceof DpsError) return error;
  return new TransportError(errorMessage(error), { phase, cause: error });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// --- the common transport's operations, as the providers call them ------------------------------

export type MqttTransportHandle = CommonMqttTransport;

export const commonMqtt = {
  create: (options: TransportCreateOptions, binding: TransportIoBinding): MqttTransportHandle =>
    new CommonMqttTransport(options, binding),
  destroy: (handle: MqttTransportHandle | undefined): void => handle?.destroy(),
  open: (handle: MqttTransportHandle, options: OpenOptions): void => handle.open(options),
  close: (handle: MqttTransportHandle): void => handle.close(),
  registerDevice: (handle: MqttTransportHandle, options: RegisterOptions): void =>
    handle.registerDevice(options),
  getOperationStatus: (handle: MqttTransportHandle): void => handle.getOperationStatus(),
  doWork: (handle: MqttTransportHandle): void => handle.doWork(),
  setTrace: (handle: MqttTransportHandle, traceOn: boolean): void => handle.setTrace(traceOn),
  x509Cert: (handle: MqttTransportHandle, certificate: string, privateKey: string): void =>
    handle.x509Cert(certificate, privateKey),
  setTrustedCert: (handle: MqttTransportHandle, certificate: string): void =>
    handle.setTrustedCert(certificate),
  setProxy: (handle: MqttTransportHandle, proxy: ProxyOptions): void => handle.setProxy(proxy),
  setOption: <Name extends TransportOptionName>(
    handle: MqttTransportHandle,
    name: Name,
    value: TransportOptionValues[Name],
  ): void => handle.setOption(name, value),
};
