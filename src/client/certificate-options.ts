// The `certificate` option of register(), checked before anything else happens, and the entry point to
// the code that builds CSRs and checks chains. That code (key generation, DER, X.509) loads with
// `await import()` only when a certificate is requested: a plain registration does not pay for it.
import { InvalidInputError } from '../protocol/errors.js';
import { findUnknownOption } from '../protocol/known-options.js';
import { validateApiVersion } from '../protocol/validate.js';
import { invalidKeyTypeMessage, isCertificateKeyType } from './certificate-key-types.js';
import type {
  CertificateRequest,
  CertificateRequestOptions,
  CreateCertificateRequestOptions,
  IssuedCertificate,
} from './types.js';

/** The first api-version with certificate issuance (protocol.md, "Certificate issuance"). */
export const CERTIFICATE_API_VERSION = '2025-07-01-preview';
const CERTIFICATE_OPTION_NAMES = ['keyType', 'csr'];

/**
 * Checks the shape of the `certificate` option (the CSR itself is checked when the request is prepared)
 * and returns the api-version to connect with: 2025-07-01-preview unless the caller chose a later one.
 */
export function certificateApiVersion(certificate: unknown, apiVersion: unknown): string {
  if (certificate === null || typeof certificate !== 'object' || Array.isArray(certificate)) {
    throw new InvalidInputError(
      'certificate',
      'certificate must be an object: { keyType } to generate a key (ec-p384, ec-p256 or rsa-2048), or { csr } with your own PKCS#10 request',
    );
  }
  const unknown = findUnknownOption(certificate, CERTIFICATE_OPTION_NAMES, 'certificate');
  if (unknown) throw new InvalidInputError(unknown.field, unknown.message);
  const fields = certificate as { keyType?: unknown; csr?: unknown };
  if (fields.keyType !== undefined && fields.csr !== undefined) {
    throw new InvalidInputError(
      'certificate',
      'certificate has both keyType and csr: give { keyType } to have a key generated, or { csr } with your own request',
    );
  }
  if (fields.keyType !== undefined && !isCertificateKeyType(fields.keyType)) {
    throw new InvalidInputError(
      'certificate.keyType',
      invalidKeyTypeMessage('certificate.keyType', fields.keyType),
    );
  }
  if (fields.csr !== undefined && !isNonEmptyCsr(fields.csr)) {
    throw new InvalidInputError(
      'certificate.csr',
      'certificate.csr must be a PKCS#10 request: PEM text ("-----BEGIN CERTIFICATE REQUEST-----") or DER bytes',
    );
  }
  if (apiVersion === undefined) return CERTIFICATE_API_VERSION;
  const chosen = validateApiVersion(apiVersion);
  if (chosen.slice(0, 10) < CERTIFICATE_API_VERSION.slice(0, 10)) {
    throw new InvalidInputError(
      'apiVersion',
      `api version ${chosen} has no certificate issuance: use ${CERTIFICATE_API_VERSION} or later, or leave apiVersion out to get it`,
    );
  }
  return chosen;
}

function isNonEmptyCsr(value: unknown): boolean {
  if (typeof value === 'string') return value.trim().length > 0;
  return value instanceof Uint8Array && value.length > 0;
}

/** What register() needs from the certificate code: the CSR to send and the check of the answer. */
export interface PreparedCertificateRequest {
  /** Base64 DER on one line, as the register body's `csr`. */
  csrBase64: string;
  /** The generated key; undefined when the caller brought its CSR. */
  privateKeyPem: string | undefined;
  /** Checks the issued chain against the CSR and the registration id; throws CertificateChainError. */
  verifyChain(chainBase64: readonly string[] | undefined, now?: Date): IssuedCertificate;
}

/** Loads the certificate code and prepares the CSR (new key pair, or the caller's CSR checked). */
export async function prepareCertificateRequest(
  certificate: CertificateRequestOptions,
  registrationId: string,
): Promise<PreparedCertificateRequest> {
  const module = await import('./certificate-request.js');
  return module.prepareCertificateRequest(certificate, registrationId);
}

/**
 * A new key pair and its CSR (subject CN = the registration id), for a CSR signed elsewhere
 * (`dps-mqtt csr`) or sent later. Loads the certificate code on first use.
 */
export async function createCertificateRequest(
  options: CreateCertificateRequestOptions,
): Promise<CertificateRequest> {
  const module = await import('./certificate-request.js');
  return module.createCertificateRequest(options);
}
