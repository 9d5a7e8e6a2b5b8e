// register(): one call from an ID scope, a registration id and a credential to an IoT hub
// assignment. The client knows policies (when to retry, how long to wait), not packets: the
// transport reports outcomes and statuses, and this loop decides what happens next.
import {
  AbortError,
  AuthenticationError,
  CertificateChainError,
  type DpsError,
  InvalidInputError,
  type Phase,
  ProtocolError,
  ProvisioningServiceError,
  ProxyError,
  RegistrationFailedError,
  TimeoutError,
  TransportError,
} from '../protocol/errors.js';
import { findUnknownOption } from '../protocol/known-options.js';
import { MAX_TIMER_MS } from '../protocol/limits.js';
import { createSasToken, DEFAULT_SAS_LIFETIME_SECONDS } from '../protocol/sas.js';
import { DEFAULT_API_VERSION } from '../protocol/username.js';
import {
  describeValue,
  serialiseJsonValue,
  validateApiVersion,
  validateIdScope,
} from '../protocol/validate.js';
import { type MqttTransportHandle, parseEndpoint } from '../transport/common.js';
import type { RegistrationOutcome, TransportProvider, TransportStatus } from '../transport/types.js';
import { type BackoffPolicy, backoffDelayMs, DEFAULT_BACKOFF } from './backoff.js';
import {
  certificateApiVersion,
  type PreparedCertificateRequest,
  prepareCertificateRequest,
} from './certificate-options.js';
import { mqttTlsProtocolLazy, mqttWsProtocolLazy } from './providers.js';
import { resolveProxy } from './proxy-from-env.js';
import { type ResolvedSecurity, readPem, resolveSecurity } from './security.js';
import {
  type CertificateRequestOptions,
  type IssuedCertificate,
  PROVISIONING_CLIENT_OPTION_NAMES,
  PROXY_OPTION_NAMES,
  type ProgressEvent,
  type ProvisioningClientOptions,
  REGISTER_CALL_OPTION_NAMES,
  RETRY_OPTION_NAMES,
  type RegisterCallOptions,
  type RegistrationResult,
} from './types.js';

export const DEFAULT_ENDPOINT = 'global.azure-devices-provisioning.net';
export const DEFAULT_TIMEOUT_MS = 120_000;
/** The client's deadline bounds throttling; the transport's own cap only guards direct users. */
const TRANSIENT_RETRIES_WITHIN_DEADLINE = 10_000;

/** A reusable client: validates its options once, registers as often as asked. */
export class ProvisioningClient {
  private readonly options: ProvisioningClientOptions;

  constructor(options: ProvisioningClientOptions) {
    prepare(options); // fail fast on bad input
    this.options = { ...options };
  }

  register(call: RegisterCallOptions = {}): Promise<RegistrationResult> {
    return register(this.options, call);
  }
}

export async function register(
  options: ProvisioningClientOptions,
  call: RegisterCallOptions = {},
): Promise<RegistrationResult> {
  const plan = prepare(options);
  checkCallOptions(call);
  if (call.signal?.aborted) throw abortedByCaller(call.signal, 'input');
  // The CSR (a new key pair, or the caller's CSR checked) is ready before the network is touched.
  const [provider, certificate] = await Promise.all([
    plan.transport === 'mqtt' ? mqttTlsProtocolLazy() : mqttWsProtocolLazy(),
    plan.certificate === undefined
      ? undefined
      : prepareCertificateRequest(plan.certificate, plan.security.registrationId),
  ]);
  if (call.signal?.aborted) throw abortedByCaller(call.signal, 'input');
  const handle = provider.create({
    uri: plan.endpoint,
    hsmType: plan.security.kind,
    idScope: plan.idScope,
    registrationId: plan.security.registrationId,
    apiVersion: plan.apiVersion,
  });
  try {
    configure(provider, handle, options, plan);
    return await runRegistration(provider, handle, options, plan, call, certificate);
  } finally {
    provider.destroy(handle);
  }
}

interface Plan {
  idScope: string;
  endpoint: string;
  apiVersion: string;
  transport: 'mqtt-ws' | 'mqtt';
  timeoutMs: number;
  retry: BackoffPolicy;
  security: ResolvedSecurity;
  /** Certificate issuance was asked for (the CSR is prepared in register(), loaded lazily). */
  certificate: CertificateRequestOptions | undefined;
}

/** Every check that can be made before the network is touched. */
function prepare(options: ProvisioningClientOptions): Plan {
  if (!options || typeof options !== 'object') {
    throw new InvalidInputError(
      'options',
      'register() needs an options object with idScope, registrationId and security',
    );
  }
  const unknown = findUnknownOption(options, PROVISIONING_CLIENT_OPTION_NAMES);
  if (unknown) throw new InvalidInputError(unknown.field, unknown.message);
  const transport = options.transport ?? 'mqtt-ws';
  if (transport !== 'mqtt-ws' && transport !== 'mqtt') {
    throw new InvalidInputError(
      'transport',
      `transport ${JSON.stringify(transport)} is unknown: use mqtt-ws or mqtt`,
    );
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidInputError(
      'timeoutMs',
      `timeoutMs ${describeValue(options.timeoutMs)} is invalid: give a positive number of milliseconds`,
    );
  }
  if (timeoutMs > MAX_TIMER_MS) {
    throw new InvalidInputError('timeoutMs', `timeoutMs ${timeoutMs} is too large: ${MAX_TIMER_DESCRIPTION}`);
  }
  const retry = checkRetry(options.retry);
  checkKeepAlive(options.keepAliveSeconds);
  checkProxyObject(options.proxy);
  const endpoint = options.endpoint ?? DEFAULT_ENDPOINT;
  parseEndpoint(endpoint, 443);
  if (options.payload !== undefined) serialiseJsonValue(options.payload, 'payload');
  return {
    idScope: validateIdScope(options.idScope),
    endpoint,
    // Certificate issuance needs 2025-07-01-preview or later.
    apiVersion:
      options.certificate === undefined
        ? validateApiVersion(options.apiVersion ?? DEFAULT_API_VERSION)
        : certificateApiVersion(options.certificate, options.apiVersion),
    transport,
    timeoutMs,
    retry,
    security: resolveSecurity(options.security, options.registrationId),
    certificate: options.certificate,
  };
}

const MAX_TIMER_DESCRIPTION = `at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest a Node timer holds)`;

function checkRetry(retry: ProvisioningClientOptions['retry']): BackoffPolicy {
  if (retry === undefined) return DEFAULT_BACKOFF;
  if (!retry || typeof retry !== 'object') {
    throw new InvalidInputError('retry', 'retry must be an object: { initialDelayMs, maxDelayMs }');
  }
  const unknown = findUnknownOption(retry, RETRY_OPTION_NAMES, 'retry');
  if (unknown) throw new InvalidInputError(unknown.field, unknown.message);
  const policy: BackoffPolicy = {
    initialDelayMs: retry.initialDelayMs ?? DEFAULT_BACKOFF.initialDelayMs,
    maxDelayMs: retry.maxDelayMs ?? DEFAULT_BACKOFF.maxDelayMs,
  };
  for (const name of ['initialDelayMs', 'maxDelayMs'] as const) {
    const value = policy[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new InvalidInputError(
        `retry.${name}`,
        `retry.${name} ${describeValue(value)} is invalid: give a number of milliseconds, 0 or more`,
      );
    }
    if (value > MAX_TIMER_MS) {
      throw new InvalidInputError(
        `retry.${name}`,
        `retry.${name} ${value} is too large: ${MAX_TIMER_DESCRIPTION}`,
      );
    }
  }
  return policy;
}

/** MQTT carries the keep-alive in two bytes; 0 turns it off. */
function checkKeepAlive(keepAliveSeconds: unknown): void {
  if (keepAliveSeconds === undefined) return;
  if (
    typeof keepAliveSeconds !== 'number' ||
    !Number.isInteger(keepAliveSeconds) ||
    keepAliveSeconds < 0 ||
    keepAliveSeconds > 65_535
  ) {
    throw new InvalidInputError(
      'keepAliveSeconds',
      `keepAliveSeconds ${describeValue(keepAliveSeconds)} is invalid: give whole seconds from 0 (off) to 65535`,
    );
  }
}

function checkProxyObject(proxy: ProvisioningClientOptions['proxy']): void {
  if (proxy === null || typeof proxy !== 'object') return; // a URL, false, or undefined
  const unknown = findUnknownOption(proxy, PROXY_OPTION_NAMES, 'proxy');
  if (unknown) throw new InvalidInputError(unknown.field, unknown.message);
}

/** The per-call options: known names only, and a payload that can become JSON. */
function checkCallOptions(call: RegisterCallOptions): void {
  if (!call || typeof call !== 'object') {
    throw new InvalidInputError('call', 'register() call options must be an object: { signal, payload }');
  }
  const unknown = findUnknownOption(call, REGISTER_CALL_OPTION_NAMES);
  if (unknown) throw new InvalidInputError(unknown.field, unknown.message);
  if (call.payload !== undefined) serialiseJsonValue(call.payload, 'payload');
}

function configure(
  provider: TransportProvider<MqttTransportHandle>,
  handle: MqttTransportHandle,
  options: ProvisioningClientOptions,
  plan: Plan,
): void {
  provider.setOption(handle, 'maxTransientRetries', TRANSIENT_RETRIES_WITHIN_DEADLINE);
  provider.setOption(handle, 'connectTimeoutMs', Math.min(30_000, plan.timeoutMs));
  provider.setOption(handle, 'responseTimeoutMs', Math.min(30_000, plan.timeoutMs));
  if (options.keepAliveSeconds !== undefined)
    provider.setOption(handle, 'keepAliveSeconds', options.keepAliveSeconds);
  if (options.pipeline !== undefined) provider.setOption(handle, 'pipeline', options.pipeline);
  if (options.trustMode !== undefined) provider.setOption(handle, 'trustMode', options.trustMode);
  if (options.insecureSkipVerify) provider.setOption(handle, 'insecureSkipVerify', true);
  if (typeof options.trace === 'function') provider.setOption(handle, 'traceSink', options.trace);
  if (options.trace) provider.setTrace(handle, true);
  if (options.trustedCa !== undefined)
    provider.setTrustedCert(handle, readPem(options.trustedCa, 'trustedCa'));
  if (plan.security.kind === 'x509')
    provider.x509Cert(handle, plan.security.certificate, plan.security.privateKey);
  const proxy = resolveProxy(options.proxy, parseEndpoint(plan.endpoint, 443).host);
  if (proxy) provider.setProxy(handle, proxy);
}

function runRegistration(
  provider: TransportProvider<MqttTransportHandle>,
  handle: MqttTransportHandle,
  options: ProvisioningClientOptions,
  plan: Plan,
  call: RegisterCallOptions,
  certificate?: PreparedCertificateRequest,
): Promise<RegistrationResult> {
  const startedAt = monotonicMs();
  const deadlineAt = startedAt + plan.timeoutMs;
  const backoff = plan.retry;
  const payload = call.payload ?? options.payload;
  const security = plan.security;
  const challenge =
    security.kind === 'symmetricKey'
      ? () =>
          createSasToken({
            idScope: plan.idScope,
            registrationId: security.registrationId,
            key: security.deviceKey,
            expiresAtSeconds: Math.floor(Date.now() / 1000) + DEFAULT_SAS_LIFETIME_SECONDS,
          })
      : undefined;
  const counters = { connections: 0, polls: 0, transientRetries: 0, failures: 0 };
  let operationId: string | undefined;
  let lastError: DpsError | undefined;
  // Where the registration is, for errors raised from outside the transport (deadline, caller's abort).
  let phase: Phase = 'tcp';
  const emit = (event: ProgressEvent) => {
    try {
      options.onProgress?.(event);
    } catch {
      // A throwing progress listener must not break the registration.
    }
  };

  return new Promise<RegistrationResult>((resolve, reject) => {
    let cancelNextStep: (() => void) | undefined;
    let settled = false;
    const deadlineTimer = setTimeout(() => {
      const cause = lastError ? ` (last error: ${lastError.message})` : '';
      finish(
        new TimeoutError(`registration did not complete within ${plan.timeoutMs} ms${cause}`, {
          cause: lastError,
          phase: lastError?.phase ?? phase,
        }),
      );
    }, plan.timeoutMs);
    const onAbort = () => finish(abortedByCaller(call.signal as AbortSignal, phase));
    call.signal?.addEventListener('abort', onAbort, { once: true });

    function finish(outcome: RegistrationResult | DpsError): void {
      if (settled) return;
      settled = true;
      clearTimeout(deadlineTimer);
      cancelNextStep?.();
      call.signal?.removeEventListener('abort', onAbort);
      provider.destroy(handle);
      if (outcome instanceof Error) reject(withHint(outcome, certificate !== undefined));
      else resolve(outcome);
    }

    /** Sends the next request: a status query when DPS gave us an operation, else a register. */
    function step(): void {
      if (settled) return;
      try {
        if (operationId) {
          counters.polls += 1;
          provider.getOperationStatus(handle);
        } else {
          // A resend after a drop carries the same CSR: one key pair per register() call.
          provider.registerDevice(handle, {
            challenge,
            ...(payload === undefined ? {} : { payload }),
            ...(certificate === undefined ? {} : { csr: certificate.csrBase64 }),
          });
        }
        provider.doWork(handle);
      } catch (error) {
        finish(error as DpsError);
      }
    }

    /**
     * Runs `action` after `delayMs`. `now` says what a delay of 0 may do: 'tick' runs it on the next tick,
     * for a poll, whose request then waits on the network; 'turn' after this turn's I/O, for a retry,
     * which must never spin without yielding to I/O and timers should an attempt fail at once.
     */
    function later(delayMs: number, action: () => void, now: 'tick' | 'turn'): void {
      if (monotonicMs() + delayMs > deadlineAt) {
        const cause = lastError ? `: ${lastError.message}` : '';
        finish(
          new TimeoutError(`the next attempt would pass the ${plan.timeoutMs} ms deadline${cause}`, {
            cause: lastError,
            phase: lastError?.phase ?? phase,
          }),
        );
        return;
      }
      const run = (): void => {
        cancelNextStep = undefined;
        action();
      };
      // retry-after=0 means now: setTimeout would make it at least 1 ms (Node's floor), a tenth of a
      // registration on a fast link. On the next tick, a poll leaves with what this turn already wrote
      // (the PUBACK of the answer that asked for it): one TLS record and one write instead of two.
      if (delayMs <= 0 && now === 'tick') {
        let cancelled = false;
        process.nextTick(() => {
          if (!cancelled) run();
        });
        cancelNextStep = () => {
          cancelled = true;
        };
      } else if (delayMs <= 0) {
        const immediate = setImmediate(run);
        cancelNextStep = () => clearImmediate(immediate);
      } else {
        const timer = setTimeout(run, delayMs);
        cancelNextStep = () => clearTimeout(timer);
      }
    }

    function onStatus(status: TransportStatus): void {
      if (status.status === 'connecting') {
        // Opening covers proxy, TCP, TLS and WebSocket; the transport reports only its start.
        phase = 'tcp';
        counters.connections += 1;
        emit({ type: 'connecting', attempt: counters.connections });
      } else if (status.status === 'connected') {
        phase = 'subscribe';
        emit({ type: 'connected' });
      } else if (status.status === 'registering') {
        phase = 'register';
        emit({ type: 'registering' });
      } else if (status.status === 'assigning') {
        phase = 'poll';
        operationId = status.operationId;
        counters.failures = 0;
        emit({
          type: 'assigning',
          operationId,
          pollCount: counters.polls + 1,
          retryAfterMs: status.retryAfterMs,
        });
        later(status.retryAfterMs, step, 'tick');
      } else if (status.status === 'transient') {
        counters.transientRetries += 1;
        emit({
          type: 'transient',
          reason: `DPS answered ${status.statusCode}`,
          statusCode: status.statusCode,
          waitMs: status.retryAfterMs,
          attempt: status.attempt,
        });
      }
    }

    function onRegistrationData(outcome: RegistrationOutcome): void {
      if (settled) return;
      if (outcome.kind === 'assigned') {
        const state = outcome.registrationState;
        let issuedCertificate: IssuedCertificate | undefined;
        try {
          issuedCertificate = certificate?.verifyChain(state.issuedCertificateChain);
        } catch (error) {
          finish(error as DpsError); // a chain that fails a check is never a silent success
          return;
        }
        emit({
          type: 'assigned',
          assignedHub: outcome.assignedHub,
          deviceId: outcome.deviceId,
          ...(state.substatus === undefined ? {} : { substatus: state.substatus }),
        });
        const result: RegistrationResult = {
          registrationId: security.registrationId,
          assignedHub: outcome.assignedHub,
          deviceId: outcome.deviceId,
          status: 'assigned',
          operationId: outcome.operationStatus.operationId || operationId || '',
          registrationState: state,
          attestation: security.kind,
          timings: {
            totalMs: Math.round(monotonicMs() - startedAt),
            connections: counters.connections,
            polls: counters.polls,
            transientRetries: counters.transientRetries,
          },
        };
        for (const field of ['substatus', 'etag', 'createdDateTimeUtc', 'lastUpdatedDateTimeUtc'] as const) {
          if (state[field] !== undefined) result[field] = state[field];
        }
        if (state.payload !== undefined) result.payload = state.payload;
        if (state.trustBundle !== undefined) result.trustBundle = state.trustBundle;
        if (state.connectionProfile !== undefined) result.connectionProfile = state.connectionProfile;
        if (issuedCertificate !== undefined) result.issuedCertificate = issuedCertificate;
        finish(result);
        return;
      }
      const error = outcome.error;
      lastError = error;
      if (!isRetryable(error)) {
        finish(error);
        return;
      }
      // A drop, an unanswered request or a refused-for-now: back off, reconnect, resume.
      counters.failures += 1;
      counters.transientRetries += 1;
      const waitMs =
        error instanceof ProvisioningServiceError && error.retryAfterMs !== undefined
          ? error.retryAfterMs
          : backoffDelayMs(backoff, counters.failures);
      emit({
        type: 'transient',
        reason: error.message,
        ...(error instanceof ProvisioningServiceError ? { statusCode: error.statusCode } : {}),
        waitMs,
        attempt: counters.failures,
      });
      later(waitMs, step, 'turn');
    }

    try {
      provider.open(handle, { onRegistrationData, onStatus });
    } catch (error) {
      finish(error as DpsError);
      return;
    }
    step();
  });
}

/**
 * The error for a caller's abort: a TimeoutError when the signal's reason is a timeout (an
 * `AbortSignal.timeout()`), an AbortError otherwise; either keeps the signal's reason as its cause.
 */
function abortedByCaller(signal: AbortSignal, phase: Phase): DpsError {
  const reason: unknown = signal.reason;
  const during = phase === 'input' ? 'before anything was sent' : `during the ${phase} phase`;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new TimeoutError(`the caller's AbortSignal timed out ${during} (${reason.message})`, {
      phase,
      cause: reason,
    });
  }
  return new AbortError(`the registration was aborted by the caller ${during}`, { phase, cause: reason });
}

/** Drops, unanswered requests, 429/5xx and "server unavailable" are worth another try. */
export function isRetryable(error: DpsError): boolean {
  if (error instanceof TransportError || error instanceof ProxyError) return error.retryable;
  if (error instanceof TimeoutError) return true;
  if (error instanceof ProvisioningServiceError) return error.retryable;
  if (error instanceof AuthenticationError) return error.returnCode === 3;
  return false;
}

function withHint(error: DpsError, sentCsr: boolean): DpsError {
  if (error.hint !== undefined) return error;
  if (
    error instanceof AuthenticationError ||
    (error instanceof ProvisioningServiceError && error.statusCode === 401)
  ) {
    error.hint =
      'check the ID scope, the registration id and the key or certificate, and that the enrollment exists and is enabled';
  } else if (error instanceof ProvisioningServiceError && error.statusCode === 404) {
    error.hint = 'check the ID scope and the registration id, and that the device is enrolled';
  } else if (error instanceof ProvisioningServiceError && error.statusCode === 400 && sentCsr) {
    error.hint =
      "the service refused the request or its certificate signing request: check the message, the key type and the enrollment's certificate issuance policy";
  } else if (error instanceof ProvisioningServiceError && error.statusCode === 400) {
    error.hint = 'the service found the request malformed: check the custom payload and the api version';
  } else if (error instanceof RegistrationFailedError && error.status === 'disabled') {
    error.hint = 'the enrollment or the device registration is disabled: enable it in the DPS instance';
  } else if (error instanceof TimeoutError) {
    error.hint = 'raise the timeout, or check the network path (proxy, firewall) to the DPS endpoint';
  } else if (error instanceof CertificateChainError) {
    error.hint =
      "the certificate DPS issued failed a check and was not used (the chain as received is attached to the error); check the enrollment's certificate issuance policy and the device clock";
  } else if (error instanceof ProtocolError) {
    error.hint =
      'the server does not speak the DPS protocol as expected: check the endpoint (and any TLS-intercepting proxy)';
  }
  return error;
}

/** A monotonic clock in milliseconds, without loading perf_hooks (a cold start pays for every module). */
function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
