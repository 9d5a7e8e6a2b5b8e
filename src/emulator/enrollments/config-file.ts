// The emulator's configuration file (docs/emulator.md) as TypeScript types, for `startEmulator({ config })`
// and `startEmulator({ enrollments })`: a misspelt field fails to compile, as parseEmulatorConfig refuses
// it at run time. Certificates are PEM text or a file path (relative to the file, or to `configBaseDir`).
import type { JsonObject, JsonValue } from '../../protocol/responses.js';
import type { CertificateIssuancePolicy } from './certificate-policy.js';

/** `geoLatency` chooses the first linked hub; `custom` (per enrollment) calls its webhook. */
export type AllocationPolicyConfig = 'hashed' | 'static' | 'geoLatency' | 'custom';

/** When an assigned device registers again: both true by default, as in DPS. */
export interface ReprovisionPolicyConfig {
  /** true: evaluate the allocation again (the device may move); false: it stays on its hub. */
  updateHubAssignment?: boolean;
  /** true: a moved device keeps its twin and device id; false: reset from the enrollment. */
  migrateDeviceData?: boolean;
}

/** The webhook `allocationPolicy: "custom"` calls (http: or https:). */
export interface CustomAllocationDefinitionConfig {
  webhookUrl: string;
  /** Default 2021-10-01. */
  apiVersion?: string;
}

export interface SymmetricKeyAttestationConfig {
  type: 'symmetricKey';
  /** base64, at least 16 bytes (e.g. `openssl rand -base64 32`). */
  primaryKey: string;
  secondaryKey?: string;
}

/** An individual X.509 enrollment: the device certificate, or its SHA-1 or SHA-256 thumbprint (hex). */
export interface IndividualX509AttestationConfig {
  type: 'x509';
  certificate?: string;
  thumbprint?: string;
  secondaryThumbprint?: string;
}

/** A group X.509 enrollment: the CA certificate(s) the devices' chains lead to. */
export interface GroupX509AttestationConfig {
  type: 'x509';
  caCertificate?: string;
  secondaryCaCertificate?: string;
}

/** The issued certificates' lifetime (7 to 90 days) and accepted key types. */
export type CertificateIssuanceConfig = Partial<CertificateIssuancePolicy>;

export interface EnrollmentConfigCommon {
  /** false: register answers 401 (errorCode 401002). Default true. */
  enabled?: boolean;
  /** Linked IoT hubs; the top-level list by default. */
  iotHubs?: string[];
  allocationPolicy?: AllocationPolicyConfig;
  /** Required with allocationPolicy "custom". */
  customAllocationDefinition?: CustomAllocationDefinitionConfig;
  reprovisionPolicy?: ReprovisionPolicyConfig;
  /** Kept with the registration (not sent to the device, as in DPS). */
  initialTwin?: JsonObject;
  /** Returned as registrationState.payload; without it, the device's own payload is echoed. */
  payload?: JsonValue;
  /** Overrides the top-level certificate issuance policy, field by field. */
  certificateIssuance?: CertificateIssuanceConfig;
}

export interface IndividualEnrollmentConfig extends EnrollmentConfigCommon {
  registrationId: string;
  attestation: SymmetricKeyAttestationConfig | IndividualX509AttestationConfig;
  /** Device id override; the registration id by default. */
  deviceId?: string;
}

export interface EnrollmentGroupConfig extends EnrollmentConfigCommon {
  enrollmentGroupId: string;
  attestation: SymmetricKeyAttestationConfig | GroupX509AttestationConfig;
}

/** The whole configuration file. */
export interface EmulatorConfigFile {
  /** A JSON schema reference, for editors; ignored. */
  $schema?: string;
  /** Default 0ne00000000. */
  idScope?: string;
  /** Default emulated-hub.azure-devices.net. */
  iotHubs?: string[];
  /** Default hashed; "custom" only per enrollment. */
  allocationPolicy?: Exclude<AllocationPolicyConfig, 'custom'>;
  individualEnrollments?: IndividualEnrollmentConfig[];
  enrollmentGroups?: EnrollmentGroupConfig[];
  certificateIssuance?: CertificateIssuanceConfig;
}

/** Enrollments added to the configured ones (startEmulator's `enrollments`, the CLI's --device). */
export type EnrollmentsConfig = Pick<EmulatorConfigFile, 'individualEnrollments' | 'enrollmentGroups'>;
