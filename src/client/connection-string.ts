// What the device needs next: how to connect to the IoT hub DPS assigned it to.
import { type ResolvedSecurity, resolveSecurity } from './security.js';
import type { DeviceSecurity, RegistrationResult } from './types.js';

/** `HostName=...;DeviceId=...;SharedAccessKey=...` for keys, `...;x509=true` for certificates. */
export function deviceConnectionString(result: RegistrationResult, deviceKey?: string): string {
  const base = `HostName=${result.assignedHub};DeviceId=${result.deviceId}`;
  if (result.attestation === 'x509') return `${base};x509=true`;
  return deviceKey ? `${base};SharedAccessKey=${deviceKey}` : base;
}

/** The IoT hub key of a symmetric-key device is its DPS key (derived from the group key for groups). */
export function deviceKeyOf(security: ResolvedSecurity): string | undefined {
  return security.kind === 'symmetricKey' ? security.deviceKey : undefined;
}

/** The device key for a DeviceSecurity, as the CLI needs it for the connection string. */
export function resolveDeviceKey(
  security: DeviceSecurity,
  registrationId: string | undefined,
): string | undefined {
  if ('symmetricKey' in security || 'groupKey' in security)
    return deviceKeyOf(resolveSecurity(security, registrationId));
  return undefined;
}
