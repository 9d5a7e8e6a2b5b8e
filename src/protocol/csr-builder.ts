// Builds the PKCS#10 certificate signing request (RFC 2986) a device sends DPS for certificate issuance
// (protocol.md, "Certificate issuance"): subject CN={registrationId} only, no attributes, signed with the
// device's new key. DER from our small writer, the signature from node:crypto; `openssl req -verify`
// checks the result in the tests.
import { type KeyObject, sign } from 'node:crypto';
import {
  derBitString,
  derCommonNameOnly,
  derContext,
  derInteger,
  derNull,
  derOid,
  derSequence,
  Oid,
} from './der.js';

export interface BuildCsrOptions {
  /** The subject's only attribute: for DPS, the registration id. */
  commonName: string;
  /** Signs the request; EC P-256, EC P-384 or RSA (PKCS#1 v1.5). */
  privateKey: KeyObject;
  /** The key the certificate is requested for: the private key's public half. */
  publicKey: KeyObject;
}

interface SignatureScheme {
  oid: string;
  hash: 'sha256' | 'sha384';
  /** RSA's AlgorithmIdentifier carries NULL parameters; ECDSA's carries none (RFC 5758 §3.2). */
  nullParameters: boolean;
}

/** The DER encoding of a CSR for `commonName`, signed by `privateKey`. */
export function buildCsr(options: BuildCsrOptions): Buffer {
  const { commonName, privateKey, publicKey } = options;
  if (typeof commonName !== 'string' || commonName.length === 0) {
    throw new TypeError('buildCsr: commonName must be a non-empty string');
  }
  if (privateKey?.type !== 'private') throw new TypeError('buildCsr: privateKey must be a private KeyObject');
  if (publicKey?.type !== 'public') throw new TypeError('buildCsr: publicKey must be a public KeyObject');
  const scheme = signatureSchemeFor(privateKey);
  const subjectPublicKeyInfo = publicKey.export({ type: 'spki', format: 'der' });
  const certificationRequestInfo = derSequence(
    derInteger(0n), // version v1
    derCommonNameOnly(commonName),
    subjectPublicKeyInfo,
    derContext(0, new Uint8Array(0)), // attributes: none
  );
  // ECDSA signatures come out DER-encoded (Ecdsa-Sig-Value), as X.509 and PKCS#10 expect.
  const signature = sign(scheme.hash, certificationRequestInfo, privateKey);
  const algorithm = scheme.nullParameters
    ? derSequence(derOid(scheme.oid), derNull())
    : derSequence(derOid(scheme.oid));
  return Buffer.from(derSequence(certificationRequestInfo, algorithm, derBitString(signature)));
}

/** ECDSA with the hash that matches the curve's strength; SHA-256 with RSA. */
function signatureSchemeFor(privateKey: KeyObject): SignatureScheme {
  const type = privateKey.asymmetricKeyType;
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  if (type === 'ec' && curve === 'prime256v1')
    return { oid: Oid.ecdsaWithSha256, hash: 'sha256', nullParameters: false };
  if (type === 'ec' && curve === 'secp384r1')
    return { oid: Oid.ecdsaWithSha384, hash: 'sha384', nullParameters: false };
  if (type === 'rsa') return { oid: Oid.sha256WithRsa, hash: 'sha256', nullParameters: true };
  throw new TypeError(
    `buildCsr: a ${type === 'ec' ? `EC ${curve ?? 'unknown-curve'}` : (type ?? 'unknown')} key is not supported: use EC P-256, EC P-384 or RSA`,
  );
}
