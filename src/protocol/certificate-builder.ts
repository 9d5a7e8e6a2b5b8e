// X.509 device certificates as DER: the TBSCertificate of a client-authentication leaf (CN = registration
// id), and the certificate around its signature. Pure building over the shared DER writer; the caller signs
// with node:crypto. Both the emulator (certificate issuance) and `dps-mqtt fleet --issue-certs` use it.
import { createHash } from 'node:crypto';
import {
  type DerNode,
  decodeBitStringBytes,
  decodeOid,
  derBitString,
  derBoolean,
  derChildren,
  derCommonNameOnly,
  derContext,
  derInteger,
  derNull,
  derOctetString,
  derOid,
  derSequence,
  derTime,
  expectTag,
  Oid,
  readDer,
  Tag,
} from './der.js';

/** What a leaf needs from the CA that signs it. */
export interface CertificateIssuerInfo {
  /** The CA's subject Name, as DER: the leaf's issuer. */
  nameDer: Uint8Array;
  /** The CA's subject key identifier: the leaf's authority key identifier. */
  authorityKeyId: Uint8Array;
}

export interface DeviceTbsOptions {
  /** A positive serial number (see serialNumberFrom). */
  serial: Uint8Array;
  /** The signature algorithm's OID, e.g. Oid.ecdsaWithSha384. */
  signatureAlgorithm: string;
  issuer: CertificateIssuerInfo;
  notBefore: Date;
  notAfter: Date;
  /** The subject CN: the registration id. */
  commonName: string;
  /** The device's public key, as SubjectPublicKeyInfo DER. */
  publicKeySpkiDer: Uint8Array;
}

/** An AlgorithmIdentifier: RSA signatures carry NULL parameters (RFC 4055), ECDSA none (RFC 5758). */
export function signatureAlgorithmIdentifier(oid: string): Uint8Array {
  return oid === Oid.sha256WithRsa || oid === Oid.sha384WithRsa
    ? derSequence(derOid(oid), derNull())
    : derSequence(derOid(oid));
}

/** 16 random bytes made a positive, 16-byte INTEGER (top bit clear, first byte never zero). */
export function serialNumberFrom(random: Uint8Array): Uint8Array {
  const serial = Uint8Array.from(random.subarray(0, 16));
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40;
  return serial;
}

/** The TBSCertificate of a v3 client-authentication leaf for `commonName`. */
export function buildDeviceTbsCertificate(options: DeviceTbsOptions): Uint8Array {
  const spki = options.publicKeySpkiDer;
  const extensions = derSequence(
    extension(Oid.keyUsage, true, derBitString(Uint8Array.of(0x80), 7)), // digitalSignature
    extension(Oid.extendedKeyUsage, false, derSequence(derOid(Oid.clientAuth))),
    extension(Oid.basicConstraints, true, derSequence()), // cA FALSE is the default, so absent in DER
    extension(Oid.subjectKeyIdentifier, false, derOctetString(keyIdentifier(spki))),
    extension(
      Oid.authorityKeyIdentifier,
      false,
      derSequence(derContext(0, options.issuer.authorityKeyId, false)),
    ),
  );
  return derSequence(
    derContext(0, derInteger(2n)), // v3
    derInteger(options.serial),
    signatureAlgorithmIdentifier(options.signatureAlgorithm),
    options.issuer.nameDer,
    derSequence(derTime(options.notBefore), derTime(options.notAfter)),
    derCommonNameOnly(options.commonName),
    spki,
    derContext(3, extensions),
  );
}

/** The Certificate: the TBSCertificate, its signature algorithm, and the signature over the TBS bytes. */
export function assembleCertificate(
  tbs: Uint8Array,
  signatureAlgorithm: string,
  signature: Uint8Array,
): Uint8Array {
  return derSequence(tbs, signatureAlgorithmIdentifier(signatureAlgorithm), derBitString(signature));
}

/** The issuer Name and key identifier of a CA certificate (DER), for the leaves it signs. */
export function certificateIssuerInfo(caCertificateDer: Uint8Array): CertificateIssuerInfo {
  const tbs = tbsFields(caCertificateDer);
  return {
    nameDer: tbs.subject.encoded,
    authorityKeyId: subjectKeyIdentifierOf(tbs.extensions) ?? keyIdentifier(tbs.subjectPublicKeyInfo.encoded),
  };
}

function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? derSequence(derOid(oid), derBoolean(true), derOctetString(value))
    : derSequence(derOid(oid), derOctetString(value));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spkiDer: Uint8Array): Buffer {
  const [, subjectPublicKey] = derChildren(expectTag(readDer(spkiDer), Tag.sequence, 'subjectPublicKeyInfo'));
  return createHash('sha1')
    .update(
      decodeBitStringBytes(
        expectTag(subjectPublicKey, Tag.bitString, 'subjectPublicKey'),
        'subjectPublicKey',
      ),
    )
    .digest();
}

/** The parts of a certificate's TBSCertificate an issuer needs. */
function tbsFields(certificateDer: Uint8Array): {
  subject: DerNode;
  subjectPublicKeyInfo: DerNode;
  extensions: DerNode | undefined;
} {
  const [tbs] = derChildren(expectTag(readDer(certificateDer), Tag.sequence, 'Certificate'));
  const fields = derChildren(expectTag(tbs, Tag.sequence, 'TBSCertificate'));
  // version [0] is present in every v3 certificate; skip it when it is there.
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = expectTag(fields[offset + 4], Tag.sequence, 'subject');
  const subjectPublicKeyInfo = expectTag(fields[offset + 5], Tag.sequence, 'subjectPublicKeyInfo');
  const extensions = fields.slice(offset + 6).find((field) => field.tag === 0xa3);
  return { subject, subjectPublicKeyInfo, extensions };
}

function subjectKeyIdentifierOf(extensions: DerNode | undefined): Buffer | undefined {
  if (extensions === undefined) return undefined;
  const [list] = derChildren(extensions);
  for (const entry of derChildren(expectTag(list, Tag.sequence, 'extensions'))) {
    const parts = derChildren(expectTag(entry, Tag.sequence, 'extension'));
    if (decodeOid(expectTag(parts[0], Tag.oid, 'extnID')) !== Oid.subjectKeyIdentifier) continue;
    const value = expectTag(parts[parts.length - 1], Tag.octetString, 'extnValue');
    return Buffer.from(expectTag(readDer(value.content), Tag.octetString, 'keyIdentifier').content);
  }
  return undefined;
}
