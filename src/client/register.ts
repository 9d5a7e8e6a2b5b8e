// register(): one call from an ID scope, a registration id and a credential to an IoT hub
// assignment. The client knows policies (when to retry, how long to wait), not packets: the
// transport reports outcomes and statuses, and this loop decides what happens next.
import { performance } from 'node:perf_hooks';
import {
  AbortError,
  AuthenticationError,
  type DpsError,
  InvalidInputError,
  ProtocolError,
  ProvisioningServiceError,
  ProxyError,
  RegistrationFailedError,
  TimeoutError,
  TransportError,
} from '../protocol/errors.js';
import { createSasToken, DEFAULT_SAS_LIFETIME_SECONDS } from '../protocol/sas.js';
import { DEFAULT_API_VERSION } from '../protocol/username.js';
import { validateApiVersion, validateIdScope } from '../protocol/validate.js';
import { type MqttTransportHandle, parseEndpoint } from '../transport/common.js';
import type { RegistrationOutcome, TransportProvider, TransportStatus } from '../transport/types.js';
import { backoffDelayMs, DEFAULT_BACKOFF } from './backoff.js';
import { mqttTlsProtocolLazy, mqttWsProtocolLazy } from './providers.js';
import { resolveProxy } from './proxy-from-env.js';
import { type ResolvedSecurity, readPem, resolveSecurity } from './security.js';
import type {
  ProgressEvent,
  ProvisioningClientOptions,
  RegisterCallOptions,
  RegistrationResult,
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
  if (call.signal?.aborted) throw new AbortError();
  const provider = await (plan.transport === 'mqtt' ? mqttTlsProtocolLazy() : mqttWsProtocolLazy());
  const handle = provider.create({
    uri: plan.endpoint,
    hsmType: plan.security.kind,
    idScope: plan.idScope,
    registrationId: plan.security.registrationId,
    apiVersion: plan.apiVersion,
  });
  try {
    configure(provider, handle, options, plan);
    return await runRegistration(provider, handle, options, plan, call);
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
  security: ResolvedSecurity;
}

/** Every check that can be made before the network is touched. */
function prepare(options: ProvisioningClientOptions): Plan {
  if (!options || typeof options !== 'object') {
    throw new InvalidInputError(
      'options',
      'register() needs an options object with idScope, registrationId and security',
    );
  }
  const transport = options.transport ?? 'mqtt-ws';
  if (transport !== 'mqtt-ws' && transport !== 'mqtt') {
    throw new InvalidInputError(
      'transport',
      `transport ${JSON.stringify(transport)} is unknown: use mqtt-ws or mqtt`,
    );
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidInputError(
      'timeoutMs',
      `timeoutMs ${JSON.stringify(options.timeoutMs)} is invalid: give a positive number of milliseconds`,
    );
  }
  const endpoint = options.endpoint ?? DEFAULT_ENDPOINT;
  parseEndpoint(endpoint, 443);
  return {
    idScope: validateIdScope(options.idScope),
    endpoint,
    apiVersion: validateApiVersion(options.apiVersion ?? DEFAULT_API_VERSION),
    transport,
    timeoutMs,
    security: resolveSecurity(options.security, options.registrationId),
  };
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
): Promise<RegistrationResult> {
  const startedAt = performance.now();
  const deadlineAt = startedAt + plan.timeoutMs;
  const backoff = { ...DEFAULT_BACKOFF, ...options.retry };
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
  const emit = (event: ProgressEvent) => {
    try {
      options.onProgress?.(event);
    } catch {
      // A throwing progress listener must not break the registration.
    }
  };

  return new Promise<RegistrationResult>((resolve, reject) => {
    let nextStepTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const deadlineTimer = setTimeout(() => {
      const cause = lastError ? ` (last error: ${lastError.message})` : '';
      finish(
        new TimeoutError(`registration did not complete within ${plan.timeoutMs} ms${cause}`, {
          cause: lastError,
        }),
      );
    }, plan.timeoutMs);
    const onAbort = () => finish(new AbortError());
    call.signal?.addEventListener('abort', onAbort, { once: true });

    function finish(outcome: RegistrationResult | DpsError): void {
      if (settled) return;
      settled = true;
      clearTimeout(deadlineTimer);
      if (nextStepTimer) clearTimeout(nextStepTimer);
      call.signal?.removeEventListener('abort', onAbort);
      provider.destroy(handle);
      if (outcome instanceof Error) reject(withHint(outcome));
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
          provider.registerDevice(handle, payload === undefined ? { challenge } : { challenge, payload });
        }
        provider.doWork(handle);
      } catch (error) {
        finish(error as DpsError);
      }
    }

    function later(delayMs: number, action: () => void): void {
      if (performance.now() + delayMs > deadlineAt) {
        const cause = lastError ? `: ${lastError.message}` : '';
        finish(
          new TimeoutError(`the next attempt would pass the ${plan.timeoutMs} ms deadline${cause}`, {
            cause: lastError,
          }),
        );
        return;
      }
      nextStepTimer = setTimeout(() => {
        nextStepTimer = undefined;
        action();
      }, delayMs);
    }

    function onStatus(status: TransportStatus): void {
      if (status.status === 'connecting') {
        counters.connections += 1;
        emit({ type: 'connecting', attempt: counters.connections });
      } else if (status.status === 'connected') {
        emit({ type: 'connected' });
      } else if (status.status === 'registering') {
        emit({ type: 'registering' });
      } else if (status.status === 'assigning') {
        operationId = status.operationId;
        counters.failures = 0;
        emit({
          type: 'assigning',
          operationId,
          pollCount: counters.polls + 1,
          retryAfterMs: status.retryAfterMs,
        });
        later(status.retryAfterMs, step);
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
        emit({ type: 'assigned', assignedHub: outcome.assignedHub, deviceId: outcome.deviceId });
        const result: RegistrationResult = {
          registrationId: security.registrationId,
          assignedHub: outcome.assignedHub,
          deviceId: outcome.deviceId,
          status: outcome.operationStatus.status,
          operationId: outcome.operationStatus.operationId || operationId || '',
          registrationState: state,
          attestation: security.kind,
          timings: {
            totalMs: Math.round(performance.now() - startedAt),
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
      later(waitMs, step);
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

/** Drops, unanswered requests, 429/5xx and "server unavailable" are worth another try. */
export function isRetryable(error: DpsError): boolean {
  if (error instanceof TransportError || error instanceof ProxyError) return error.retryable;
  if (error instanceof TimeoutError) return true;
  if (error instanceof ProvisioningServiceError) return error.retryable;
  if (error instanceof AuthenticationError) return error.returnCode === 3;
  return false;
}

function withHint(error: DpsError): DpsError {
  if (error.hint !== undefined) return error;
  if (
    error instanceof AuthenticationError ||
    (error instanceof ProvisioningServiceError && error.statusCode === 401)
  ) {
    error.hint =
      'check the ID scope, the registration id and the key or certificate, and that the enrollment exists and is enabled';
  } else if (error instanceof ProvisioningServiceError && error.statusCode === 404) {
    error.hint = 'check the ID scope and the registration id, and that the device is enrolled';
  } else if (error instanceof ProvisioningServiceError && error.statusCode === 400) {
    error.hint = 'the service found the request malformed: check the custom payload and the api version';
  } else if (error instanceof RegistrationFailedError && error.status === 'disabled') {
    error.hint = 'the enrollment or the device registration is disabled: enable it in the DPS instance';
  } else if (error instanceof TimeoutError) {
    error.hint = 'raise the timeout, or check the network path (proxy, firewall) to the DPS endpoint';
  } else if (error instanceof ProtocolError) {
    error.hint =
      'the server does not speak the DPS protocol as expected: check the endpoint (and any TLS-intercepting proxy)';
  }
  return error;
}
