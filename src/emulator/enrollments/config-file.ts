// The emulator's configuration file (docs/emulator.md) as TypeScript types, for `startEmulator({ config })`
// and `startEmulator({ enrollments })`: a misspelt field fails to compile, as parseEmulatorConfig refuses
// it at run time. Certificates are PEM text or a file path (relative to the file, or to `configBaseDir`).
import type { JsonObject, JsonValue } from '../../protocol/responses.js';
import type { CertificateIssuancePolicy } from './certificate-policy.js';

export type AllocationPolicyConfig = 'hashed' | 'static';

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
  /** Default hashed. */
  allocationPolicy?: AllocationPolicyConfig;
  individualEnrollments?: IndividualEnrollmentConfig[];
  enrollmentGroups?: EnrollmentGroupConfig[];
  certificateIssuance?: CertificateIssuanceConfig;
}

/** Enrollments added to the configured ones (startEmulator's `enrollments`, the CLI's --device). */
export type EnrollmentsConfig = Pick<EmulatorConfigFile, 'individualEnrollments' | 'enrollmentGroups'>;
