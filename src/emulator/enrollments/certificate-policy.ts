// An enrollment's certificate issuance policy (docs/emulator.md, "Certificate issuance"): part of the
// enrollment, read by the configuration and applied by the registrar's certificate issuer.

/** Key types an enrollment may accept: `rsa` means RSA of at least 2048 bits. */
export type IssuanceKeyType = 'ec-p256' | 'ec-p384' | 'rsa';
export const ISSUANCE_KEY_TYPES: readonly IssuanceKeyType[] = ['ec-p256', 'ec-p384', 'rsa'];

export interface CertificateIssuancePolicy {
  /** The issued certificate's lifetime, 7 to 90 days (DPS's policy range). */
  validityDays: number;
  keyTypes: IssuanceKeyType[];
}

export const MIN_VALIDITY_DAYS = 7;
export const MAX_VALIDITY_DAYS = 90;
export const MIN_RSA_BITS = 2048;
export const DEFAULT_CERTIFICATE_ISSUANCE: Readonly<CertificateIssuancePolicy> = Object.freeze({
  validityDays: 30,
  keyTypes: [...ISSUANCE_KEY_TYPES],
});
