// Reads a PKCS#10 certificate signing request (RFC 2986): its subject, its public key and whether
// its self-signature verifies. The emulator uses it to decide whether to sign; the client uses it to
// check that an issued certificate carries the key of the CSR the caller brought.
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import {
  DerError,
  type DerNode,
  decodeBitStringBytes,
  decodeOid,
  decodeString,
  derChildren,
  expectTag,
  Oid,
  readDer,
  Tag,
} from './der.js';

/** A key type as users name it; `rsa-<bits>` for RSA keys of any size. */
export type CsrKeyType = 'ec-p256' | 'ec-p384' | `rsa-${number}` | `unsupported (${string})`;

export interface ParsedCsr {
  /** Every CN attribute of the subject, in order (DPS requires exactly one, equal to the registration id). */
  commonNames: string[];
  /** How many attributes the subject has in all. */
  subjectAttributeCount: number;
  /** The requested public key, as a KeyObject and as SubjectPublicKeyInfo DER. */
  publicKey: KeyObject;
  publicKeySpkiDer: Buffer;
  keyType: CsrKeyType;
  /** The signature algorithm's OID (dotted). */
  signatureAlgorithm: string;
  /** The self-signature verifies with the request's own public key. */
  signatureValid: boolean;
}

/** Why bytes are not a usable PKCS#10 request; `message` is one line for people. */
export class CsrFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsrFormatError';
  }
}

const HASH_BY_SIGNATURE_OID: Record<string, string> = {
  [Oid.ecdsaWithSha256]: 'sha256',
  [Oid.ecdsaWithSha384]: 'sha384',
  [Oid.sha256WithRsa]: 'sha256',
  [Oid.sha384WithRsa]: 'sha384',
};

/** Parses DER bytes; throws CsrFormatError when they are not a PKCS#10 request. */
export function readCsr(der: Uint8Array): ParsedCsr {
  try {
    return parse(der);
  } catch (error) {
    if (error instanceof CsrFormatError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new CsrFormatError(`not a DER PKCS#10 certificate signing request (${reason})`);
  }
}

function parse(der: Uint8Array): ParsedCsr {
  const outer = derChildren(expectTag(readDer(der), Tag.sequence, 'CertificationRequest'));
  if (outer.length !== 3) throw new DerError('CertificationRequest must have 3 parts');
  const [info, algorithm, signatureNode] = outer as [DerNode, DerNode, DerNode];
  const infoParts = derChildren(expectTag(info, Tag.sequence, 'CertificationRequestInfo'));
  const [version, subject, spki] = infoParts;
  const versionNode = expectTag(version, Tag.integer, 'version');
  if (versionNode.content.length !== 1 || versionNode.content[0] !== 0) {
    throw new DerError('version must be 0 (v1)');
  }
  const attributes = subjectAttributes(expectTag(subject, Tag.sequence, 'subject'));
  const publicKeySpkiDer = Buffer.from(expectTag(spki, Tag.sequence, 'subjectPublicKeyInfo').encoded);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: publicKeySpkiDer, format: 'der', type: 'spki' });
  } catch (error) {
    throw new CsrFormatError(`the public key could not be read (${(error as Error).message})`);
  }
  const algorithmParts = derChildren(expectTag(algorithm, Tag.sequence, 'signatureAlgorithm'));
  const signatureAlgorithm = decodeOid(expectTag(algorithmParts[0], Tag.oid, 'signature algorithm'));
  const signature = decodeBitStringBytes(signatureNode, 'signature');
  const hash = HASH_BY_SIGNATURE_OID[signatureAlgorithm];
  let signatureValid = false;
  if (hash !== undefined) {
    try {
      signatureValid = verify(hash, info.encoded, publicKey, signature);
    } catch {
      signatureValid = false; // a signature of the wrong shape for the key
    }
  }
  return {
    commonNames: attributes.filter((attribute) => attribute.oid === Oid.commonName).map((a) => a.value),
    subjectAttributeCount: attributes.length,
    publicKey,
    publicKeySpkiDer,
    keyType: keyTypeOf(publicKey),
    signatureAlgorithm,
    signatureValid,
  };
}

function subjectAttributes(name: DerNode): { oid: string; value: string }[] {
  return derChildren(name).flatMap((rdn) =>
    derChildren(expectTag(rdn, Tag.set, 'subject RDN')).map((pair) => {
      const [oid, value] = derChildren(expectTag(pair, Tag.sequence, 'subject attribute'));
      const attributeOid = decodeOid(expectTag(oid, Tag.oid, 'subject attribute type'));
      if (value === undefined) throw new DerError('subject attribute value is missing');
      const text = attributeOid === Oid.commonName ? decodeString(value, 'subject CN') : '';
      return { oid: attributeOid, value: text };
    }),
  );
}

export function keyTypeOf(key: KeyObject): CsrKeyType {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve === 'prime256v1') return 'ec-p256';
    if (details.namedCurve === 'secp384r1') return 'ec-p384';
    return `unsupported (EC ${details.namedCurve ?? 'unknown curve'})`;
  }
  if (key.asymmetricKeyType === 'rsa') return `rsa-${details.modulusLength ?? 0}`;
  return `unsupported (${key.asymmetricKeyType ?? 'unknown'})`;
}

/** DER bytes from what a caller may hold: base64 DER, PEM (`CERTIFICATE REQUEST`) or raw DER bytes. */
export function csrDerFrom(value: string | Uint8Array): Buffer {
  if (typeof value !== 'string') return Buffer.from(value);
  const pem =
    /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (?:NEW )?CERTIFICATE REQUEST-----/.exec(
      value,
    );
  const body = (pem ? pem[1] : value) ?? '';
  const compact = body.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length === 0) {
    throw new CsrFormatError('expected a PEM "CERTIFICATE REQUEST" or base64 DER');
  }
  return Buffer.from(compact, 'base64');
}
