// Typed DPS response bodies (protocol.md, "Responses"), validated field by field: the client
// parses whatever a server or a man-in-the-middle sends, so anything unexpected is a ProtocolError.
import { ProtocolError } from './errors.js';
import { MAX_JSON_DEPTH, MAX_RESPONSE_BYTES } from './limits.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export const REGISTRATION_STATUSES = ['unassigned', 'assigning', 'assigned', 'failed', 'disabled'] as const;
export type RegistrationStatus = (typeof REGISTRATION_STATUSES)[number];

/** Known values: initialAssignment, deviceDataMigrated, deviceDataReset, reprovisionedToInitialAssignment. */
export type Substatus = string;

export interface X509CertificateInfo {
  subjectName?: string;
  sha1Thumbprint?: string;
  sha256Thumbprint?: string;
  issuerName?: string;
  notBeforeUtc?: string;
  notAfterUtc?: string;
  serialNumber?: string;
  version?: number;
}

export interface RegistrationState {
  registrationId: string;
  createdDateTimeUtc?: string;
  lastUpdatedDateTimeUtc?: string;
  assignedHub?: string;
  deviceId?: string;
  status?: RegistrationStatus;
  substatus?: Substatus;
  errorCode?: number;
  errorMessage?: string;
  etag?: string;
  symmetricKey?: { enrollmentGroupId?: string };
  x509?: {
    certificateInfo?: X509CertificateInfo;
    enrollmentGroupId?: string;
    signingCertificateInfo?: X509CertificateInfo;
  };
  tpm?: { authenticationKey: string };
  payload?: JsonValue;
  trustBundle?: JsonObject;
  /** api-version 2025-07-01-preview and later, after a CSR: base64 DER certificates, leaf first. */
  issuedCertificateChain?: string[];
  /** api-version 2026-11-02-preview: `classic` or `mqttV5`; absent or null means classic. */
  connectionProfile?: string;
}

export interface OperationStatus {
  operationId: string;
  status: RegistrationStatus;
  registrationState?: RegistrationState;
}

export interface ServiceErrorBody {
  errorCode?: number;
  trackingId?: string;
  message?: string;
  timestampUtc?: string;
}

export type StatusClass = 'success' | 'transient' | 'failure';

/** < 300 is a result; 429 and above is transient (mqtt_common.md); anything else is a failure. */
export function classifyStatusCode(statusCode: number): StatusClass {
  if (statusCode < 300) return 'success';
  if (statusCode >= 429) return 'transient';
  return 'failure';
}

/** Parses a JSON body with a size bound; every failure is a ProtocolError. */
export function parseJsonBody(body: Uint8Array | string): JsonValue {
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  if (size > MAX_RESPONSE_BYTES) {
    throw new ProtocolError(`response body of ${size} bytes exceeds the ${MAX_RESPONSE_BYTES}-byte limit`);
  }
  const text =
    typeof body === 'string'
      ? body
      : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  const depth = jsonNestingDepth(text);
  if (depth > MAX_JSON_DEPTH) {
    throw new ProtocolError(
      `response body nests ${depth} levels deep: at most ${MAX_JSON_DEPTH} are accepted`,
    );
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    throw new ProtocolError(`response body is not JSON: ${preview(text)}`, { cause: error });
  }
}

export function parseOperationStatus(body: Uint8Array | string): OperationStatus {
  const json = parseJsonBody(body);
  const object = expectObject(json, 'operation status');
  const status = expectStatus(object.status, 'status');
  const operationId = optionalString(object, 'operationId', 'operation status');
  // An empty id is no better than none: the poll topic would carry `operationId=` and never match.
  if ((operationId === undefined || operationId === '') && status === 'assigning') {
    throw new ProtocolError('operation status "assigning" has no operationId to poll with');
  }
  const result: OperationStatus = { operationId: operationId ?? '', status };
  if (object.registrationState !== undefined && object.registrationState !== null) {
    result.registrationState = parseRegistrationState(object.registrationState);
  }
  if (status === 'assigned') {
    const state = result.registrationState;
    if (!state?.assignedHub || !state.deviceId) {
      throw new ProtocolError('operation status "assigned" lacks registrationState.assignedHub or deviceId');
    }
  }
  return result;
}

export function parseRegistrationState(value: JsonValue): RegistrationState {
  const where = 'registrationState';
  const object = expectObject(value, where);
  const state: RegistrationState = { registrationId: optionalString(object, 'registrationId', where) ?? '' };
  for (const field of [
    'createdDateTimeUtc',
    'lastUpdatedDateTimeUtc',
    'assignedHub',
    'deviceId',
    'substatus',
    'errorMessage',
    'etag',
    'connectionProfile',
  ] as const) {
    const text = optionalString(object, field, where);
    if (text !== undefined) state[field] = text;
  }
  if (object.status !== undefined && object.status !== null)
    state.status = expectStatus(object.status, `${where}.status`);
  if (object.errorCode !== undefined && object.errorCode !== null) {
    if (typeof object.errorCode !== 'number' || !Number.isFinite(object.errorCode)) {
      throw new ProtocolError(`${where}.errorCode must be a number`);
    }
    state.errorCode = object.errorCode;
  }
  if (isPresent(object.symmetricKey)) {
    const symmetric = expectObject(object.symmetricKey, `${where}.symmetricKey`);
    const enrollmentGroupId = optionalString(symmetric, 'enrollmentGroupId', `${where}.symmetricKey`);
    state.symmetricKey = enrollmentGroupId === undefined ? {} : { enrollmentGroupId };
  }
  if (isPresent(object.x509)) state.x509 = parseX509(object.x509, `${where}.x509`);
  if (isPresent(object.tpm)) {
    const tpm = expectObject(object.tpm, `${where}.tpm`);
    state.tpm = { authenticationKey: optionalString(tpm, 'authenticationKey', `${where}.tpm`) ?? '' };
  }
  if (object.payload !== undefined) state.payload = object.payload;
  if (isPresent(object.trustBundle))
    state.trustBundle = expectObject(object.trustBundle, `${where}.trustBundle`);
  if (isPresent(object.issuedCertificateChain)) {
    // Only the shape is checked here; the client checks the certificates against the CSR it sent.
    const chain = object.issuedCertificateChain;
    if (!Array.isArray(chain) || !chain.every((element) => typeof element === 'string')) {
      throw new ProtocolError(`${where}.issuedCertificateChain must be an array of base64 strings`);
    }
    state.issuedCertificateChain = chain as string[];
  }
  return state;
}

/** Error bodies are read leniently: a missing or odd body must not hide the status code. */
export function parseServiceErrorBody(body: Uint8Array | string): ServiceErrorBody {
  let json: JsonValue;
  try {
    json = parseJsonBody(body);
  } catch {
    const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
    return text.trim() ? { message: preview(text) } : {};
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return {};
  const result: ServiceErrorBody = {};
  if (typeof json.errorCode === 'number' && Number.isFinite(json.errorCode))
    result.errorCode = json.errorCode;
  if (typeof json.errorCode === 'string' && /^\d{1,9}$/.test(json.errorCode))
    result.errorCode = Number(json.errorCode);
  if (typeof json.trackingId === 'string') result.trackingId = preview(json.trackingId);
  if (typeof json.message === 'string') result.message = preview(json.message);
  if (typeof json.timestampUtc === 'string') result.timestampUtc = preview(json.timestampUtc);
  return result;
}

function parseX509(value: JsonValue, where: string): NonNullable<RegistrationState['x509']> {
  const object = expectObject(value, where);
  const result: NonNullable<RegistrationState['x509']> = {};
  const enrollmentGroupId = optionalString(object, 'enrollmentGroupId', where);
  if (enrollmentGroupId !== undefined) result.enrollmentGroupId = enrollmentGroupId;
  if (isPresent(object.certificateInfo)) {
    result.certificateInfo = parseCertificateInfo(object.certificateInfo, `${where}.certificateInfo`);
  }
  if (isPresent(object.signingCertificateInfo)) {
    result.signingCertificateInfo = parseCertificateInfo(
      object.signingCertificateInfo,
      `${where}.signingCertificateInfo`,
    );
  }
  return result;
}

function parseCertificateInfo(value: JsonValue, where: string): X509CertificateInfo {
  const object = expectObject(value, where);
  const info: X509CertificateInfo = {};
  for (const field of [
    'subjectName',
    'sha1Thumbprint',
    'sha256Thumbprint',
    'issuerName',
    'notBeforeUtc',
    'notAfterUtc',
    'serialNumber',
  ] as const) {
    const text = optionalString(object, field, where);
    if (text !== undefined) info[field] = text;
  }
  if (typeof object.version === 'number') info.version = object.version;
  return info;
}

function isPresent(value: JsonValue | undefined): value is JsonValue {
  return value !== undefined && value !== null;
}

function expectObject(value: JsonValue | undefined, where: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(
      `${where} must be a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  return value;
}

function optionalString(object: JsonObject, field: string, where: string): string | undefined {
  const value = object[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw new ProtocolError(`${where}.${field} must be a string, got ${typeof value}`);
  return value;
}

function expectStatus(value: JsonValue | undefined, where: string): RegistrationStatus {
  if (typeof value === 'string' && (REGISTRATION_STATUSES as readonly string[]).includes(value)) {
    return value as RegistrationStatus;
  }
  throw new ProtocolError(
    `${where} ${preview(describeValue(value))} is not a DPS registration status (${REGISTRATION_STATUSES.join(', ')})`,
  );
}

/** A network value for a message; never String(), which throws on {"toString": {}}. */
function describeValue(value: JsonValue | undefined): string {
  return value === undefined ? 'missing' : JSON.stringify(value);
}

/** The deepest `[`/`{` nesting outside strings, in one linear pass (stops counting past the limit). */
function jsonNestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c)
        index++; // backslash: skip the escaped character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) {
      inString = true;
    } else if (code === 0x5b || code === 0x7b) {
      depth++;
      if (depth > deepest) deepest = depth;
      if (deepest > MAX_JSON_DEPTH) return deepest;
    } else if (code === 0x5d || code === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

/** Network text in messages is cut short so a hostile body cannot flood logs. */
function preview(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
