// Certificates for the emulator and for tests, made by the `openssl` binary (no hand-rolled ASN.1 and no
// npm dependency weighing on a device's install). Keys are EC P-256 (generated in milliseconds), except
// the issuing CA that signs devices' certificates: EC P-384 signing with SHA-384, as DPS's CAs do.
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface CertificateAndKey {
  certPem: string;
  keyPem: string;
}

export type CertificateUsage = 'server' | 'client' | 'ca';

/** The curve of a generated key: P-256 for most, P-384 for the issuing CA (as DPS's own CAs). */
export type PkiKeyCurve = 'P-256' | 'P-384';

export interface IssueCertificateOptions {
  issuer: CertificateAndKey;
  commonName: string;
  /** DNS names or IP literals (IPv4 or IPv6) for the subjectAltName extension. */
  altNames?: string[];
  usage: CertificateUsage;
  days?: number;
  /** P-256 by default. */
  curve?: PkiKeyCurve;
  /** For a CA: the basicConstraints pathLenConstraint (0 = it signs leaves only). */
  pathLength?: number;
}

const DEFAULT_CA_DAYS = 3650;
const DEFAULT_LEAF_DAYS = 825;
/** The issuing CA lives 5 years, and is reissued (by the same root) once it has less than this left. */
const ISSUING_CA_DAYS = 1825;
/** More than the longest leaf a policy allows (90 days), so no leaf outlives its issuer. */
const ISSUING_CA_RENEW_DAYS = 100;
export const ISSUING_CA_COMMON_NAME = 'dps-mqtt emulator issuing CA';

/** A self-signed root CA that can issue server, client and intermediate certificates. */
export async function createRootCa(options: {
  commonName: string;
  days?: number;
}): Promise<CertificateAndKey> {
  return generate({ commonName: options.commonName, usage: 'ca', days: options.days ?? DEFAULT_CA_DAYS });
}

/** A certificate for `commonName` signed by `issuer` (a CA made by createRootCa or an intermediate). */
export async function issueCertificate(options: IssueCertificateOptions): Promise<CertificateAndKey> {
  return generate({
    commonName: options.commonName,
    usage: options.usage,
    altNames: options.altNames,
    issuer: options.issuer,
    days: options.days ?? (options.usage === 'ca' ? DEFAULT_CA_DAYS : DEFAULT_LEAF_DAYS),
    curve: options.curve,
    pathLength: options.pathLength,
  });
}

/**
 * The CA that signs devices' operational certificates (certificate issuance): EC P-384, SHA-384, signed
 * by `root`, path length 0, 5 years but never beyond the root.
 */
export async function createIssuingCa(options: {
  root: CertificateAndKey;
  commonName?: string;
  days?: number;
}): Promise<CertificateAndKey> {
  const rootDaysLeft = Math.floor(
    (Date.parse(new X509Certificate(options.root.certPem).validTo) - Date.now()) / (24 * 3600 * 1000),
  );
  return issueCertificate({
    issuer: options.root,
    commonName: options.commonName ?? ISSUING_CA_COMMON_NAME,
    usage: 'ca',
    curve: 'P-384',
    pathLength: 0,
    days: Math.max(1, Math.min(options.days ?? ISSUING_CA_DAYS, rootDaysLeft)),
  });
}

/** A self-signed leaf certificate: an untrusted server in tests, or a device's self-signed X.509 identity. */
export async function createSelfSignedCertificate(options: {
  commonName: string;
  usage: CertificateUsage;
  altNames?: string[];
  days?: number;
}): Promise<CertificateAndKey> {
  return generate({
    commonName: options.commonName,
    usage: options.usage,
    altNames: options.altNames,
    days: options.days ?? DEFAULT_LEAF_DAYS,
  });
}

export interface EmulatorPki {
  ca: CertificateAndKey;
  server: CertificateAndKey;
  /** The CA certificate's file: what a client passes as its trusted CA (`--ca`, NODE_EXTRA_CA_CERTS). */
  caPath: string;
  /**
   * Signs devices' certificates (certificate issuance), issued by `ca`. Always set by ensureEmulatorPki;
   * a PKI brought without one gets an in-memory issuing CA when the emulator starts.
   */
  issuingCa?: CertificateAndKey | undefined;
  /** The issuing CA certificate's file, when it is on disk. */
  issuingCaPath?: string | undefined;
}

/** The server certificate always covers these; `extraNames` adds more. */
export const DEFAULT_SERVER_NAMES = ['localhost', '127.0.0.1', '::1'];

/**
 * The emulator's CA, server certificate and issuing CA in `dataDir`: generated on first start, reused
 * afterwards so a client trusts the CA once. The server certificate and the issuing CA are reissued (by
 * the same CA) when they expire soon, or are missing (a directory from an older version gains its
 * issuing CA without losing its root), or, for the server, do not cover a requested name.
 */
export async function ensureEmulatorPki(options: {
  dataDir: string;
  extraNames?: string[];
}): Promise<EmulatorPki & { issuingCa: CertificateAndKey; issuingCaPath: string }> {
  const dir = options.dataDir;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const paths = {
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    issuingCaCert: join(dir, 'issuing-ca.pem'),
    issuingCaKey: join(dir, 'issuing-ca-key.pem'),
  };
  const names = [...new Set([...DEFAULT_SERVER_NAMES, ...(options.extraNames ?? [])])];

  let ca = await readPair(paths.caCert, paths.caKey);
  let caIsNew = false;
  if (ca === undefined || expiresWithin(ca.certPem, 30)) {
    ca = await createRootCa({ commonName: 'dps-mqtt emulator root CA' });
    await writePair(paths.caCert, paths.caKey, ca);
    caIsNew = true;
  }

  let server = caIsNew ? undefined : await readPair(paths.serverCert, paths.serverKey);
  if (server === undefined || !serverCertificateFits(server.certPem, ca.certPem, names)) {
    server = await issueCertificate({
      issuer: ca,
      commonName: 'localhost',
      altNames: names,
      usage: 'server',
    });
    await writePair(paths.serverCert, paths.serverKey, server);
  }

  let issuingCa = caIsNew ? undefined : await readPair(paths.issuingCaCert, paths.issuingCaKey);
  if (issuingCa === undefined || !issuingCaFits(issuingCa, ca.certPem)) {
    issuingCa = await createIssuingCa({ root: ca });
    await writePair(paths.issuingCaCert, paths.issuingCaKey, issuingCa);
  }
  return { ca, server, caPath: paths.caCert, issuingCa, issuingCaPath: paths.issuingCaCert };
}

/** The SHA-1 and SHA-256 thumbprints of a certificate, upper-case hex without colons (the portal's form). */
export function certificateThumbprints(certPem: string): { sha1: string; sha256: string } {
  const cert = new X509Certificate(certPem);
  return {
    sha1: cert.fingerprint.replaceAll(':', '').toUpperCase(),
    sha256: cert.fingerprint256.replaceAll(':', '').toUpperCase(),
  };
}

// ---------------------------------------------------------------------------------------------------------

interface GenerateOptions {
  commonName: string;
  usage: CertificateUsage;
  altNames?: string[] | undefined;
  issuer?: CertificateAndKey | undefined;
  days: number;
  curve?: PkiKeyCurve | undefined;
  pathLength?: number | undefined;
}

async function generate(options: GenerateOptions): Promise<CertificateAndKey> {
  const work = await mkdtemp(join(tmpdir(), 'dps-mqtt-pki-'));
  try {
    const configPath = join(work, 'openssl.cnf');
    const keyPath = join(work, 'key.pem');
    const certPath = join(work, 'cert.pem');
    // Our own config file: the system's openssl.cnf may add extensions (v3_ca) that clash with ours.
    await writeFile(configPath, opensslConfig(options));
    const args = [
      'req',
      '-x509',
      '-new',
      '-config',
      configPath,
      '-extensions',
      'certificate_extensions',
      '-newkey',
      'ec',
      '-pkeyopt',
      `ec_paramgen_curve:${options.curve ?? 'P-256'}`,
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      String(options.days),
      options.curve === 'P-384' ? '-sha384' : '-sha256',
    ];
    if (options.issuer !== undefined) {
      // OpenSSL 3: `req -x509 -CA` signs the new certificate with the issuer instead of self-signing it.
      const issuerCertPath = join(work, 'issuer.pem');
      const issuerKeyPath = join(work, 'issuer-key.pem');
      await writeFile(issuerCertPath, options.issuer.certPem);
      await writeFile(issuerKeyPath, options.issuer.keyPem, { mode: 0o600 });
      args.push('-CA', issuerCertPath, '-CAkey', issuerKeyPath);
    }
    try {
      await execFileAsync('openssl', args, { timeout: 30_000 });
    } catch (error) {
      const detail =
        error instanceof Error && 'stderr' in error ? String(error.stderr).trim() : String(error);
      throw new Error(
        `could not generate a certificate for "${options.commonName}" with the openssl binary ` +
          `(OpenSSL 3 is required; install it and make sure it is on PATH): ${detail}`,
        { cause: error },
      );
    }
    const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    return { certPem, keyPem };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function opensslConfig(options: GenerateOptions): string {
  const extensions: string[] = ['subjectKeyIdentifier = hash'];
  if (options.issuer !== undefined) extensions.push('authorityKeyIdentifier = keyid:always');
  switch (options.usage) {
    case 'ca':
      extensions.push(
        options.pathLength === undefined
          ? 'basicConstraints = critical, CA:TRUE'
          : `basicConstraints = critical, CA:TRUE, pathlen:${options.pathLength}`,
        'keyUsage = critical, keyCertSign, cRLSign, digitalSignature',
      );
      break;
    case 'server':
      extensions.push(
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature, keyAgreement',
        'extendedKeyUsage = serverAuth',
      );
      break;
    case 'client':
      extensions.push(
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature, keyAgreement',
        'extendedKeyUsage = clientAuth',
      );
      break;
  }
  const altNames = options.altNames ?? [];
  const altLines = altNames.map((name, index) =>
    isIP(name) === 0 ? `DNS.${index + 1} = ${name}` : `IP.${index + 1} = ${name}`,
  );
  if (altLines.length > 0) extensions.push('subjectAltName = @alt_names');
  return [
    '[req]',
    'prompt = no',
    'distinguished_name = subject',
    '[subject]',
    `CN = ${escapeConfigValue(options.commonName)}`,
    '[certificate_extensions]',
    ...extensions,
    ...(altLines.length > 0 ? ['[alt_names]', ...altLines] : []),
    '',
  ].join('\n');
}

function escapeConfigValue(value: string): string {
  if (/[\r\n]/.test(value))
    throw new Error(`a certificate name cannot contain line breaks: ${JSON.stringify(value)}`);
  // openssl.cnf treats these as syntax (comments, variables, quoting).
  return value.replace(/[\\"'#$]/g, (character) => `\\${character}`);
}

async function readPair(certPath: string, keyPath: string): Promise<CertificateAndKey | undefined> {
  try {
    const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    new X509Certificate(certPem); // a truncated or foreign file is regenerated rather than served
    return { certPem, keyPem };
  } catch {
    return undefined;
  }
}

async function writePair(certPath: string, keyPath: string, pair: CertificateAndKey): Promise<void> {
  await writeAtomically(keyPath, pair.keyPem, 0o600);
  await writeAtomically(certPath, pair.certPem, 0o644);
}

async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(temporary, content, { mode });
  await rename(temporary, path);
}

function expiresWithin(certPem: string, days: number): boolean {
  const validTo = Date.parse(new X509Certificate(certPem).validTo);
  return Number.isNaN(validTo) || validTo - Date.now() < days * 24 * 3600 * 1000;
}

/** An issuing CA is kept while it is a P-384 CA issued by the current root and not near its end. */
function issuingCaFits(issuingCa: CertificateAndKey, caPem: string): boolean {
  try {
    const certificate = new X509Certificate(issuingCa.certPem);
    const root = new X509Certificate(caPem);
    if (!certificate.ca || !certificate.checkIssued(root) || !certificate.verify(root.publicKey))
      return false;
    if (!certificate.checkPrivateKey(createPrivateKey(issuingCa.keyPem))) return false;
    if (certificate.publicKey.asymmetricKeyDetails?.namedCurve !== 'secp384r1') return false;
    return !expiresWithin(issuingCa.certPem, ISSUING_CA_RENEW_DAYS);
  } catch {
    return false;
  }
}

function serverCertificateFits(serverPem: string, caPem: string, names: string[]): boolean {
  try {
    const server = new X509Certificate(serverPem);
    const ca = new X509Certificate(caPem);
    if (!server.checkIssued(ca) || !server.verify(ca.publicKey)) return false;
    if (expiresWithin(serverPem, 30)) return false;
    return names.every((name) =>
      isIP(name) === 0 ? server.checkHost(name) !== undefined : server.checkIP(name) !== undefined,
    );
  } catch {
    return false;
  }
}
