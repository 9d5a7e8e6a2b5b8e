// One device of a fleet through register(): the same client as `dps-mqtt register`, its 429 answers
// reported to the fleet (back-pressure), its outcome made a plain, redacted result.
import { register } from '../client/register.js';
import type { DeviceSecurity, ProvisioningClientOptions, RegistrationResult } from '../client/types.js';
import { redact } from '../protocol/redact.js';
import type { FleetDeviceSpec } from './device-source.js';
import type { GroupCaIssuer } from './group-ca-issuer.js';
import type { FleetDeviceError, FleetDeviceResult } from './types.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A device's result without the fleet's timestamps (the scheduler's clock sets those). */
export type DeviceOutcome = DistributiveOmit<FleetDeviceResult, 'startedAt' | 'finishedAt'>;

/** The client options every device shares: plain data (it crosses to worker threads). */
export type FleetClientOptions = Omit<
  ProvisioningClientOptions,
  'registrationId' | 'security' | 'onProgress' | 'trace' | 'certificate'
>;

export interface RunDeviceOptions {
  client: FleetClientOptions;
  /** Makes certificates for `{ kind: 'issue' }` devices. */
  issuer: GroupCaIssuer | undefined;
  includeKeys: boolean;
  signal: AbortSignal;
  /** The service answered 429 and the client waits `waitMs` before it tries again. */
  onThrottled(waitMs: number): void;
}

export async function runDevice(device: FleetDeviceSpec, options: RunDeviceOptions): Promise<DeviceOutcome> {
  const startedAt = performance.now();
  let throttled = 0;
  const secrets: string[] = [];
  const keys: Pick<FleetDeviceResult, 'deviceKey' | 'certificatePem' | 'privateKeyPem'> = {};
  try {
    let security: DeviceSecurity;
    const credential = device.credential;
    if (credential.kind === 'symmetricKey') {
      security = { symmetricKey: credential.key };
      secrets.push(credential.key);
      if (options.includeKeys) keys.deviceKey = credential.key;
    } else if (credential.kind === 'x509') {
      security = {
        certificate: credential.certificate,
        privateKey: credential.privateKey,
        ...(credential.passphrase === undefined ? {} : { passphrase: credential.passphrase }),
      };
      if (credential.passphrase !== undefined) secrets.push(credential.passphrase);
    } else {
      if (options.issuer === undefined) throw new Error('no group CA to issue a device certificate with');
      const issued = options.issuer.issue(device.registrationId);
      security = { certificate: issued.certificatePem, privateKey: issued.privateKeyPem };
      secrets.push(issued.privateKeyPem);
      if (options.includeKeys) {
        keys.certificatePem = issued.certificatePem;
        keys.privateKeyPem = issued.privateKeyPem;
      }
    }
    const result: RegistrationResult = await register(
      {
        ...options.client,
        registrationId: device.registrationId,
        security,
        onProgress: (event) => {
          if (event.type === 'transient' && event.statusCode === 429) {
            throttled += 1;
            options.onThrottled(event.waitMs);
          }
        },
      },
      { signal: options.signal, ...(device.payload === undefined ? {} : { payload: device.payload }) },
    );
    return {
      index: device.index,
      registrationId: device.registrationId,
      status: 'assigned',
      assignedHub: result.assignedHub,
      deviceId: result.deviceId,
      ...(result.substatus === undefined ? {} : { substatus: result.substatus }),
      latencyMs: round(performance.now() - startedAt),
      connections: result.timings.connections,
      polls: result.timings.polls,
      retries: result.timings.transientRetries,
      throttled,
      ...keys,
    };
  } catch (error) {
    return {
      index: device.index,
      registrationId: device.registrationId,
      status: 'failed',
      error: describeDeviceError(error, secrets),
      latencyMs: round(performance.now() - startedAt),
      throttled,
      ...keys,
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** The error's stable fields, its message redacted: what a results file and a summary may hold. */
export function describeDeviceError(error: unknown, secrets: readonly string[] = []): FleetDeviceError {
  const fields = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const described: FleetDeviceError = {
    code: typeof fields.code === 'string' ? fields.code : 'ERR_INTERNAL',
    phase: typeof fields.phase === 'string' ? fields.phase : undefined,
    message: redact(error instanceof Error ? error.message : String(error), secrets),
  };
  if (typeof fields.statusCode === 'number') described.statusCode = fields.statusCode;
  if (typeof fields.errorCode === 'number') described.errorCode = fields.errorCode;
  if (typeof fields.trackingId === 'string') described.trackingId = fields.trackingId;
  return described;
}
