// The key types a device may ask DPS to certify, shared by the option check (always loaded) and the code
// that generates keys (loaded only when a certificate is requested).
import type { CertificateKeyType } from './types.js';

export const CERTIFICATE_KEY_TYPES: readonly CertificateKeyType[] = ['ec-p384', 'ec-p256', 'rsa-2048'];
export const DEFAULT_CERTIFICATE_KEY_TYPE: CertificateKeyType = 'ec-p384';

export function isCertificateKeyType(value: unknown): value is CertificateKeyType {
  return typeof value === 'string' && (CERTIFICATE_KEY_TYPES as readonly string[]).includes(value);
}

export function invalidKeyTypeMessage(field: string, value: unknown): string {
  return `${field} ${JSON.stringify(value) ?? String(value)} is unknown: use ec-p384 (the default, the type the DPS docs name), ec-p256 or rsa-2048`;
}
