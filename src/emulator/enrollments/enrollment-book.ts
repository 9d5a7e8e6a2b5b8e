// Enrollment lookup, attestation (SAS tokens and X.509 chains) and IoT hub allocation.
// Refusals carry the CONNACK return code DPS uses: 4 for credentials that are malformed, 5 for
// well-formed credentials that do not authorise this registration id.
import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import type { X509CertificateInfo } from '../../protocol/responses.js';
import {
  computeSasSignature,
  deriveDeviceKey,
  parseSasToken,
  SAS_KEY_NAME,
  sasResource,
} from '../../protocol/sas.js';
import {
  type AllocationPolicy,
  type EmulatorConfig,
  type EnrollmentGroup,
  type IndividualEnrollment,
  normaliseThumbprint,
  type SymmetricKeyAttestation,
} from './config.js';

export const CONNACK_BAD_USERNAME_OR_PASSWORD = 4;
export const CONNACK_NOT_AUTHORIZED = 5;

export type MatchedEnrollment =
  | { kind: 'individual'; enrollment: IndividualEnrollment }
  | { kind: 'group'; enrollment: EnrollmentGroup };

export interface Attested {
  ok: true;
  matched: MatchedEnrollment;
  attestation: 'symmetricKey' | 'x509';
  /** Which key or certificate authorised the device, for the log. */
  credential: string;
  certificate?: X509Certificate | undefined;
  signingCertificate?: X509Certificate | undefined;
}

export interface Refused {
  ok: false;
  returnCode: typeof CONNACK_BAD_USERNAME_OR_PASSWORD | typeof CONNACK_NOT_AUTHORIZED;
  reason: string;
}

export type AttestationResult = Attested | Refused;

/** The maximum chain depth walked from a device certificate to its group's CA. */
const MAX_CHAIN_DEPTH = 6;

/**
 * Where the book reads enrollments from at each attestation: the enrollment store (changed at run time
 * by the service API), or a fixed list (the configuration's, when no store is given).
 */
export interface EnrollmentSource {
  individual(registrationId: string): IndividualEnrollment | undefined;
  individuals(): Iterable<IndividualEnrollment>;
  groups(): Iterable<EnrollmentGroup>;
}

/** A fixed source: the configuration's enrollments. */
export function configEnrollmentSource(config: EmulatorConfig): EnrollmentSource {
  const individuals = new Map(
    config.individualEnrollments.map((enrollment) => [enrollment.registrationId, enrollment]),
  );
  return {
    individual: (registrationId) => individuals.get(registrationId),
    individuals: () => individuals.values(),
    groups: () => config.enrollmentGroups,
  };
}

export class EnrollmentBook {
  private readonly source: EnrollmentSource;

  constructor(
    readonly config: EmulatorConfig,
    source?: EnrollmentSource,
  ) {
    this.source = source ?? configEnrollmentSource(config);
  }

  get idScope(): string {
    return this.config.idScope;
  }

  /** Keys the log must never show, whatever field they end up in. */
  secrets(): string[] {
    const keys: string[] = [];
    for (const enrollment of [...this.source.individuals(), ...this.source.groups()]) {
      if (enrollment.attestation.type === 'symmetricKey') {
        keys.push(enrollment.attestation.primaryKey);
        if (enrollment.attestation.secondaryKey !== undefined) keys.push(enrollment.attestation.secondaryKey);
      }
    }
    return keys;
  }

  /** Checks a SAS token (the CONNECT password) for `registrationId`; `sr` may be URL-encoded or raw. */
  attestSasToken(registrationId: string, password: string, nowSeconds: number): AttestationResult {
    const token = parseSasToken(password);
    if (token === undefined) {
      return refuse(CONNACK_BAD_USERNAME_OR_PASSWORD, 'the password is not a SharedAccessSignature token');
    }
    if (token.keyName !== SAS_KEY_NAME) {
      return refuse(CONNACK_BAD_USERNAME_OR_PASSWORD, `the token's skn must be "${SAS_KEY_NAME}"`);
    }
    const expectedResource = sasResource(this.idScope, registrationId);
    if (token.resource !== expectedResource) {
      return refuse(
        CONNACK_NOT_AUTHORIZED,
        `the token is for "${token.resource}", not "${expectedResource}"`,
      );
    }
    if (token.expiresAtSeconds <= nowSeconds) {
      return refuse(
        CONNACK_NOT_AUTHORIZED,
        `the token expired at ${new Date(token.expiresAtSeconds * 1000).toISOString()}`,
      );
    }
    const sentSignature = Buffer.from(token.signature, 'base64');
    for (const candidate of this.symmetricKeyCandidates(registrationId)) {
      // The token is signed over the resource exactly as sent: the Node SDK signs it raw, others encoded.
      const expected = Buffer.from(
        computeSasSignature(candidate.key, token.resourceAsSent, token.expiresAtSeconds),
        'base64',
      );
      if (expected.length === sentSignature.length && timingSafeEqual(expected, sentSignature)) {
        return {
          ok: true,
          matched: candidate.matched,
          attestation: 'symmetricKey',
          credential: candidate.label,
        };
      }
    }
    return refuse(
      CONNACK_NOT_AUTHORIZED,
      'the token signature matches no enrollment key for this registration id',
    );
  }

  /**
   * Checks the TLS client certificate chain (leaf first, as the device sent it). The TLS handshake has
   * already proved the device holds the leaf's private key; this checks what the leaf is.
   */
  attestCertificate(registrationId: string, chain: X509Certificate[], now: Date): AttestationResult {
    const leaf = chain[0];
    if (leaf === undefined) {
      return refuse(
        CONNACK_NOT_AUTHORIZED,
        'no password and no client certificate: the device presented no credentials',
      );
    }
    const commonName = commonNameOf(leaf);
    if (commonName !== registrationId) {
      return refuse(
        CONNACK_NOT_AUTHORIZED,
        `the certificate's subject CN "${commonName ?? ''}" is not the registration id "${registrationId}"`,
      );
    }
    if (!isCurrentlyValid(leaf, now)) {
      return refuse(
        CONNACK_NOT_AUTHORIZED,
        `the device certificate is not valid now (${leaf.validFrom} - ${leaf.validTo})`,
      );
    }
    const individual = this.source.individual(registrationId);
    if (individual !== undefined) {
      // An individual enrollment takes precedence over groups, as in DPS.
      if (individual.attestation.type !== 'x509') {
        return refuse(
          CONNACK_NOT_AUTHORIZED,
          `the enrollment of "${registrationId}" uses ${individual.attestation.type === 'tpm' ? 'TPM' : 'a symmetric key'}, not X.509`,
        );
      }
      const thumbprints = [normaliseThumbprint(leaf.fingerprint), normaliseThumbprint(leaf.fingerprint256)];
      if (!individual.attestation.thumbprints.some((thumbprint) => thumbprints.includes(thumbprint))) {
        return refuse(
          CONNACK_NOT_AUTHORIZED,
          'the device certificate does not match the thumbprint enrolled for it',
        );
      }
      return {
        ok: true,
        matched: { kind: 'individual', enrollment: individual },
        attestation: 'x509',
        credential: `thumbprint ${thumbprints[1]}`,
        certificate: leaf,
      };
    }
    for (const group of this.source.groups()) {
      if (group.attestation.type !== 'x509') continue;
      for (const caPem of group.attestation.caCertificatePems) {
        const ca = new X509Certificate(caPem);
        if (chainLeadsTo(chain, ca, now)) {
          return {
            ok: true,
            matched: { kind: 'group', enrollment: group },
            attestation: 'x509',
            credential: `chain to ${ca.subject.replace(/\n/g, ', ')}`,
            certificate: leaf,
            signingCertificate: ca,
          };
        }
      }
    }
    return refuse(
      CONNACK_NOT_AUTHORIZED,
      'the device certificate is not enrolled and does not chain to an enrolled CA',
    );
  }

  /** The IoT hubs an enrollment may assign devices to: its own list, or the instance's. */
  linkedHubs(matched: MatchedEnrollment): string[] {
    const { iotHubs } = matched.enrollment;
    return iotHubs.length > 0 ? [...iotHubs] : [...this.config.iotHubs];
  }

  /** The enrollment's allocation policy, or the instance's. */
  allocationPolicy(matched: MatchedEnrollment): AllocationPolicy {
    return matched.enrollment.allocationPolicy ?? this.config.allocationPolicy;
  }

  /** The device id a new assignment (or a reset) gives: the individual enrollment's, or the registration id. */
  deviceIdFor(registrationId: string, matched: MatchedEnrollment): string {
    return matched.kind === 'individual' ? (matched.enrollment.deviceId ?? registrationId) : registrationId;
  }

  /**
   * The IoT hub and device id the enrollment's built-in policy allocates `registrationId` to. A `custom`
   * policy is the registrar's (it calls the webhook); here it hashes, as a fallback.
   */
  allocate(registrationId: string, matched: MatchedEnrollment): { assignedHub: string; deviceId: string } {
    const hubs = this.linkedHubs(matched);
    const policy = this.allocationPolicy(matched);
    // static: the first hub. geoLatency: every hub is as near as any other here, so the first one too.
    // hashed: evenly weighted, the same device always lands on the same hub while the list is the same.
    const index =
      policy === 'static' || policy === 'geoLatency'
        ? 0
        : createHash('sha256').update(registrationId).digest().readUInt32BE(0) % hubs.length;
    return {
      assignedHub: hubs[index] ?? this.config.iotHubs[0] ?? 'unknown-hub',
      deviceId: this.deviceIdFor(registrationId, matched),
    };
  }

  private *symmetricKeyCandidates(
    registrationId: string,
  ): Generator<{ key: string; label: string; matched: MatchedEnrollment }> {
    const individual = this.source.individual(registrationId);
    if (individual !== undefined) {
      if (individual.attestation.type === 'symmetricKey') {
        const matched: MatchedEnrollment = { kind: 'individual', enrollment: individual };
        for (const [label, key] of keysOf(individual.attestation))
          yield { key, label: `individual ${label}`, matched };
      }
      return;
    }
    for (const group of this.source.groups()) {
      if (group.attestation.type !== 'symmetricKey') continue;
      const matched: MatchedEnrollment = { kind: 'group', enrollment: group };
      for (const [label, groupKey] of keysOf(group.attestation)) {
        yield {
          key: deriveDeviceKey(groupKey, registrationId),
          label: `group ${group.enrollmentGroupId} ${label}`,
          matched,
        };
      }
    }
  }
}

/** The certificate details DPS reports in registrationState.x509. */
export function certificateInfo(certificate: X509Certificate): X509CertificateInfo {
  return {
    subjectName: certificate.subject.replace(/\n/g, ', '),
    sha1Thumbprint: normaliseThumbprint(certificate.fingerprint),
    sha256Thumbprint: normaliseThumbprint(certificate.fingerprint256),
    issuerName: certificate.issuer.replace(/\n/g, ', '),
    notBeforeUtc: new Date(certificate.validFrom).toISOString(),
    notAfterUtc: new Date(certificate.validTo).toISOString(),
    serialNumber: certificate.serialNumber,
    version: 3,
  };
}

export function commonNameOf(certificate: X509Certificate): string | undefined {
  const line = certificate.subject.split('\n').find((part) => part.startsWith('CN='));
  return line?.slice(3);
}

function keysOf(attestation: SymmetricKeyAttestation): Array<[string, string]> {
  const keys: Array<[string, string]> = [['primary key', attestation.primaryKey]];
  if (attestation.secondaryKey !== undefined) keys.push(['secondary key', attestation.secondaryKey]);
  return keys;
}

function refuse(returnCode: Refused['returnCode'], reason: string): Refused {
  return { ok: false, returnCode, reason };
}

function isCurrentlyValid(certificate: X509Certificate, now: Date): boolean {
  const time = now.getTime();
  return Date.parse(certificate.validFrom) <= time && time <= Date.parse(certificate.validTo);
}

/**
 * True when the chain the device sent leads from its leaf, through CA certificates it also sent, to
 * `anchor`: every link's signature verified, every certificate within its validity period.
 */
function chainLeadsTo(chain: X509Certificate[], anchor: X509Certificate, now: Date): boolean {
  let current = chain[0];
  const intermediates = chain.slice(1);
  for (let depth = 0; current !== undefined && depth < MAX_CHAIN_DEPTH; depth++) {
    if (current.checkIssued(anchor) && current.verify(anchor.publicKey)) return isCurrentlyValid(anchor, now);
    const child: X509Certificate = current;
    const issuer = intermediates.find(
      (candidate) =>
        candidate.ca &&
        candidate.fingerprint256 !== child.fingerprint256 &&
        child.checkIssued(candidate) &&
        child.verify(candidate.publicKey) &&
        isCurrentlyValid(candidate, now),
    );
    current = issuer;
  }
  return false;
}
