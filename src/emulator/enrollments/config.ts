// The emulator's enrollments: a JSON file (schema in docs/emulator.md), validated up front with messages
// that name the offending field, then normalised into the types the rest of the emulator uses.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { InvalidInputError } from '../../protocol/errors.js';
import type { JsonObject, JsonValue } from '../../protocol/responses.js';
import { isValidRegistrationId, validateIdScope } from '../../protocol/validate.js';
import {
  type CertificateIssuancePolicy,
  DEFAULT_CERTIFICATE_ISSUANCE,
  ISSUANCE_KEY_TYPES,
  type IssuanceKeyType,
  MAX_VALIDITY_DAYS,
  MIN_VALIDITY_DAYS,
} from './certificate-policy.js';
import { stripJsonComments } from './strip-json-comments.js';

/** `geoLatency` chooses the first linked hub (one place, no latency to measure); `custom` calls a webhook. */
export type AllocationPolicy = 'hashed' | 'static' | 'geoLatency' | 'custom';
/** The policies a whole instance (the configuration's top level) may use: `custom` is per enrollment. */
export type InstanceAllocationPolicy = Exclude<AllocationPolicy, 'custom'>;

/** What DPS does when an assigned device registers again (docs/emulator.md, "Re-provisioning"). */
export interface ReprovisionPolicy {
  /** true: the allocation is evaluated again and the device may move; false: it stays on its hub. */
  updateHubAssignment: boolean;
  /** true: a moved device keeps its twin and device id; false: they are reset from the enrollment. */
  migrateDeviceData: boolean;
}

export const DEFAULT_REPROVISION_POLICY: ReprovisionPolicy = {
  updateHubAssignment: true,
  migrateDeviceData: true,
};

/** The webhook a `custom` allocation calls (docs/emulator.md, "Custom allocation"). */
export interface CustomAllocationDefinition {
  /** http: or https: URL; a query string (e.g. an Azure Functions `?code=`) is sent but never logged. */
  webhookUrl: string;
  apiVersion: string;
}

/** The api-version a configured custom allocation definition gets when it names none. */
export const DEFAULT_CUSTOM_ALLOCATION_API_VERSION = '2021-10-01';

/** An absolute http: or https: URL. */
export function isWebhookUrl(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const { protocol } = new URL(url);
  return protocol === 'http:' || protocol === 'https:';
}

export interface SymmetricKeyAttestation {
  type: 'symmetricKey';
  primaryKey: string;
  secondaryKey?: string | undefined;
}

/** An individual X.509 enrollment matches the device's leaf certificate by thumbprint. */
export interface IndividualX509Attestation {
  type: 'x509';
  /** Upper-case hex SHA-1 and/or SHA-256 thumbprints, without colons. */
  thumbprints: string[];
}

/** A group X.509 enrollment trusts every device whose chain leads to one of these CA certificates. */
export interface GroupX509Attestation {
  type: 'x509';
  caCertificatePems: string[];
}

/**
 * A TPM individual enrollment, made through the service API: stored and returned, never matched (TPM
 * attestation is not available over MQTT), so a device with this registration id is refused.
 */
export interface TpmAttestation {
  type: 'tpm';
  endorsementKey: string;
  storageRootKey?: string | undefined;
}

interface EnrollmentCommon {
  enabled: boolean;
  /** Linked IoT hubs; empty means the emulator-wide list. */
  iotHubs: string[];
  allocationPolicy: AllocationPolicy | undefined;
  initialTwin: JsonObject | undefined;
  /** Returned to the device as registrationState.payload (custom allocation data). */
  payload: JsonValue | undefined;
  /** Certificate issuance policy; a field left out falls back to the top-level policy. */
  certificateIssuance: Partial<CertificateIssuancePolicy> | undefined;
  /** Absent (older stores, configured enrollments without one): both true, as in DPS. */
  reprovisionPolicy?: ReprovisionPolicy | undefined;
  /** Required with allocationPolicy `custom`. */
  customAllocationDefinition?: CustomAllocationDefinition | undefined;
}

export interface IndividualEnrollment extends EnrollmentCommon {
  registrationId: string;
  attestation: SymmetricKeyAttestation | IndividualX509Attestation | TpmAttestation;
  /** Device id override; the registration id by default. */
  deviceId: string | undefined;
}

export interface EnrollmentGroup extends EnrollmentCommon {
  enrollmentGroupId: string;
  attestation: SymmetricKeyAttestation | GroupX509Attestation;
}

export interface EmulatorConfig {
  idScope: string;
  iotHubs: string[];
  allocationPolicy: InstanceAllocationPolicy;
  individualEnrollments: IndividualEnrollment[];
  enrollmentGroups: EnrollmentGroup[];
  /** The default certificate issuance policy (validity 7..90 days, accepted key types). */
  certificateIssuance: CertificateIssuancePolicy;
}

// The documented defaults (docs/emulator.md): with no configuration, any registration id can register
// with the key derived from the demo group key, and `demo-device` with the demo device key.
export const DEFAULT_ID_SCOPE = '0ne00000000';
export const DEFAULT_IOT_HUB = 'emulated-hub.azure-devices.net';
export const DEMO_GROUP_ID = 'demo-group';
/** base64 of the 32 ASCII bytes "dps-mqtt emulator demo group key". Not a secret: never use it in production. */
export const DEMO_GROUP_KEY = 'ZHBzLW1xdHQgZW11bGF0b3IgZGVtbyBncm91cCBrZXk=';
export const DEMO_DEVICE_ID = 'demo-device';
/** base64 of the 32 ASCII bytes "dps-mqtt emulator demo device k!". */
export const DEMO_DEVICE_KEY = 'ZHBzLW1xdHQgZW11bGF0b3IgZGVtbyBkZXZpY2UgayE=';
/** The group that trusts device certificates issued by the emulator's own CA. */
export const DEMO_X509_GROUP_ID = 'demo-x509-group';

/** An IoT hub host name: DNS labels of letters, digits and hyphens, e.g. `my-hub.azure-devices.net`. */
export function isIotHubHostName(host: string): boolean {
  return (
    host.length <= 253 &&
    host.split('.').every((label) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label))
  );
}

/** Why a hub name is refused, and the shape expected. */
export function invalidIotHubMessage(host: unknown): string {
  return `${JSON.stringify(host)} is not a valid IoT hub host name: use letters, digits, - and . (e.g. my-hub.azure-devices.net)`;
}

/** A symmetric enrollment key: base64 of at least 16 bytes. */
export function isEnrollmentKey(key: string): boolean {
  return /^[A-Za-z0-9+/]+={0,2}$/.test(key) && Buffer.from(key, 'base64').length >= 16;
}

export const ENROLLMENT_KEY_SHAPE =
  'expected a base64 key of at least 16 bytes (e.g. `openssl rand -base64 32`)';

/** A configuration file or value that cannot be used; `field` is the JSON path, e.g. `enrollmentGroups[1].attestation`. */
export class EmulatorConfigError extends InvalidInputError {}

/** The configuration used when there is none: the demo enrollments above. */
export function defaultEmulatorConfig(
  options: { idScope?: string; emulatorCaPem?: string } = {},
): EmulatorConfig {
  const common = {
    enabled: true,
    iotHubs: [],
    allocationPolicy: undefined,
    initialTwin: undefined,
    payload: undefined,
    certificateIssuance: undefined,
  };
  const groups: EnrollmentGroup[] = [
    {
      ...common,
      enrollmentGroupId: DEMO_GROUP_ID,
      attestation: { type: 'symmetricKey', primaryKey: DEMO_GROUP_KEY },
    },
  ];
  if (options.emulatorCaPem !== undefined) {
    groups.push({
      ...common,
      enrollmentGroupId: DEMO_X509_GROUP_ID,
      attestation: { type: 'x509', caCertificatePems: [options.emulatorCaPem] },
    });
  }
  return {
    idScope: options.idScope ?? DEFAULT_ID_SCOPE,
    iotHubs: [DEFAULT_IOT_HUB],
    allocationPolicy: 'hashed',
    individualEnrollments: [
      {
        ...common,
        registrationId: DEMO_DEVICE_ID,
        deviceId: undefined,
        attestation: { type: 'symmetricKey', primaryKey: DEMO_DEVICE_KEY },
      },
    ],
    enrollmentGroups: groups,
    certificateIssuance: defaultCertificateIssuance(),
  };
}

/** Reads and validates a configuration file; certificate paths in it are relative to the file. */
export async function loadEmulatorConfigFile(path: string): Promise<EmulatorConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new EmulatorConfigError(
      'config',
      `cannot read the emulator configuration ${path}: ${String(error)}`,
    );
  }
  let json: unknown;
  try {
    // Comments are allowed (JSONC), as the example in docs/emulator.md has them.
    json = JSON.parse(stripJsonComments(text));
  } catch (error) {
    throw new EmulatorConfigError(
      'config',
      `the emulator configuration ${path} is not valid JSON (// and /* */ comments allowed): ${String(error)}`,
    );
  }
  return parseEmulatorConfig(json, { baseDir: dirname(resolve(path)), source: path });
}

/**
 * Validates a configuration value (the parsed JSON file, or an object given to startEmulator).
 * `baseDir` resolves certificate file paths; without it, certificates must be inline PEM.
 */
export async function parseEmulatorConfig(
  json: unknown,
  options: { baseDir?: string; source?: string } = {},
): Promise<EmulatorConfig> {
  const reader = new ConfigReader(options.source ?? 'emulator configuration', options.baseDir);
  const root = reader.object(json, '');
  reader.allowOnly(root, '', [
    '$schema',
    'idScope',
    'iotHubs',
    'allocationPolicy',
    'individualEnrollments',
    'enrollmentGroups',
    'certificateIssuance',
  ]);
  const idScope = reader.optionalString(root, '', 'idScope') ?? DEFAULT_ID_SCOPE;
  try {
    validateIdScope(idScope);
  } catch (error) {
    throw reader.error('idScope', error instanceof Error ? error.message : String(error));
  }
  const iotHubs = reader.hubs(root, '', 'iotHubs') ?? [DEFAULT_IOT_HUB];
  if (iotHubs.length === 0) throw reader.error('iotHubs', 'list at least one IoT hub host name');
  const allocationPolicy = reader.instanceAllocationPolicy(root, '', 'allocationPolicy') ?? 'hashed';

  const individualEnrollments: IndividualEnrollment[] = [];
  const seenRegistrationIds = new Set<string>();
  for (const [index, value] of reader.array(root, '', 'individualEnrollments').entries()) {
    const where = `individualEnrollments[${index}]`;
    const enrollment = await reader.individualEnrollment(value, where);
    if (seenRegistrationIds.has(enrollment.registrationId)) {
      throw reader.error(
        `${where}.registrationId`,
        `registration id "${enrollment.registrationId}" is enrolled twice`,
      );
    }
    seenRegistrationIds.add(enrollment.registrationId);
    individualEnrollments.push(enrollment);
  }

  const enrollmentGroups: EnrollmentGroup[] = [];
  const seenGroupIds = new Set<string>();
  for (const [index, value] of reader.array(root, '', 'enrollmentGroups').entries()) {
    const where = `enrollmentGroups[${index}]`;
    const group = await reader.enrollmentGroup(value, where);
    if (seenGroupIds.has(group.enrollmentGroupId)) {
      throw reader.error(
        `${where}.enrollmentGroupId`,
        `enrollment group "${group.enrollmentGroupId}" is defined twice`,
      );
    }
    seenGroupIds.add(group.enrollmentGroupId);
    enrollmentGroups.push(group);
  }
  const certificateIssuance: CertificateIssuancePolicy = {
    ...defaultCertificateIssuance(),
    ...reader.certificateIssuance(root, ''),
  };
  return {
    idScope,
    iotHubs,
    allocationPolicy,
    individualEnrollments,
    enrollmentGroups,
    certificateIssuance,
  };
}

function defaultCertificateIssuance(): CertificateIssuancePolicy {
  return {
    validityDays: DEFAULT_CERTIFICATE_ISSUANCE.validityDays,
    keyTypes: [...DEFAULT_CERTIFICATE_ISSUANCE.keyTypes],
  };
}

/**
 * Validates a certificate issuance policy given outside a configuration file (the `certificateIssuance`
 * option, the `--cert-*` flags): only the fields it sets, to lay over the configuration's policy.
 */
export function parseCertificateIssuancePolicy(
  value: unknown,
  source = 'certificateIssuance option',
): Partial<CertificateIssuancePolicy> {
  return new ConfigReader(source, undefined).certificateIssuance({ certificateIssuance: value }, '') ?? {};
}

/** An enrollment's policy over the top-level one, field by field. */
export function effectiveCertificateIssuance(
  config: EmulatorConfig,
  enrollment: { certificateIssuance: Partial<CertificateIssuancePolicy> | undefined },
): CertificateIssuancePolicy {
  return {
    validityDays: enrollment.certificateIssuance?.validityDays ?? config.certificateIssuance.validityDays,
    keyTypes: enrollment.certificateIssuance?.keyTypes ?? config.certificateIssuance.keyTypes,
  };
}

type Json = Record<string, unknown>;

class ConfigReader {
  constructor(
    private readonly source: string,
    private readonly baseDir: string | undefined,
  ) {}

  error(field: string, message: string): EmulatorConfigError {
    return new EmulatorConfigError(field || 'config', `${this.source}: ${field || '(root)'}: ${message}`);
  }

  object(value: unknown, where: string): Json {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw this.error(where, 'expected a JSON object');
    }
    return value as Json;
  }

  allowOnly(object: Json, where: string, fields: string[]): void {
    for (const key of Object.keys(object)) {
      if (!fields.includes(key)) {
        throw this.error(
          join(where, key),
          `unknown field (expected one of: ${fields.filter((f) => f !== '$schema').join(', ')})`,
        );
      }
    }
  }

  array(object: Json, where: string, field: string): unknown[] {
    const value = object[field];
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw this.error(join(where, field), 'expected a JSON array');
    return value;
  }

  optionalString(object: Json, where: string, field: string): string | undefined {
    const value = object[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.length === 0)
      throw this.error(join(where, field), 'expected a non-empty string');
    return value;
  }

  requiredString(object: Json, where: string, field: string): string {
    const value = this.optionalString(object, where, field);
    if (value === undefined) throw this.error(join(where, field), 'is required');
    return value;
  }

  optionalBoolean(object: Json, where: string, field: string): boolean | undefined {
    const value = object[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') throw this.error(join(where, field), 'expected true or false');
    return value;
  }

  hubs(object: Json, where: string, field: string): string[] | undefined {
    const value = object[field];
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) {
      throw this.error(
        join(where, field),
        'expected an array of IoT hub host names, e.g. ["my-hub.azure-devices.net"]',
      );
    }
    for (const [index, hub] of value.entries()) {
      if (typeof hub !== 'string' || !isIotHubHostName(hub)) {
        throw this.error(`${join(where, field)}[${index}]`, invalidIotHubMessage(hub));
      }
    }
    return value as string[];
  }

  allocationPolicy(object: Json, where: string, field: string): AllocationPolicy | undefined {
    const value = object[field];
    if (value === undefined) return undefined;
    if (value !== 'hashed' && value !== 'static' && value !== 'geoLatency' && value !== 'custom')
      throw this.error(join(where, field), 'expected "hashed", "static", "geoLatency" or "custom"');
    return value;
  }

  /** The top level: `custom` needs a webhook, which only an enrollment can name (as in DPS). */
  instanceAllocationPolicy(object: Json, where: string, field: string): InstanceAllocationPolicy | undefined {
    const value = object[field];
    if (value === undefined) return undefined;
    if (value !== 'hashed' && value !== 'static' && value !== 'geoLatency') {
      throw this.error(
        join(where, field),
        value === 'custom'
          ? '"custom" is set per enrollment (with its customAllocationDefinition), not for the whole instance'
          : 'expected "hashed", "static" or "geoLatency"',
      );
    }
    return value;
  }

  reprovisionPolicy(object: Json, where: string): ReprovisionPolicy | undefined {
    if (object.reprovisionPolicy === undefined) return undefined;
    const policyWhere = join(where, 'reprovisionPolicy');
    const policy = this.object(object.reprovisionPolicy, policyWhere);
    this.allowOnly(policy, policyWhere, ['updateHubAssignment', 'migrateDeviceData']);
    return {
      updateHubAssignment:
        this.optionalBoolean(policy, policyWhere, 'updateHubAssignment') ??
        DEFAULT_REPROVISION_POLICY.updateHubAssignment,
      migrateDeviceData:
        this.optionalBoolean(policy, policyWhere, 'migrateDeviceData') ??
        DEFAULT_REPROVISION_POLICY.migrateDeviceData,
    };
  }

  customAllocationDefinition(
    object: Json,
    where: string,
    policy: AllocationPolicy | undefined,
  ): CustomAllocationDefinition | undefined {
    const definitionWhere = join(where, 'customAllocationDefinition');
    if (object.customAllocationDefinition === undefined) {
      if (policy === 'custom') {
        throw this.error(
          definitionWhere,
          'is required with allocationPolicy "custom", e.g. { "webhookUrl": "http://127.0.0.1:7071/api/allocate" }',
        );
      }
      return undefined;
    }
    const definition = this.object(object.customAllocationDefinition, definitionWhere);
    this.allowOnly(definition, definitionWhere, ['webhookUrl', 'apiVersion']);
    const webhookUrl = this.requiredString(definition, definitionWhere, 'webhookUrl');
    if (!isWebhookUrl(webhookUrl)) {
      throw this.error(
        join(definitionWhere, 'webhookUrl'),
        'expected an absolute http: or https: URL, e.g. "http://127.0.0.1:7071/api/allocate"',
      );
    }
    const apiVersion =
      this.optionalString(definition, definitionWhere, 'apiVersion') ?? DEFAULT_CUSTOM_ALLOCATION_API_VERSION;
    return { webhookUrl, apiVersion };
  }

  common(object: Json, where: string): EnrollmentCommon {
    const initialTwin = object.initialTwin;
    if (initialTwin !== undefined) this.object(initialTwin, join(where, 'initialTwin'));
    const allocationPolicy = this.allocationPolicy(object, where, 'allocationPolicy');
    const common: EnrollmentCommon = {
      enabled: this.optionalBoolean(object, where, 'enabled') ?? true,
      iotHubs: this.hubs(object, where, 'iotHubs') ?? [],
      allocationPolicy,
      initialTwin: initialTwin as JsonObject | undefined,
      payload: object.payload as JsonValue | undefined,
      certificateIssuance: this.certificateIssuance(object, where),
    };
    // Only when given, so a configured enrollment's stored form is unchanged when it uses neither.
    const reprovisionPolicy = this.reprovisionPolicy(object, where);
    if (reprovisionPolicy !== undefined) common.reprovisionPolicy = reprovisionPolicy;
    const definition = this.customAllocationDefinition(object, where, allocationPolicy);
    if (definition !== undefined) common.customAllocationDefinition = definition;
    return common;
  }

  /** `certificateIssuance: { validityDays, keyTypes }`: the fields given, validated. */
  certificateIssuance(object: Json, where: string): Partial<CertificateIssuancePolicy> | undefined {
    const value = object.certificateIssuance;
    if (value === undefined) return undefined;
    const policyWhere = join(where, 'certificateIssuance');
    const policy = this.object(value, policyWhere);
    this.allowOnly(policy, policyWhere, ['validityDays', 'keyTypes']);
    const result: Partial<CertificateIssuancePolicy> = {};
    const days = policy.validityDays;
    if (days !== undefined) {
      if (
        typeof days !== 'number' ||
        !Number.isInteger(days) ||
        days < MIN_VALIDITY_DAYS ||
        days > MAX_VALIDITY_DAYS
      ) {
        throw this.error(
          join(policyWhere, 'validityDays'),
          `${JSON.stringify(days)} is not allowed: expected a whole number of days from ${MIN_VALIDITY_DAYS} to ${MAX_VALIDITY_DAYS} (DPS's policy range)`,
        );
      }
      result.validityDays = days;
    }
    const keyTypes = policy.keyTypes;
    if (keyTypes !== undefined) {
      const keyTypesWhere = join(policyWhere, 'keyTypes');
      const expected = `expected a non-empty array of ${ISSUANCE_KEY_TYPES.map((type) => `"${type}"`).join(', ')} ("rsa" = RSA of at least 2048 bits)`;
      if (!Array.isArray(keyTypes) || keyTypes.length === 0) throw this.error(keyTypesWhere, expected);
      for (const [index, keyType] of keyTypes.entries()) {
        if (!ISSUANCE_KEY_TYPES.includes(keyType as IssuanceKeyType)) {
          throw this.error(
            `${keyTypesWhere}[${index}]`,
            `${JSON.stringify(keyType)} is not a key type: ${expected}`,
          );
        }
      }
      result.keyTypes = [...new Set(keyTypes as IssuanceKeyType[])];
    }
    return result;
  }

  symmetricKey(object: Json, where: string): SymmetricKeyAttestation {
    const primaryKey = this.requiredString(object, where, 'primaryKey');
    const secondaryKey = this.optionalString(object, where, 'secondaryKey');
    for (const [field, key] of [
      ['primaryKey', primaryKey],
      ['secondaryKey', secondaryKey],
    ] as const) {
      if (key !== undefined && !isEnrollmentKey(key)) {
        throw this.error(join(where, field), ENROLLMENT_KEY_SHAPE);
      }
    }
    return { type: 'symmetricKey', primaryKey, secondaryKey };
  }

  async certificate(value: string, where: string): Promise<string> {
    let pem = value;
    if (!value.includes('-----BEGIN CERTIFICATE-----')) {
      if (this.baseDir === undefined && !isAbsolute(value)) {
        throw this.error(where, 'expected PEM text (-----BEGIN CERTIFICATE-----) or an absolute file path');
      }
      const path = resolve(this.baseDir ?? '/', value);
      try {
        pem = await readFile(path, 'utf8');
      } catch (error) {
        throw this.error(where, `cannot read the certificate file ${path}: ${String(error)}`);
      }
    }
    try {
      new X509Certificate(pem);
    } catch {
      throw this.error(where, 'is not a PEM X.509 certificate');
    }
    return pem;
  }

  async individualEnrollment(value: unknown, where: string): Promise<IndividualEnrollment> {
    const object = this.object(value, where);
    this.allowOnly(object, where, [
      'registrationId',
      'attestation',
      'enabled',
      'deviceId',
      'iotHubs',
      'allocationPolicy',
      'initialTwin',
      'payload',
      'certificateIssuance',
      'reprovisionPolicy',
      'customAllocationDefinition',
    ]);
    const registrationId = this.requiredString(object, where, 'registrationId');
    if (!isValidRegistrationId(registrationId)) {
      throw this.error(
        join(where, 'registrationId'),
        `"${registrationId}" is invalid: use lowercase letters, digits and - . _ : (at most 128 characters)`,
      );
    }
    const attestationWhere = join(where, 'attestation');
    const attestationObject = this.object(object.attestation, attestationWhere);
    const type = attestationObject.type;
    let attestation: IndividualEnrollment['attestation'];
    if (type === 'symmetricKey') {
      this.allowOnly(attestationObject, attestationWhere, ['type', 'primaryKey', 'secondaryKey']);
      attestation = this.symmetricKey(attestationObject, attestationWhere);
    } else if (type === 'x509') {
      this.allowOnly(attestationObject, attestationWhere, [
        'type',
        'certificate',
        'thumbprint',
        'secondaryThumbprint',
      ]);
      const thumbprints: string[] = [];
      const certificate = this.optionalString(attestationObject, attestationWhere, 'certificate');
      if (certificate !== undefined) {
        const pem = await this.certificate(certificate, join(attestationWhere, 'certificate'));
        const parsed = new X509Certificate(pem);
        thumbprints.push(normaliseThumbprint(parsed.fingerprint), normaliseThumbprint(parsed.fingerprint256));
      }
      for (const field of ['thumbprint', 'secondaryThumbprint']) {
        const thumbprint = this.optionalString(attestationObject, attestationWhere, field);
        if (thumbprint === undefined) continue;
        const normalised = normaliseThumbprint(thumbprint);
        if (!/^([0-9A-F]{40}|[0-9A-F]{64})$/.test(normalised)) {
          throw this.error(
            join(attestationWhere, field),
            'expected a SHA-1 (40 hex digits) or SHA-256 (64 hex digits) thumbprint',
          );
        }
        thumbprints.push(normalised);
      }
      if (thumbprints.length === 0) {
        throw this.error(
          attestationWhere,
          'an x509 individual enrollment needs "certificate" (PEM or path) or "thumbprint"',
        );
      }
      attestation = { type: 'x509', thumbprints };
    } else {
      throw this.error(
        join(attestationWhere, 'type'),
        'expected "symmetricKey" or "x509" (TPM is not available over MQTT)',
      );
    }
    return {
      ...this.common(object, where),
      registrationId,
      attestation,
      deviceId: this.optionalString(object, where, 'deviceId'),
    };
  }

  async enrollmentGroup(value: unknown, where: string): Promise<EnrollmentGroup> {
    const object = this.object(value, where);
    this.allowOnly(object, where, [
      'enrollmentGroupId',
      'attestation',
      'enabled',
      'iotHubs',
      'allocationPolicy',
      'initialTwin',
      'payload',
      'certificateIssuance',
      'reprovisionPolicy',
      'customAllocationDefinition',
    ]);
    const enrollmentGroupId = this.requiredString(object, where, 'enrollmentGroupId');
    const attestationWhere = join(where, 'attestation');
    const attestationObject = this.object(object.attestation, attestationWhere);
    let attestation: EnrollmentGroup['attestation'];
    if (attestationObject.type === 'symmetricKey') {
      this.allowOnly(attestationObject, attestationWhere, ['type', 'primaryKey', 'secondaryKey']);
      attestation = this.symmetricKey(attestationObject, attestationWhere);
    } else if (attestationObject.type === 'x509') {
      this.allowOnly(attestationObject, attestationWhere, [
        'type',
        'caCertificate',
        'secondaryCaCertificate',
      ]);
      const pems: string[] = [];
      for (const field of ['caCertificate', 'secondaryCaCertificate']) {
        const certificate = this.optionalString(attestationObject, attestationWhere, field);
        if (certificate !== undefined)
          pems.push(await this.certificate(certificate, join(attestationWhere, field)));
      }
      if (pems.length === 0) {
        throw this.error(
          attestationWhere,
          'an x509 enrollment group needs "caCertificate" (PEM text or a file path)',
        );
      }
      attestation = { type: 'x509', caCertificatePems: pems };
    } else {
      throw this.error(
        join(attestationWhere, 'type'),
        'expected "symmetricKey" or "x509" (TPM is not available over MQTT)',
      );
    }
    return { ...this.common(object, where), enrollmentGroupId, attestation };
  }
}

function join(where: string, field: string): string {
  return where ? `${where}.${field}` : field;
}

export function normaliseThumbprint(thumbprint: string): string {
  return thumbprint.replace(/[:\s]/g, '').toUpperCase();
}
