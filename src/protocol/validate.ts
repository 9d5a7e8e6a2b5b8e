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

/** An ID scope as DPS issues it: `0ne` and 8 letters or digits (shared/protocol.md). */
const ID_SCOPE = /^0ne[A-Za-z0-9]{8}$/;

export function isValidIdScope(idScope: string): boolean {
  return ID_SCOPE.test(idScope);
}

export function validateIdScope(idScope: unknown): string {
  if (typeof idScope !== 'string' || idScope.trim().length === 0) {
    throw new InvalidInputError(
      'idScope',
      'ID scope is missing: copy it from the DPS instance overview (it looks like 0ne00A1B2C3)',
    );
  }
  if (!isValidIdScope(idScope)) {
    throw new InvalidInputError(
      'idScope',
      `ID scope ${JSON.stringify(idScope.length > 64 ? `${idScope.slice(0, 64)}...` : idScope)} is invalid: it is 0ne followed by 8 letters or digits, e.g. 0ne00A1B2C3 (copy it from the DPS instance overview)`,
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

/** A PEM key encrypted with a passphrase: PKCS#8 `ENCRYPTED PRIVATE KEY` or legacy `Proc-Type: 4,ENCRYPTED`. */
export function isEncryptedPrivateKey(keyPem: string): boolean {
  return (
    keyPem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /Proc-Type:\s*4,\s*ENCRYPTED/.test(keyPem)
  );
}

/**
 * The key as unencrypted PKCS#8 PEM, decrypted in memory with its passphrase, so that every later user
 * of the key (the certificate check, TLS) needs no passphrase. An unencrypted key is returned as given.
 * Neither the key nor the passphrase ever appears in an error.
 */
export function decryptPrivateKey(keyPem: string, passphrase: unknown): string {
  if (!isEncryptedPrivateKey(keyPem)) return keyPem;
  if (passphrase === undefined || passphrase === '') {
    throw new InvalidInputError(
      'passphrase',
      'private key is encrypted and needs its passphrase: give security.passphrase (on the command line --passphrase or DPS_KEY_PASSPHRASE)',
    );
  }
  if (typeof passphrase !== 'string') {
    throw new InvalidInputError('passphrase', `passphrase must be a string, not ${typeof passphrase}`);
  }
  try {
    return createPrivateKey({ key: keyPem, passphrase }).export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch {
    throw new InvalidInputError(
      'passphrase',
      'private key could not be decrypted: check the passphrase (and that the key file is the one it encrypts)',
    );
  }
}

/**
 * The JSON text of a value the caller sends (the custom allocation payload), or an InvalidInputError
 * that names `field` and says why: JSON has no bigint, function, symbol, NaN or Infinity, and no cycles.
 * Checked before anything is sent, so the value cannot fail later inside a socket handler.
 */
export function serialiseJsonValue(value: unknown, field: string): string {
  const problem = jsonProblem(value, field, [], 0);
  if (problem !== undefined) {
    throw new InvalidInputError(
      field,
      `${problem}: ${field} must be JSON (objects, arrays, strings, finite numbers, booleans, null)`,
    );
  }
  try {
    return JSON.stringify(value);
  } catch (error) {
    // A getter or toJSON that throws, or one that changes its answer between the check and now.
    const reason = error instanceof Error ? error.message : String(error);
    throw new InvalidInputError(field, `${field} cannot be converted to JSON (${reason.split('\n')[0]})`);
  }
}

/** Deeper payloads than this are refused: the service's answer echoes them, and the client reads at most MAX_JSON_DEPTH. */
const MAX_PAYLOAD_DEPTH = 32;

function jsonProblem(value: unknown, path: string, ancestors: object[], depth: number): string | undefined {
  let current = value;
  if (
    current !== null &&
    typeof current === 'object' &&
    typeof (current as { toJSON?: unknown }).toJSON === 'function'
  ) {
    try {
      current = (current as { toJSON: (key: string) => unknown }).toJSON('');
    } catch (error) {
      return `${path}.toJSON() threw (${error instanceof Error ? error.message : String(error)})`;
    }
  }
  switch (typeof current) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(current)
        ? undefined
        : `${path} is ${String(current)}, which JSON cannot carry (it would be sent as null)`;
    case 'bigint':
      return `${path} is a bigint (${String(current)}n), which JSON cannot carry: convert it to a number or a string`;
    case 'undefined':
    case 'function':
    case 'symbol':
      return `${path} is ${current === undefined ? 'undefined' : `a ${typeof current}`}, which JSON cannot carry`;
    default:
      break;
  }
  if (current === null) return undefined;
  const object = current as object;
  if (ancestors.includes(object)) return `${path} refers back to an object that contains it (a cycle)`;
  if (depth >= MAX_PAYLOAD_DEPTH) return `${path} nests deeper than ${MAX_PAYLOAD_DEPTH} levels`;
  const inside = [...ancestors, object];
  if (Array.isArray(object)) {
    for (let index = 0; index < object.length; index += 1) {
      const problem = jsonProblem(object[index], `${path}[${index}]`, inside, depth + 1);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  for (const [key, member] of Object.entries(object)) {
    // JSON.stringify leaves out object members that are undefined; that is allowed.
    if (member === undefined) continue;
    const problem = jsonProblem(
      member,
      /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`,
      inside,
      depth + 1,
    );
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** A value as it appears in a message: numbers as themselves (NaN, Infinity), strings quoted, else the type. */
export function describeValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (value === null) return 'null';
  return `a value of type ${typeof value}`;
}
