// Certificate issuance (api-version 2025-07-01-preview and later): checks a device's PKCS#10 request
// against its enrollment's policy and signs its operational certificate with the issuing CA. Signing is
// node:crypto over a TBSCertificate built with the shared DER writer: no process spawned per device.
import { createPrivateKey, type KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto';
import {
  assembleCertificate,
  buildDeviceTbsCertificate,
  type CertificateIssuerInfo,
  certificateIssuerInfo,
  serialNumberFrom,
} from '../../protocol/certificate-builder.js';
import { CsrFormatError, type ParsedCsr, readCsr } from '../../protocol/csr-reader.js';
import { Oid } from '../../protocol/der.js';
import {
  type CertificateIssuancePolicy,
  type IssuanceKeyType,
  MIN_RSA_BITS,
} from '../enrollments/certificate-policy.js';
import type { CertificateAndKey } from '../pki/pki.js';

/** The first api-version that carries `csr` (dates compare as text). */
export const CERTIFICATE_ISSUANCE_API_VERSION = '2025-07-01-preview';

/**
 * The emulator's own error codes for refused CSRs (DPS documents none): a 400 status followed by a
 * sequence number, the shape of the service's codes. Documented in docs/emulator.md.
 */
export const CSR_ERROR_CODES = {
  /** `csr` is not base64 of a DER PKCS#10 request. */
  malformed: 400050,
  /** The request's self-signature does not verify with its own public key. */
  badSignature: 400051,
  /** The subject is not CN={registrationId}. */
  commonNameMismatch: 400052,
  /** The key's type or size is not one the enrollment accepts. */
  keyTypeRefused: 400053,
  /** `csr` sent with an api-version older than 2025-07-01-preview. */
  apiVersionTooOld: 400054,
} as const;

export interface CsrRefusal {
  ok: false;
  errorCode: number;
  message: string;
}

/** A request that passed every check: what signing needs from it. */
export interface AcceptedCsr {
  ok: true;
  publicKeySpkiDer: Buffer;
  keyType: ParsedCsr['keyType'];
}

export interface IssuedChain {
  /** Base64 DER, leaf first: leaf, issuing CA, root. */
  chain: string[];
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

/** Backdated so a device whose clock runs a little behind accepts its certificate at once. */
const CLOCK_SKEW_MS = 60_000;
const DAY_MS = 24 * 3600 * 1000;
const KNOWN_SIGNATURE_ALGORITHMS = new Map<string, string>([
  [Oid.ecdsaWithSha256, 'ecdsa-with-SHA256'],
  [Oid.ecdsaWithSha384, 'ecdsa-with-SHA384'],
  [Oid.sha256WithRsa, 'sha256WithRSAEncryption'],
  [Oid.sha384WithRsa, 'sha384WithRSAEncryption'],
]);

/** True when `apiVersion` (YYYY-MM-DD[-preview]) is 2025-07-01 or later. */
export function supportsCertificateIssuance(apiVersion: string): boolean {
  return apiVersion.slice(0, 10) >= CERTIFICATE_ISSUANCE_API_VERSION.slice(0, 10);
}

/** How people name a policy's key types in a message: `EC P-256 (ec-p256), RSA >= 2048 bits (rsa)`. */
export function describeKeyTypes(keyTypes: readonly IssuanceKeyType[]): string {
  const names = keyTypes.map((keyType) =>
    keyType === 'ec-p256'
      ? 'EC P-256 ("ec-p256")'
      : keyType === 'ec-p384'
        ? 'EC P-384 ("ec-p384")'
        : `RSA of at least ${MIN_RSA_BITS} bits ("rsa")`,
  );
  return names.length === 1 ? `${names[0]} only` : names.join(', ');
}

/** The key type of a request as a message shows it: `EC P-256`, `RSA 1024 bits`, `Ed25519`. */
function describeKeyType(keyType: string): string {
  if (keyType === 'ec-p256') return 'EC P-256';
  if (keyType === 'ec-p384') return 'EC P-384';
  const rsa = /^rsa-(\d+)$/.exec(keyType);
  if (rsa) return `RSA ${rsa[1]} bits`;
  const unsupported = /^unsupported \((.*)\)$/.exec(keyType);
  return unsupported?.[1] ?? keyType;
}

function keyTypeAccepted(keyType: string, accepted: readonly IssuanceKeyType[]): boolean {
  if (keyType === 'ec-p256' || keyType === 'ec-p384') return accepted.includes(keyType);
  const rsa = /^rsa-(\d+)$/.exec(keyType);
  return rsa !== null && accepted.includes('rsa') && Number(rsa[1]) >= MIN_RSA_BITS;
}

/**
 * Checks the register body's `csr` for `registrationId`, in the order a device can act on: api-version,
 * encoding, key type, self-signature, subject. The message says exactly what is wrong.
 */
export function checkCsr(options: {
  csr: unknown;
  registrationId: string;
  apiVersion: string;
  policy: CertificateIssuancePolicy;
}): AcceptedCsr | CsrRefusal {
  const { csr, registrationId, apiVersion, policy } = options;
  if (!supportsCertificateIssuance(apiVersion)) {
    return refuse(
      CSR_ERROR_CODES.apiVersionTooOld,
      `csr needs api-version ${CERTIFICATE_ISSUANCE_API_VERSION} or later; this connection uses ${apiVersion} ` +
        '(set it in the CONNECT user name)',
    );
  }
  if (typeof csr !== 'string') {
    return refuse(
      CSR_ERROR_CODES.malformed,
      `csr must be a string (a DER PKCS#10 request, base64 on one line), not ${csr === null ? 'null' : typeof csr}`,
    );
  }
  if (csr.includes('-----BEGIN')) {
    return refuse(
      CSR_ERROR_CODES.malformed,
      'csr is PEM: send the DER bytes base64-encoded on one line, without the BEGIN/END lines',
    );
  }
  if (csr.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(csr) || csr.length % 4 === 1) {
    return refuse(
      CSR_ERROR_CODES.malformed,
      'csr is not base64 (standard alphabet A-Z a-z 0-9 + /, one line, no spaces): send the DER PKCS#10 request base64-encoded',
    );
  }
  let parsed: ParsedCsr;
  try {
    parsed = readCsr(Buffer.from(csr, 'base64'));
  } catch (error) {
    const reason = error instanceof CsrFormatError ? error.message : String(error);
    return refuse(CSR_ERROR_CODES.malformed, `csr is base64 but not a DER PKCS#10 request: ${reason}`);
  }
  if (!keyTypeAccepted(parsed.keyType, policy.keyTypes)) {
    return refuse(
      CSR_ERROR_CODES.keyTypeRefused,
      `the csr's key is ${describeKeyType(parsed.keyType)}: this enrollment accepts ${describeKeyTypes(policy.keyTypes)}`,
    );
  }
  if (!parsed.signatureValid) {
    const algorithm = KNOWN_SIGNATURE_ALGORITHMS.get(parsed.signatureAlgorithm);
    return refuse(
      CSR_ERROR_CODES.badSignature,
      algorithm === undefined
        ? `the csr's signature algorithm ${parsed.signatureAlgorithm} is not supported: sign it with ` +
            `${[...KNOWN_SIGNATURE_ALGORITHMS.values()].join(', ')}`
        : `the csr's self-signature (${algorithm}) does not verify with its own public key: ` +
            'the request was altered, or signed with another key',
    );
  }
  if (parsed.commonNames.length !== 1 || parsed.commonNames[0] !== registrationId) {
    const found =
      parsed.commonNames.length === 0
        ? 'has no CN'
        : parsed.commonNames.length === 1
          ? `has CN "${parsed.commonNames[0]}"`
          : `has ${parsed.commonNames.length} CNs (${parsed.commonNames.map((name) => `"${name}"`).join(', ')})`;
    return refuse(
      CSR_ERROR_CODES.commonNameMismatch,
      `the csr's subject ${found}, but it must be the registration id: CN="${registrationId}"`,
    );
  }
  return { ok: true, publicKeySpkiDer: parsed.publicKeySpkiDer, keyType: parsed.keyType };
}

/** Signs device certificates with the issuing CA; built once, cheap per certificate. */
export class CertificateIssuer {
  private readonly issuingKey: KeyObject;
  private readonly issuer: CertificateIssuerInfo;
  private readonly issuingCaNotBeforeMs: number;
  private readonly issuingCaNotAfterMs: number;
  private readonly chainTail: string[];

  constructor(issuingCa: CertificateAndKey, rootCertPem: string) {
    const issuing = new X509Certificate(issuingCa.certPem);
    const root = new X509Certificate(rootCertPem);
    this.issuingKey = createPrivateKey(issuingCa.keyPem);
    if (this.issuingKey.asymmetricKeyType !== 'ec') {
      // Leaves are labelled ecdsa-with-SHA384, as DPS's are.
      throw new Error('the issuing CA key must be an EC key (P-384, as createIssuingCa makes)');
    }
    if (!issuing.checkPrivateKey(this.issuingKey)) {
      throw new Error('the issuing CA key does not belong to the issuing CA certificate');
    }
    if (!issuing.checkIssued(root) || !issuing.verify(root.publicKey)) {
      throw new Error('the issuing CA certificate is not issued by the emulator root CA');
    }
    this.issuer = certificateIssuerInfo(issuing.raw);
    this.issuingCaNotBeforeMs = Date.parse(issuing.validFrom);
    this.issuingCaNotAfterMs = Date.parse(issuing.validTo);
    this.chainTail = [issuing.raw.toString('base64'), root.raw.toString('base64')];
  }

  /** A leaf for `registrationId` with the CSR's key, valid `validityDays` from a minute ago. */
  issue(options: {
    registrationId: string;
    publicKeySpkiDer: Uint8Array;
    validityDays: number;
    now?: Date;
  }): IssuedChain {
    const nowMs = Math.floor((options.now ?? new Date()).getTime() / 1000) * 1000;
    // Never before the issuer's own start: some validators check nesting, not just the current time.
    const notBefore = new Date(Math.max(nowMs - CLOCK_SKEW_MS, this.issuingCaNotBeforeMs));
    // No leaf outlives its issuer (the PKI reissues the issuing CA long before this matters).
    const notAfter = new Date(
      Math.min(notBefore.getTime() + options.validityDays * DAY_MS, this.issuingCaNotAfterMs),
    );
    const serial = serialNumberFrom(randomBytes(16));
    // Leaves are labelled ecdsa-with-SHA384, as DPS's are.
    const tbs = buildDeviceTbsCertificate({
      serial,
      signatureAlgorithm: Oid.ecdsaWithSha384,
      issuer: this.issuer,
      notBefore,
      notAfter,
      commonName: options.registrationId,
      publicKeySpkiDer: options.publicKeySpkiDer,
    });
    const signature = sign('sha384', tbs, { key: this.issuingKey, dsaEncoding: 'der' });
    const leaf = assembleCertificate(tbs, Oid.ecdsaWithSha384, signature);
    return {
      chain: [Buffer.from(leaf).toString('base64'), ...this.chainTail],
      serialNumber: Buffer.from(serial).toString('hex').toUpperCase(),
      notBefore,
      notAfter,
    };
  }
}

function refuse(errorCode: number, message: string): CsrRefusal {
  return { ok: false, errorCode, message };
}
