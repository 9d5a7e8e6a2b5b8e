// Certificates for the emulator and for tests, made by the `openssl` binary (no hand-rolled ASN.1 and no
// npm dependency weighing on a device's install). Keys are EC P-256: generated in milliseconds.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
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

export interface IssueCertificateOptions {
  issuer: CertificateAndKey;
  commonName: string;
  /** DNS names or IP literals (IPv4 or IPv6) for the subjectAltName extension. */
  altNames?: string[];
  usage: CertificateUsage;
  days?: number;
}

const DEFAULT_CA_DAYS = 3650;
const DEFAULT_LEAF_DAYS = 825;

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
}

/** The server certificate always covers these; `extraNames` adds more. */
export const DEFAULT_SERVER_NAMES = ['localhost', '127.0.0.1', '::1'];

/**
 * The emulator's CA and server certificate in `dataDir`: generated on first start, reused afterwards so a
 * client trusts the CA once. The server certificate alone is reissued (by the same CA) when it expires
 * soon or does not cover a requested name.
 */
export async function ensureEmulatorPki(options: {
  dataDir: string;
  extraNames?: string[];
}): Promise<EmulatorPki> {
  const dir = options.dataDir;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const paths = {
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
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
  return { ca, server, caPath: paths.caCert };
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
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      String(options.days),
      '-sha256',
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
        'basicConstraints = critical, CA:TRUE',
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
