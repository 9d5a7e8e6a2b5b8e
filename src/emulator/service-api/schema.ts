// The service API's enrollment documents (api-version 2021-10-01): validated field by field with messages
// that name the field, normalised, and mapped to and from the emulator's own enrollment model (enrollments/config.ts).
// Fields the emulator does not act on (capabilities, caReferences, TPM) are kept in the document and
// returned as they were sent; reprovisionPolicy and customAllocationDefinition are acted on by the registrar.
import { randomBytes, X509Certificate } from 'node:crypto';
import type { JsonObject, JsonValue } from '../../protocol/responses.js';
import { isValidRegistrationId } from '../../protocol/validate.js';
import {
  type AllocationPolicy,
  type CustomAllocationDefinition,
  DEFAULT_REPROVISION_POLICY,
  type EnrollmentGroup,
  type IndividualEnrollment,
  invalidIotHubMessage,
  isIotHubHostName,
  isWebhookUrl,
  normaliseThumbprint,
  type ReprovisionPolicy,
  type SymmetricKeyAttestation,
} from '../enrollments/config.js';
import { certificateInfo } from '../enrollments/enrollment-book.js';
import type { StoredEnrollmentGroup, StoredIndividualEnrollment } from '../enrollments/enrollment-store.js';

/** A document that cannot be accepted; `field` is its JSON path, e.g. `attestation.type`. */
export class DocumentError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export const ALLOCATION_POLICIES = ['hashed', 'geoLatency', 'static', 'custom'] as const;
/** Symmetric keys: base64 of 16 to 64 bytes, as the service accepts them. */
const MIN_KEY_BYTES = 16;
const MAX_KEY_BYTES = 64;
/** Keys the service generates when a document leaves them empty: 64 random bytes. */
const GENERATED_KEY_BYTES = 64;
const ID_PATTERN = /^[A-Za-z0-9\-._:]{1,128}$/;
// IoT Hub device ids: up to 128 ASCII characters of this set.
const DEVICE_ID_PATTERN = /^[A-Za-z0-9\-.+%_#*?!(),:=@$']{1,128}$/;

type Json = Record<string, unknown>;

export interface ParsedIndividual {
  enrollment: IndividualEnrollment;
  document: JsonObject;
}

export interface ParsedGroup {
  enrollment: EnrollmentGroup;
  document: JsonObject;
}

/** A group id as the service accepts it (the configuration file is more lenient). */
export function isValidEnrollmentGroupId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** PUT /enrollments/{registrationId}: the body, checked against the path's id. */
export function parseIndividualDocument(
  json: unknown,
  registrationId: string,
  existing: StoredIndividualEnrollment | undefined,
): ParsedIndividual {
  const root = object(json, '(body)');
  const bodyId = optionalString(root, '', 'registrationId');
  if (bodyId !== undefined && bodyId !== registrationId) {
    throw new DocumentError(
      'registrationId',
      `"${bodyId}" is not the registration id in the path ("${registrationId}")`,
    );
  }
  if (!isValidRegistrationId(registrationId)) {
    throw new DocumentError(
      'registrationId',
      `"${registrationId}" is invalid: use lowercase letters, digits and - . _ : (at most 128 characters)`,
    );
  }
  const deviceId = optionalString(root, '', 'deviceId');
  if (deviceId !== undefined && !DEVICE_ID_PATTERN.test(deviceId)) {
    throw new DocumentError(
      'deviceId',
      `"${deviceId}" is not a device id: at most 128 letters, digits and - . + % _ # * ? ! ( ) , : = @ $ '`,
    );
  }
  const attestationObject = object(root.attestation, 'attestation');
  const type = attestationObject.type;
  let attestation: IndividualEnrollment['attestation'];
  let attestationDocument: JsonObject;
  if (type === 'symmetricKey') {
    [attestation, attestationDocument] = symmetricKeyAttestation(attestationObject);
  } else if (type === 'x509') {
    const x509 = object(attestationObject.x509, 'attestation.x509');
    if (present(x509.signingCertificates) || present(x509.caReferences)) {
      throw new DocumentError(
        'attestation.x509',
        'an individual enrollment takes clientCertificates (signingCertificates and caReferences are for enrollment groups)',
      );
    }
    const certificates = certificatePair(x509.clientCertificates, 'attestation.x509.clientCertificates');
    const thumbprints: string[] = [];
    for (const certificate of certificates.parsed) thumbprints.push(...certificate.thumbprints);
    attestation = { type: 'x509', thumbprints: [...new Set(thumbprints)] };
    attestationDocument = { type: 'x509', x509: { clientCertificates: certificates.document } };
  } else if (type === 'tpm') {
    const tpm = object(attestationObject.tpm, 'attestation.tpm');
    const endorsementKey = requiredString(tpm, 'attestation.tpm', 'endorsementKey');
    const storageRootKey = optionalString(tpm, 'attestation.tpm', 'storageRootKey');
    attestation = { type: 'tpm', endorsementKey, storageRootKey };
    attestationDocument = {
      type: 'tpm',
      tpm: { endorsementKey, ...(storageRootKey === undefined ? {} : { storageRootKey }) },
    };
  } else {
    throw new DocumentError(
      'attestation.type',
      `${JSON.stringify(type ?? null)} is not an attestation type: expected "symmetricKey", "x509" or "tpm"`,
    );
  }
  const common = commonFields(root, existing?.enrollment);
  return {
    enrollment: { ...common.enrollment, registrationId, attestation, deviceId },
    document: {
      registrationId,
      ...(deviceId === undefined ? {} : { deviceId }),
      attestation: attestationDocument,
      ...common.document,
    },
  };
}

/** PUT /enrollmentGroups/{enrollmentGroupId}. */
export function parseGroupDocument(
  json: unknown,
  enrollmentGroupId: string,
  existing: StoredEnrollmentGroup | undefined,
): ParsedGroup {
  const root = object(json, '(body)');
  const bodyId = optionalString(root, '', 'enrollmentGroupId');
  if (bodyId !== undefined && bodyId !== enrollmentGroupId) {
    throw new DocumentError(
      'enrollmentGroupId',
      `"${bodyId}" is not the enrollment group id in the path ("${enrollmentGroupId}")`,
    );
  }
  if (!isValidEnrollmentGroupId(enrollmentGroupId)) {
    throw new DocumentError(
      'enrollmentGroupId',
      `"${enrollmentGroupId}" is invalid: use letters, digits and - . _ : (at most 128 characters)`,
    );
  }
  const attestationObject = object(root.attestation, 'attestation');
  const type = attestationObject.type;
  let attestation: EnrollmentGroup['attestation'];
  let attestationDocument: JsonObject;
  if (type === 'symmetricKey') {
    [attestation, attestationDocument] = symmetricKeyAttestation(attestationObject);
  } else if (type === 'x509') {
    const x509 = object(attestationObject.x509, 'attestation.x509');
    if (present(x509.clientCertificates)) {
      throw new DocumentError(
        'attestation.x509.clientCertificates',
        'an enrollment group takes signingCertificates or caReferences (clientCertificates are for individual enrollments)',
      );
    }
    if (present(x509.signingCertificates)) {
      const existingPems =
        existing?.enrollment.attestation.type === 'x509'
          ? existing.enrollment.attestation.caCertificatePems
          : [];
      const certificates = certificatePair(
        x509.signingCertificates,
        'attestation.x509.signingCertificates',
        existingPems,
      );
      const pems = certificates.parsed.map((certificate, index) => {
        if (certificate.pem === undefined) {
          throw new DocumentError(
            `attestation.x509.signingCertificates.${index === 0 ? 'primary' : 'secondary'}.certificate`,
            'is required: the CA certificate (PEM or base64 DER) the devices chain to',
          );
        }
        return certificate.pem;
      });
      attestation = { type: 'x509', caCertificatePems: pems };
      attestationDocument = { type: 'x509', x509: { signingCertificates: certificates.document } };
    } else if (present(x509.caReferences)) {
      // References to CA certificates verified in a DPS instance: the emulator has no such registry, so
      // they are kept and returned, but no device attests through them.
      const references = object(x509.caReferences, 'attestation.x509.caReferences');
      const primary = requiredString(references, 'attestation.x509.caReferences', 'primary');
      const secondary = optionalString(references, 'attestation.x509.caReferences', 'secondary');
      attestation = { type: 'x509', caCertificatePems: [] };
      attestationDocument = {
        type: 'x509',
        x509: { caReferences: { primary, ...(secondary === undefined ? {} : { secondary }) } },
      };
    } else {
      throw new DocumentError(
        'attestation.x509',
        'an x509 enrollment group needs signingCertificates.primary.certificate (the CA certificate)',
      );
    }
  } else if (type === 'tpm') {
    throw new DocumentError(
      'attestation.type',
      'enrollment groups do not support TPM attestation: use "symmetricKey" or "x509"',
    );
  } else {
    throw new DocumentError(
      'attestation.type',
      `${JSON.stringify(type ?? null)} is not an attestation type: expected "symmetricKey" or "x509"`,
    );
  }
  const common = commonFields(root, existing?.enrollment);
  return {
    enrollment: { ...common.enrollment, enrollmentGroupId, attestation },
    document: { enrollmentGroupId, attestation: attestationDocument, ...common.document },
  };
}

/** The document a GET returns: the stored one (or one made from a configured enrollment) with metadata. */
export function renderIndividual(record: StoredIndividualEnrollment): JsonObject {
  return {
    ...(record.document ?? documentFromIndividual(record.enrollment)),
    etag: record.etag,
    createdDateTimeUtc: record.createdDateTimeUtc,
    lastUpdatedDateTimeUtc: record.lastUpdatedDateTimeUtc,
  };
}

export function renderGroup(record: StoredEnrollmentGroup): JsonObject {
  return {
    ...(record.document ?? documentFromGroup(record.enrollment)),
    etag: record.etag,
    createdDateTimeUtc: record.createdDateTimeUtc,
    lastUpdatedDateTimeUtc: record.lastUpdatedDateTimeUtc,
  };
}

/** A configured individual enrollment in the service's schema. */
export function documentFromIndividual(enrollment: IndividualEnrollment): JsonObject {
  const { attestation } = enrollment;
  let attestationDocument: JsonObject;
  if (attestation.type === 'symmetricKey') {
    attestationDocument = symmetricKeyDocument(attestation);
  } else if (attestation.type === 'tpm') {
    attestationDocument = {
      type: 'tpm',
      tpm: {
        endorsementKey: attestation.endorsementKey,
        ...(attestation.storageRootKey === undefined ? {} : { storageRootKey: attestation.storageRootKey }),
      },
    };
  } else {
    // Thumbprints only (the configuration keeps no certificate): SHA-1 and SHA-256 fill the primary slot
    // first, then the secondary.
    const slots: Array<Record<string, string>> = [{}, {}];
    for (const thumbprint of attestation.thumbprints) {
      const field = thumbprint.length === 40 ? 'sha1Thumbprint' : 'sha256Thumbprint';
      const slot = slots.find((candidate) => candidate[field] === undefined);
      if (slot !== undefined) slot[field] = thumbprint;
    }
    const [primary, secondary] = slots as [Record<string, string>, Record<string, string>];
    attestationDocument = {
      type: 'x509',
      x509: {
        clientCertificates: {
          primary: { info: primary },
          ...(Object.keys(secondary).length > 0 ? { secondary: { info: secondary } } : {}),
        },
      },
    };
  }
  return {
    registrationId: enrollment.registrationId,
    ...(enrollment.deviceId === undefined ? {} : { deviceId: enrollment.deviceId }),
    attestation: attestationDocument,
    ...commonDocument(enrollment),
  };
}

export function documentFromGroup(group: EnrollmentGroup): JsonObject {
  const { attestation } = group;
  let attestationDocument: JsonObject;
  if (attestation.type === 'symmetricKey') {
    attestationDocument = symmetricKeyDocument(attestation);
  } else {
    const [primary, secondary] = attestation.caCertificatePems.map((pem) => ({
      certificate: pem,
      info: certificateInfo(new X509Certificate(pem)) as unknown as JsonObject,
    }));
    attestationDocument = {
      type: 'x509',
      x509: {
        signingCertificates: {
          ...(primary === undefined ? {} : { primary }),
          ...(secondary === undefined ? {} : { secondary }),
        },
      },
    };
  }
  return {
    enrollmentGroupId: group.enrollmentGroupId,
    attestation: attestationDocument,
    ...commonDocument(group),
  };
}

/** The service's default for fields a configured enrollment does not have. */
function commonDocument(enrollment: IndividualEnrollment | EnrollmentGroup): JsonObject {
  return {
    ...(enrollment.iotHubs.length > 0 ? { iotHubs: [...enrollment.iotHubs] } : {}),
    ...(enrollment.allocationPolicy === undefined ? {} : { allocationPolicy: enrollment.allocationPolicy }),
    ...(enrollment.initialTwin === undefined ? {} : { initialTwin: enrollment.initialTwin }),
    provisioningStatus: enrollment.enabled ? 'enabled' : 'disabled',
    capabilities: { iotEdge: false },
    reprovisionPolicy: { ...(enrollment.reprovisionPolicy ?? DEFAULT_REPROVISION_POLICY) },
    ...(enrollment.customAllocationDefinition === undefined
      ? {}
      : { customAllocationDefinition: { ...enrollment.customAllocationDefinition } }),
  };
}

function symmetricKeyDocument(attestation: SymmetricKeyAttestation): JsonObject {
  return {
    type: 'symmetricKey',
    symmetricKey: {
      primaryKey: attestation.primaryKey,
      ...(attestation.secondaryKey === undefined ? {} : { secondaryKey: attestation.secondaryKey }),
    },
  };
}

/** Keys left out or empty are generated, as the service does. */
function symmetricKeyAttestation(attestationObject: Json): [SymmetricKeyAttestation, JsonObject] {
  const where = 'attestation.symmetricKey';
  const keys = present(attestationObject.symmetricKey) ? object(attestationObject.symmetricKey, where) : {};
  const key = (field: 'primaryKey' | 'secondaryKey'): string => {
    const value = keys[field];
    if (!present(value) || value === '') return randomBytes(GENERATED_KEY_BYTES).toString('base64');
    if (typeof value !== 'string') throw new DocumentError(`${where}.${field}`, 'expected a base64 string');
    const bytes = Buffer.from(value, 'base64').length;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || bytes < MIN_KEY_BYTES || bytes > MAX_KEY_BYTES) {
      throw new DocumentError(
        `${where}.${field}`,
        `expected base64 of ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes (leave it empty and the service generates one)`,
      );
    }
    return value;
  };
  const attestation: SymmetricKeyAttestation = {
    type: 'symmetricKey',
    primaryKey: key('primaryKey'),
    secondaryKey: key('secondaryKey'),
  };
  return [attestation, symmetricKeyDocument(attestation)];
}

interface ParsedCertificate {
  pem: string | undefined;
  thumbprints: string[];
}

/**
 * `{ primary: { certificate, info? }, secondary? }`: a certificate (PEM or base64 DER) gives its details;
 * a document read back from the service carries `info` and may leave `certificate` out, which is accepted
 * by thumbprint (and, for groups, when the thumbprint is a CA certificate the enrollment already has).
 */
function certificatePair(
  value: unknown,
  where: string,
  knownPems: string[] = [],
): { parsed: ParsedCertificate[]; document: JsonObject } {
  const pair = object(value, where);
  if (!present(pair.primary)) throw new DocumentError(`${where}.primary`, 'is required');
  const parsed: ParsedCertificate[] = [];
  const document: JsonObject = {};
  for (const slot of ['primary', 'secondary'] as const) {
    if (!present(pair[slot])) continue;
    const slotWhere = `${where}.${slot}`;
    const entry = object(pair[slot], slotWhere);
    const text = entry.certificate;
    if (present(text) && text !== '') {
      if (typeof text !== 'string') {
        throw new DocumentError(`${slotWhere}.certificate`, 'expected a PEM or base64 DER certificate');
      }
      const certificate = parseCertificate(text, `${slotWhere}.certificate`);
      const pem = certificate.toString();
      parsed.push({
        pem,
        thumbprints: [
          normaliseThumbprint(certificate.fingerprint),
          normaliseThumbprint(certificate.fingerprint256),
        ],
      });
      document[slot] = { certificate: pem, info: certificateInfo(certificate) as unknown as JsonObject };
      continue;
    }
    const info = present(entry.info) ? object(entry.info, `${slotWhere}.info`) : {};
    const thumbprints: string[] = [];
    const infoDocument: Record<string, string> = {};
    for (const [field, length] of [
      ['sha1Thumbprint', 40],
      ['sha256Thumbprint', 64],
    ] as const) {
      const thumbprint = info[field];
      if (!present(thumbprint)) continue;
      const normalised = typeof thumbprint === 'string' ? normaliseThumbprint(thumbprint) : '';
      if (normalised.length !== length || !/^[0-9A-F]+$/.test(normalised)) {
        throw new DocumentError(`${slotWhere}.info.${field}`, `expected ${length} hex digits`);
      }
      thumbprints.push(normalised);
      infoDocument[field] = normalised;
    }
    if (thumbprints.length === 0) {
      throw new DocumentError(`${slotWhere}.certificate`, 'is required (PEM or base64 DER)');
    }
    const known = knownPems.find((pem) => {
      const candidate = new X509Certificate(pem);
      return (
        thumbprints.includes(normaliseThumbprint(candidate.fingerprint)) ||
        thumbprints.includes(normaliseThumbprint(candidate.fingerprint256))
      );
    });
    if (known !== undefined) {
      const certificate = new X509Certificate(known);
      parsed.push({ pem: known, thumbprints });
      document[slot] = { certificate: known, info: certificateInfo(certificate) as unknown as JsonObject };
    } else {
      parsed.push({ pem: undefined, thumbprints });
      document[slot] = { info: infoDocument };
    }
  }
  return { parsed, document };
}

function parseCertificate(text: string, where: string): X509Certificate {
  try {
    if (text.includes('-----BEGIN CERTIFICATE-----')) return new X509Certificate(text);
    const der = text.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(der)) throw new Error('not base64');
    return new X509Certificate(Buffer.from(der, 'base64'));
  } catch {
    throw new DocumentError(where, 'is not an X.509 certificate (expected PEM text or base64 DER)');
  }
}

/** The fields individual enrollments and groups share. */
function commonFields(
  root: Json,
  existing: IndividualEnrollment | EnrollmentGroup | undefined,
): {
  enrollment: Omit<IndividualEnrollment, 'registrationId' | 'attestation' | 'deviceId'>;
  document: JsonObject;
} {
  const document: JsonObject = {};
  const iotHubHostName = optionalString(root, '', 'iotHubHostName');
  if (iotHubHostName !== undefined) {
    if (!isIotHubHostName(iotHubHostName))
      throw new DocumentError('iotHubHostName', invalidIotHubMessage(iotHubHostName));
    document.iotHubHostName = iotHubHostName;
  }
  let iotHubs: string[] | undefined;
  if (present(root.iotHubs)) {
    if (!Array.isArray(root.iotHubs)) {
      throw new DocumentError(
        'iotHubs',
        'expected an array of IoT hub host names, e.g. ["my-hub.azure-devices.net"]',
      );
    }
    iotHubs = root.iotHubs.map((hub, index) => {
      if (typeof hub !== 'string' || !isIotHubHostName(hub))
        throw new DocumentError(`iotHubs[${index}]`, invalidIotHubMessage(hub));
      return hub;
    });
    document.iotHubs = iotHubs;
  }
  let initialTwin: JsonObject | undefined;
  if (present(root.initialTwin)) {
    initialTwin = object(root.initialTwin, 'initialTwin') as JsonObject;
    for (const field of ['tags', 'properties']) {
      if (present(initialTwin[field])) object(initialTwin[field], `initialTwin.${field}`);
    }
    document.initialTwin = initialTwin;
  }
  const provisioningStatus = root.provisioningStatus;
  if (present(provisioningStatus) && provisioningStatus !== 'enabled' && provisioningStatus !== 'disabled') {
    throw new DocumentError(
      'provisioningStatus',
      `${JSON.stringify(provisioningStatus)}: expected "enabled" or "disabled"`,
    );
  }
  const enabled = provisioningStatus !== 'disabled';
  document.provisioningStatus = enabled ? 'enabled' : 'disabled';

  const capabilities = present(root.capabilities) ? object(root.capabilities, 'capabilities') : {};
  document.capabilities = { iotEdge: optionalBoolean(capabilities, 'capabilities', 'iotEdge') ?? false };
  const reprovision = present(root.reprovisionPolicy)
    ? object(root.reprovisionPolicy, 'reprovisionPolicy')
    : {};
  const reprovisionPolicy: ReprovisionPolicy = {
    updateHubAssignment:
      optionalBoolean(reprovision, 'reprovisionPolicy', 'updateHubAssignment') ??
      DEFAULT_REPROVISION_POLICY.updateHubAssignment,
    migrateDeviceData:
      optionalBoolean(reprovision, 'reprovisionPolicy', 'migrateDeviceData') ??
      DEFAULT_REPROVISION_POLICY.migrateDeviceData,
  };
  document.reprovisionPolicy = { ...reprovisionPolicy };

  let allocationPolicy: AllocationPolicy | undefined;
  const policy = root.allocationPolicy;
  if (present(policy)) {
    if (!ALLOCATION_POLICIES.includes(policy as (typeof ALLOCATION_POLICIES)[number])) {
      throw new DocumentError(
        'allocationPolicy',
        `${JSON.stringify(policy)}: expected one of ${ALLOCATION_POLICIES.map((p) => `"${p}"`).join(', ')}`,
      );
    }
    document.allocationPolicy = policy as string;
    // geoLatency chooses the first linked hub; custom calls the webhook below (registrar/custom-allocation.ts).
    allocationPolicy = policy as AllocationPolicy;
  }
  let customAllocationDefinition: CustomAllocationDefinition | undefined;
  if (present(root.customAllocationDefinition)) {
    const where = 'customAllocationDefinition';
    const definition = object(root.customAllocationDefinition, where);
    const webhookUrl = requiredString(definition, where, 'webhookUrl');
    if (!isWebhookUrl(webhookUrl)) {
      throw new DocumentError(`${where}.webhookUrl`, 'expected an absolute http: or https: URL');
    }
    const apiVersion = requiredString(definition, where, 'apiVersion');
    customAllocationDefinition = { webhookUrl, apiVersion };
    document.customAllocationDefinition = { webhookUrl, apiVersion };
  } else if (policy === 'custom') {
    throw new DocumentError(
      'customAllocationDefinition',
      'is required with allocationPolicy "custom" ({ webhookUrl, apiVersion })',
    );
  }
  return {
    enrollment: {
      enabled,
      iotHubs: iotHubs ?? (iotHubHostName === undefined ? [] : [iotHubHostName]),
      allocationPolicy,
      initialTwin,
      // Emulator-only settings from the configuration file stay with an enrollment the API replaces.
      payload: existing?.payload as JsonValue | undefined,
      certificateIssuance: existing?.certificateIssuance,
      reprovisionPolicy,
      customAllocationDefinition,
    },
    document,
  };
}

/** Serializers that write every property send null for "absent". */
function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function object(value: unknown, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DocumentError(where, present(value) ? 'expected a JSON object' : 'is required (a JSON object)');
  }
  return value as Json;
}

function optionalString(object: Json, where: string, field: string): string | undefined {
  const value = object[field];
  if (!present(value)) return undefined;
  if (typeof value !== 'string' || value === '')
    throw new DocumentError(join(where, field), 'expected a non-empty string');
  return value;
}

function requiredString(object: Json, where: string, field: string): string {
  const value = optionalString(object, where, field);
  if (value === undefined) throw new DocumentError(join(where, field), 'is required');
  return value;
}

function optionalBoolean(object: Json, where: string, field: string): boolean | undefined {
  const value = object[field];
  if (!present(value)) return undefined;
  if (typeof value !== 'boolean') throw new DocumentError(join(where, field), 'expected true or false');
  return value;
}

function join(where: string, field: string): string {
  return where ? `${where}.${field}` : field;
}
