// Input checks that run before any network I/O, with messages that say how to fix the value.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { InvalidInputError } from './errors.js';

const REGISTRATION_ID = /^[a-z0-9\-._:]{1,128}$/;
const API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview)?$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function isValidRegistrationId(registrationId: string): boolean {
  return REGISTRATION_ID.test(registrationId);
}

export function isValidApiVersion(apiVersion: string): boolean {
  return API_VERSION.test(apiVersion);
}

export function validateRegistrationId(registrationId: unknown): string {
  if (typeof registrationId !== 'string' || registrationId.length === 0) {
    throw new InvalidInputError(
      'registrationId',
      'registration id is missing: pass the device registration id (lowercase letters, digits and - . _ :)',
    );
  }
  if (!isValidRegistrationId(registrationId)) {
    throw new InvalidInputError(
      'registrationId',
      `registration id ${JSON.stringify(registrationId)} is invalid: use lowercase letters, digits and - . _ : (at most 128 characters)`,
    );
  }
  return registrationId;
}

export function validateIdScope(idScope: unknown): string {
  if (typeof idScope !== 'string' || idScope.trim().length === 0) {
    throw new InvalidInputError(
      'idScope',
      'ID scope is missing: copy it from the DPS instance overview (it looks like 0ne00000000)',
    );
  }
  if (/[/\s?#&]/.test(idScope) || idScope.length > 64) {
    throw new InvalidInputError(
      'idScope',
      `ID scope ${JSON.stringify(idScope)} is invalid: it must not contain "/", "?", "#", "&" or spaces (it looks like 0ne00000000)`,
    );
  }
  return idScope;
}

export function validateApiVersion(apiVersion: unknown): string {
  if (typeof apiVersion !== 'string' || !isValidApiVersion(apiVersion)) {
    throw new InvalidInputError(
      'apiVersion',
      `api version ${JSON.stringify(apiVersion)} is invalid: use a date such as 2019-03-31 or 2021-06-01`,
    );
  }
  return apiVersion;
}

/** A symmetric key is the base64 text of at least 16 random bytes, as the portal shows it. */
export function validateSymmetricKey(key: unknown, field = 'symmetricKey'): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidInputError(field, `${field} is missing: pass the enrollment's primary or secondary key`);
  }
  const decodedLength = Buffer.from(key, 'base64').length;
  if (!BASE64.test(key) || key.length % 4 !== 0 || decodedLength < 16) {
    throw new InvalidInputError(
      field,
      `${field} is not a valid key: expected the base64 text of the enrollment key (at least 16 bytes, e.g. 44 characters ending in "="); check for a truncated copy`,
    );
  }
  return key;
}

/** Checks that the PEM certificate parses and that the private key belongs to it. */
export function validateCertificateAndKey(certPem: unknown, keyPem: unknown, passphrase?: string): void {
  if (typeof certPem !== 'string' || !certPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new InvalidInputError(
      'certificate',
      'certificate is missing or not PEM: pass the device certificate (-----BEGIN CERTIFICATE-----)',
    );
  }
  if (typeof keyPem !== 'string' || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem)) {
    throw new InvalidInputError(
      'privateKey',
      'private key is missing or not PEM: pass the key of the device certificate (-----BEGIN PRIVATE KEY-----)',
    );
  }
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch {
    throw new InvalidInputError(
      'certificate',
      'certificate could not be parsed: pass a PEM X.509 certificate',
    );
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey({ key: keyPem, passphrase }));
  } catch {
    throw new InvalidInputError(
      'privateKey',
      'private key could not be parsed: pass an unencrypted PEM key, or its passphrase',
    );
  }
  if (!matches) {
    throw new InvalidInputError(
      'privateKey',
      `private key does not belong to the certificate (subject ${certificate.subject.replace(/\n/g, ', ')}): pass the key the certificate was issued for`,
    );
  }
}

/** The registration id of an X.509 device is the subject CN of its leaf certificate. */
export function commonNameOf(certPem: string): string | undefined {
  const subject = new X509Certificate(certPem).subject;
  const line = subject.split('\n').find((part) => part.startsWith('CN='));
  return line?.slice(3);
}
