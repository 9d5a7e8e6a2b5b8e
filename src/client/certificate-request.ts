// Certificate issuance on the device (protocol.md, "Certificate issuance"): a new key pair and its CSR,
// or the caller's CSR checked, and the checks of the chain DPS issues before register() resolves with
// it. Loaded only through `await import()` (see certificate-options.ts), so plain registrations never
// load it.
import { generateKeyPair, type KeyObject, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import { buildCsr } from '../protocol/csr-builder.js';
import { CsrFormatError, csrDerFrom, readCsr } from '../protocol/csr-reader.js';
import {
  type DerNode,
  decodeOid,
  decodeString,
  derChildren,
  expectTag,
  Oid,
  readDer,
  Tag,
} from '../protocol/der.js';
import { CertificateChainError, InvalidInputError } from '../protocol/errors.js';
import { validateRegistrationId } from '../protocol/validate.js';
import {
  DEFAULT_CERTIFICATE_KEY_TYPE,
  invalidKeyTypeMessage,
  isCertificateKeyType,
} from './certificate-key-types.js';
import type { PreparedCertificateRequest } from './certificate-options.js';
import type {
  CertificateKeyType,
  CertificateRequest,
  CertificateRequestOptions,
  CreateCertificateRequestOptions,
  IssuedCertificate,
} from './types.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Chains longer than this are not what DPS sends (it sends 3), and each certificate costs a verify. */
const MAX_CHAIN_LENGTH = 10;
/** A device clock a little behind the service's must not reject a certificate issued a moment ago. */
const NOT_BEFORE_SKEW_MS = 5 * 60_000;
const STRICT_BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** A new key pair (node:crypto) and a CSR with subject CN = the registration id. */
export async function createCertificateRequest(
  options: CreateCertificateRequestOptions,
): Promise<CertificateRequest> {
  if (options === null || typeof options !== 'object') {
    throw new InvalidInputError('options', 'createCertificateRequest() needs { registrationId, keyType }');
  }
  const registrationId = validateRegistrationId(options.registrationId);
  const keyType = options.keyType ?? DEFAULT_CERTIFICATE_KEY_TYPE;
  if (!isCertificateKeyType(keyType))
    throw new InvalidInputError('keyType', invalidKeyTypeMessage('keyType', keyType));
  const { privateKey, publicKey } = await generateKeys(keyType);
  const csrDer = buildCsr({ commonName: registrationId, privateKey, publicKey });
  const csrBase64 = csrDer.toString('base64');
  return {
    csrDer,
    csrBase64,
    csrPem: toPem('CERTIFICATE REQUEST', csrBase64),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    keyType,
  };
}

function generateKeys(keyType: CertificateKeyType): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  if (keyType === 'rsa-2048')
    return generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  return generateKeyPairAsync('ec', { namedCurve: keyType === 'ec-p256' ? 'P-256' : 'P-384' });
}

/** The CSR register() sends, and the check of the chain that comes back for it. */
export async function prepareCertificateRequest(
  certificate: CertificateRequestOptions,
  registrationId: string,
): Promise<PreparedCertificateRequest> {
  let csrDer: Buffer;
  let privateKeyPem: string | undefined;
  if ('csr' in certificate && certificate.csr !== undefined) {
    csrDer = checkCallerCsr(certificate.csr, registrationId);
  } else {
    const keyType = 'keyType' in certificate ? certificate.keyType : undefined;
    const request = await createCertificateRequest(
      keyType === undefined ? { registrationId } : { registrationId, keyType },
    );
    csrDer = request.csrDer;
    privateKeyPem = request.privateKeyPem;
  }
  const expectedPublicKeySpkiDer = readCsr(csrDer).publicKeySpkiDer;
  return {
    csrBase64: csrDer.toString('base64'),
    privateKeyPem,
    verifyChain(chainBase64, now = new Date()) {
      if (chainBase64 === undefined) {
        throw new CertificateChainError(
          'missing-chain',
          'DPS assigned the device but returned no issuedCertificateChain for the CSR: the service or the enrollment may not issue certificates',
        );
      }
      const parts = verifyIssuedChain({ chainBase64, registrationId, expectedPublicKeySpkiDer, now });
      return privateKeyPem === undefined ? parts : { ...parts, privateKeyPem };
    },
  };
}

/** The caller's CSR as DER, once it is known to be a PKCS#10 request for this registration id. */
function checkCallerCsr(csr: string | Uint8Array, registrationId: string): Buffer {
  const field = 'certificate.csr';
  let der: Buffer;
  let parsed: ReturnType<typeof readCsr>;
  try {
    der = csrDerFrom(csr);
    parsed = readCsr(der);
  } catch (error) {
    if (!(error instanceof CsrFormatError)) throw error;
    throw new InvalidInputError(field, `certificate.csr is not usable: ${error.message}`);
  }
  if (parsed.commonNames.length !== 1 || parsed.commonNames[0] !== registrationId) {
    const found =
      parsed.commonNames.length === 0
        ? 'has no CN'
        : `has CN ${parsed.commonNames.map((name) => JSON.stringify(name)).join(', ')}`;
    throw new InvalidInputError(
      field,
      `certificate.csr ${found}: DPS issues certificates only for CN=${registrationId} (the registration id)`,
    );
  }
  if (!parsed.signatureValid) {
    throw new InvalidInputError(
      field,
      `certificate.csr's self-signature does not verify with its own key (algorithm ${parsed.signatureAlgorithm}): sign it with ECDSA or RSA PKCS#1 v1.5 over SHA-256 or SHA-384`,
    );
  }
  return der;
}

export interface VerifyIssuedChainOptions {
  /** `registrationState.issuedCertificateChain`: base64 DER, leaf first. */
  chainBase64: readonly string[];
  registrationId: string;
  /** The CSR's SubjectPublicKeyInfo (DER): the leaf must carry this key. */
  expectedPublicKeySpkiDer: Uint8Array;
  /** Default: the current time. */
  now?: Date;
}

/**
 * The issued chain, checked in this order: base64 DER certificates (chain-format), the leaf's key is
 * the CSR's (leaf-public-key), the leaf's CN is the registration id (leaf-common-name), each certificate
 * is issued and signed by the next (chain-issuer), the leaf is valid now (leaf-validity). Throws a
 * CertificateChainError naming the failed check, with the service's raw chain attached.
 */
export function verifyIssuedChain(
  options: VerifyIssuedChainOptions,
): Omit<IssuedCertificate, 'privateKeyPem'> {
  const { registrationId, expectedPublicKeySpkiDer } = options;
  const now = options.now ?? new Date();
  const raw: string[] = Array.isArray(options.chainBase64)
    ? options.chainBase64.map((element) => (typeof element === 'string' ? element : String(element)))
    : [];
  const fail = (check: CertificateChainError['check'], message: string): never => {
    throw new CertificateChainError(
      check,
      `the issued certificate chain fails the ${check} check: ${message}`,
      raw,
    );
  };

  if (!Array.isArray(options.chainBase64) || raw.length === 0) fail('chain-format', 'the chain is empty');
  if (raw.length > MAX_CHAIN_LENGTH)
    fail('chain-format', `the chain has ${raw.length} certificates, more than ${MAX_CHAIN_LENGTH}`);
  const certificates = options.chainBase64.map((element, index) => {
    const position = `certificate ${index + 1} of ${raw.length}`;
    if (typeof element !== 'string' || !STRICT_BASE64.test(element))
      return fail('chain-format', `${position} is not base64`);
    const der = Buffer.from(element, 'base64');
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(der);
    } catch {
      return fail('chain-format', `${position} is not a DER X.509 certificate`);
    }
    // X509Certificate also reads PEM and ignores trailing bytes: only exact DER is the service's form.
    if (!certificate.raw.equals(der))
      fail('chain-format', `${position} is not exactly one DER X.509 certificate`);
    return certificate;
  });
  const leaf = certificates[0] as X509Certificate;
  let leafFields: LeafFields;
  try {
    leafFields = readLeafFields(leaf.raw);
  } catch (error) {
    return fail('chain-format', `the leaf certificate could not be read (${(error as Error).message})`);
  }

  const leafKey = leaf.publicKey.export({ type: 'spki', format: 'der' });
  if (!leafKey.equals(Buffer.from(expectedPublicKeySpkiDer))) {
    fail('leaf-public-key', "the leaf certificate's public key is not the key of the CSR that was sent");
  }

  const { commonNames } = leafFields;
  if (commonNames.length !== 1 || commonNames[0] !== registrationId) {
    const found =
      commonNames.length === 0 ? 'no CN' : `CN ${commonNames.map((name) => JSON.stringify(name)).join(', ')}`;
    fail(
      'leaf-common-name',
      `the leaf certificate has ${found}, not the registration id ${JSON.stringify(registrationId)}`,
    );
  }

  for (let index = 0; index + 1 < certificates.length; index += 1) {
    const subject = certificates[index] as X509Certificate;
    const issuer = certificates[index + 1] as X509Certificate;
    let signed = false;
    try {
      signed = subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
    } catch {
      signed = false; // a key the signature algorithm cannot use
    }
    if (!signed) {
      fail(
        'chain-issuer',
        `certificate ${index + 1} (${oneLine(subject.subject)}) is not issued and signed by certificate ${index + 2} (${oneLine(issuer.subject)})`,
      );
    }
  }

  const { notBefore, notAfter } = leafFields;
  if (now.getTime() + NOT_BEFORE_SKEW_MS < notBefore.getTime()) {
    fail(
      'leaf-validity',
      `the leaf certificate is not valid before ${notBefore.toISOString()} (now ${now.toISOString()})`,
    );
  }
  if (now.getTime() > notAfter.getTime()) {
    fail(
      'leaf-validity',
      `the leaf certificate expired at ${notAfter.toISOString()} (now ${now.toISOString()})`,
    );
  }

  return {
    chainPem: certificates.map((certificate) => certificate.toString()).join(''),
    notBefore,
    notAfter,
    serialNumber: leaf.serialNumber.toUpperCase(),
  };
}

interface LeafFields {
  commonNames: string[];
  notBefore: Date;
  notAfter: Date;
}

/** The subject CNs and the validity of a certificate, read from its DER (RFC 5280 §4.1). */
function readLeafFields(der: Buffer): LeafFields {
  const [tbs] = derChildren(expectTag(readDer(der), Tag.sequence, 'Certificate'));
  const fields = derChildren(expectTag(tbs, Tag.sequence, 'TBSCertificate'));
  const start = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] EXPLICIT version, absent for v1
  const validity = derChildren(expectTag(fields[start + 3], Tag.sequence, 'validity'));
  const subject = expectTag(fields[start + 4], Tag.sequence, 'subject');
  const commonNames = derChildren(subject).flatMap((rdn) =>
    derChildren(expectTag(rdn, Tag.set, 'subject RDN')).flatMap((pair) => {
      const [type, value] = derChildren(expectTag(pair, Tag.sequence, 'subject attribute'));
      if (decodeOid(expectTag(type, Tag.oid, 'subject attribute type')) !== Oid.commonName) return [];
      if (value === undefined) throw new Error('subject CN has no value');
      return [decodeString(value, 'subject CN')];
    }),
  );
  return {
    commonNames,
    notBefore: readTime(validity[0], 'notBefore'),
    notAfter: readTime(validity[1], 'notAfter'),
  };
}

function readTime(node: DerNode | undefined, what: string): Date {
  if (node === undefined) throw new Error(`${what} is missing`);
  const text = node.content.toString('latin1');
  const utc = node.tag === Tag.utcTime ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  const general =
    node.tag === Tag.generalizedTime ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  const match = utc ?? general;
  if (!match) throw new Error(`${what} is not a UTCTime or GeneralizedTime in UTC`);
  const [, yearText = '', month, day, hour, minute, second] = match;
  // UTCTime years 50-99 are 19xx, 00-49 are 20xx (RFC 5280 §4.1.2.5.1).
  const year = utc ? (Number(yearText) >= 50 ? 1900 : 2000) + Number(yearText) : Number(yearText);
  const date = new Date(
    Date.UTC(year, Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second)),
  );
  if (Number.isNaN(date.getTime())) throw new Error(`${what} is not a valid time`);
  return date;
}

function oneLine(distinguishedName: string): string {
  const text = distinguishedName.replace(/\n/g, ', ');
  return text.length > 120 ? `${text.slice(0, 120)}...` : text;
}

function toPem(label: string, base64: string): string {
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
