// Turns the caller's DeviceSecurity into what the transport needs, reading PEM files and checking
// everything before any network I/O.
import { readFileSync } from 'node:fs';
import { InvalidInputError } from '../protocol/errors.js';
import { findUnknownOption } from '../protocol/known-options.js';
import { deriveDeviceKey } from '../protocol/sas.js';
import {
  commonNameOf,
  decryptPrivateKey,
  validateCertificateAndKey,
  validateRegistrationId,
  validateSymmetricKey,
} from '../protocol/validate.js';
import { DEVICE_SECURITY_FIELD_NAMES, type DeviceSecurity } from './types.js';

export type ResolvedSecurity =
  | { kind: 'symmetricKey'; registrationId: string; deviceKey: string }
  | { kind: 'x509'; registrationId: string; certificate: string; privateKey: string };

export function resolveSecurity(
  security: DeviceSecurity,
  registrationId: string | undefined,
): ResolvedSecurity {
  if (!security || typeof security !== 'object') {
    throw new InvalidInputError(
      'security',
      'security is missing: give { symmetricKey }, { groupKey } or { certificate, privateKey }',
    );
  }
  const unknown = findUnknownOption(security, DEVICE_SECURITY_FIELD_NAMES, 'security');
  if (unknown) throw new InvalidInputError(unknown.field, unknown.message);
  const fields = security as Partial<Record<string, unknown>>;
  const given = [
    fields.symmetricKey !== undefined && 'symmetricKey',
    fields.groupKey !== undefined && 'groupKey',
    (fields.certificate !== undefined || fields.privateKey !== undefined) && 'certificate',
  ].filter((name): name is string => name !== false);
  if (given.length > 1) {
    throw new InvalidInputError(
      'security',
      `security has more than one credential (${given.slice(0, -1).join(', ')} and ${given.at(-1)}): give exactly one of { symmetricKey }, { groupKey } or { certificate, privateKey }`,
    );
  }
  if (fields.passphrase !== undefined && given[0] !== 'certificate') {
    throw new InvalidInputError(
      'passphrase',
      'security.passphrase is the passphrase of an encrypted private key: it goes with { certificate, privateKey }',
    );
  }
  if ('symmetricKey' in security) {
    return {
      kind: 'symmetricKey',
      registrationId: validateRegistrationId(registrationId),
      deviceKey: validateSymmetricKey(security.symmetricKey, 'symmetricKey'),
    };
  }
  if ('groupKey' in security) {
    const id = validateRegistrationId(registrationId);
    return {
      kind: 'symmetricKey',
      registrationId: id,
      deviceKey: deriveDeviceKey(validateSymmetricKey(security.groupKey, 'groupKey'), id),
    };
  }
  if ('certificate' in security) {
    const certificate = readPem(security.certificate, 'certificate');
    // Decrypted here, in memory, so neither the check below nor TLS needs the passphrase.
    const privateKey = decryptPrivateKey(readPem(security.privateKey, 'privateKey'), security.passphrase);
    validateCertificateAndKey(certificate, privateKey);
    const commonName = commonNameOf(certificate);
    const id = validateRegistrationId(registrationId ?? commonName);
    if (commonName !== id) {
      throw new InvalidInputError(
        'registrationId',
        `registration id "${id}" differs from the certificate's subject CN "${commonName ?? ''}": DPS requires them to be equal`,
      );
    }
    return { kind: 'x509', registrationId: id, certificate, privateKey };
  }
  throw new InvalidInputError(
    'security',
    'security is not recognised: give { symmetricKey }, { groupKey } or { certificate, privateKey }',
  );
}

/** PEM text as given, or the content of the file it names. */
export function readPem(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InvalidInputError(field, `${field} is missing: give the PEM text or the path of a PEM file`);
  }
  if (value.includes('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new InvalidInputError(
      field,
      `${field} file ${JSON.stringify(value)} could not be read (${reason}): give a PEM file path or the PEM text`,
    );
  }
}
