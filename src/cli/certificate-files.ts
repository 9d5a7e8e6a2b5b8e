// The directory `dps-mqtt register --certificate --out DIR` writes: the device key, the issued chain and
// the registration result, replaced as one set, and read back to decide whether to renew.
//
// Layout (docs/cli.md, "Certificate directory"):
//   DIR/device.key         -> .current/device.key          (mode 0600; absent with --csr)
//   DIR/device-chain.pem   -> .current/device-chain.pem    (leaf first)
//   DIR/registration.json  -> .current/registration.json   (the result, no secrets)
//   DIR/.current           -> .generation-<pid>-<time>-<random>   (a symbolic link, swapped by rename)
//   DIR/.generation-.../   (mode 0700) the real files of one registration
//
// Why links: the three files must change together, or a crash could leave a new key beside the old
// chain. POSIX rename() replaces one name atomically, and a non-empty directory cannot be renamed over
// another, so the set is switched through one name: each registration writes a fresh generation
// directory (fsync'd), then one rename() points `.current` at it. Before that rename every name resolves
// to the old set, after it to the new one; at no instant to a mix. The file names are stable links, so
// DIR stays a real directory whose other contents are left alone, and readers open the usual paths.
// (This is how Kubernetes updates mounted secrets.) On Windows, creating links needs Developer Mode.
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import {
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  unlink,
} from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RegistrationResult, TransportKind } from '../client/types.js';
import { keyTypeOf } from '../protocol/csr-reader.js';

export const CERTIFICATE_FILES = {
  key: 'device.key',
  chain: 'device-chain.pem',
  registration: 'registration.json',
} as const;

type FileRole = keyof typeof CERTIFICATE_FILES;

const CURRENT = '.current';
const GENERATION_PREFIX = '.generation-';
const LINK_PREFIX = '.link-';
/** The `format` of registration.json, so a later version can read (or refuse) an older one. */
export const REGISTRATION_FILE_FORMAT = 'dps-mqtt/certificate-registration@1';

/** Absolute paths of the files, as printed and put in the --json output. */
export interface CertificateFilePaths {
  directory: string;
  /** Absent when the caller brought its own CSR (the key never was ours to write). */
  key?: string;
  chain: string;
  registration: string;
}

export function certificateFilePaths(directory: string, withKey: boolean): CertificateFilePaths {
  const absolute = resolve(directory);
  const paths: CertificateFilePaths = {
    directory: absolute,
    chain: join(absolute, CERTIFICATE_FILES.chain),
    registration: join(absolute, CERTIFICATE_FILES.registration),
  };
  if (withKey) paths.key = join(absolute, CERTIFICATE_FILES.key);
  return paths;
}

/**
 * The certificate directory cannot be used: its files are corrupt, belong to another registration, were
 * not written by dps-mqtt, or cannot be read or written. Nothing in it was changed (exit code 7).
 */
export class CertificateDirectoryError extends Error {
  readonly code = 'ERR_CERTIFICATE_DIRECTORY';
  /** `input` when reading DIR before registering, `output` when writing the new files. */
  readonly phase: 'input' | 'output';
  readonly hint: string | undefined;
  readonly directory: string;
  constructor(directory: string, message: string, options: { phase: 'input' | 'output'; hint?: string }) {
    super(message);
    this.name = 'CertificateDirectoryError';
    this.directory = directory;
    this.phase = options.phase;
    this.hint = options.hint;
  }
}

const REPLACE_HINT =
  'use one --out directory per device, move the files away, or pass --force to replace them';

/** What registration.json holds (written by registrationRecord()); other fields are the registration result. */
export interface StoredRegistration {
  format: string;
  idScope: string;
  registrationId: string;
  deviceId: string;
  assignedHub: string;
  certificate: {
    notBefore: string;
    notAfter: string;
    serialNumber: string;
    keyType: string;
  };
  [field: string]: unknown;
}

export interface RegistrationRecordContext {
  idScope: string;
  endpoint: string;
  transport: TransportKind;
  /** `HostName=...;DeviceId=...;x509=true`: how the device connects to its hub with the certificate. */
  connectionString: string;
  now?: Date;
}

/**
 * registration.json: the registration result with no secret in it. The private key is left out (it is in
 * device.key), and so is the raw issued chain in registrationState (it is in device-chain.pem).
 */
export function registrationRecord(
  result: RegistrationResult,
  context: RegistrationRecordContext,
): StoredRegistration {
  const issued = result.issuedCertificate;
  if (issued === undefined) throw new Error('registrationRecord() needs a result with issuedCertificate');
  const { issuedCertificate: _issued, registrationState, ...rest } = result;
  const { issuedCertificateChain: _chain, ...state } = registrationState as typeof registrationState & {
    issuedCertificateChain?: unknown;
  };
  const chain = splitPemCertificates(issued.chainPem);
  const leaf = chain[0] === undefined ? undefined : new X509Certificate(chain[0]);
  return {
    format: REGISTRATION_FILE_FORMAT,
    idScope: context.idScope,
    endpoint: context.endpoint,
    transport: context.transport,
    registeredAt: (context.now ?? new Date()).toISOString(),
    ...rest,
    connectionString: context.connectionString,
    certificate: {
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      serialNumber: issued.serialNumber,
      keyType: leaf === undefined ? 'unknown' : keyTypeOf(leaf.publicKey),
      subject: leaf?.subject,
      issuer: leaf?.issuer,
      chainLength: chain.length,
    },
    registrationState: state,
  } as StoredRegistration;
}

/** The PEM blocks of a chain file, in order. */
export function splitPemCertificates(pem: string): string[] {
  return (
    pem
      .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)
      ?.map((block) => `${block}\n`) ?? []
  );
}

/** What DIR holds, once it is known to be consistent and to belong to the registration asked for. */
export interface StoredCertificate {
  registration: StoredRegistration;
  notBefore: Date;
  notAfter: Date;
  serialNumber: string;
  /** The leaf's key type: `ec-p384`, `ec-p256`, `rsa-2048`, ... */
  keyType: string;
  /** The leaf's public key (SPKI DER), to compare with a CSR's. */
  leafPublicKeySpki: Buffer;
  hasKey: boolean;
  paths: CertificateFilePaths;
}

export interface ReadCertificateDirectoryOptions {
  directory: string;
  idScope: string;
  /** The registration the command is for; undefined when it is not known before registering. */
  registrationId: string | undefined;
  /** True unless the caller brings its own CSR: then DIR must hold device.key. */
  expectKey: boolean;
}

/**
 * Reads and checks DIR: undefined when there is nothing there yet (no directory, or none of the three
 * files). Throws CertificateDirectoryError when the files are incomplete, unparsable, inconsistent
 * (key and leaf do not match, chain not linked), for another ID scope or registration id, or not
 * dps-mqtt's links: such a directory is reported, never silently overwritten.
 */
export async function readCertificateDirectory(
  options: ReadCertificateDirectoryOptions,
): Promise<StoredCertificate | undefined> {
  const directory = resolve(options.directory);
  const fail = (message: string, hint: string = REPLACE_HINT): never => {
    throw new CertificateDirectoryError(directory, `${options.directory}: ${message}`, {
      phase: 'input',
      hint,
    });
  };
  try {
    const info = await stat(directory);
    if (!info.isDirectory())
      fail('is not a directory', 'give --out a directory path (it is created if missing)');
  } catch (error) {
    if (error instanceof CertificateDirectoryError) throw error;
    if (errorCode(error) === 'ENOENT') return undefined;
    fail(`cannot be read (${errorCode(error) ?? String(error)})`, 'check the permissions of the directory');
  }

  await checkLayout(directory, options.directory);
  const texts = {} as Record<FileRole, string | undefined>;
  for (const role of Object.keys(CERTIFICATE_FILES) as FileRole[]) {
    texts[role] = await readOptional(join(directory, CERTIFICATE_FILES[role]), options.directory);
  }
  const present = (Object.keys(texts) as FileRole[]).filter((role) => texts[role] !== undefined);
  if (present.length === 0) return undefined;

  const missing: string[] = [];
  if (texts.chain === undefined) missing.push(CERTIFICATE_FILES.chain);
  if (texts.registration === undefined) missing.push(CERTIFICATE_FILES.registration);
  if (options.expectKey && texts.key === undefined) missing.push(CERTIFICATE_FILES.key);
  if (missing.length > 0) {
    fail(
      `is incomplete: ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} missing beside ${present
        .map((role) => CERTIFICATE_FILES[role])
        .join(' and ')}`,
    );
  }

  const registration = parseRegistration(texts.registration as string, fail);
  if (
    registration.idScope !== options.idScope ||
    (options.registrationId !== undefined && registration.registrationId !== options.registrationId)
  ) {
    fail(
      `holds the certificate of registration ${JSON.stringify(registration.registrationId)} in ID scope ${registration.idScope}, not ${JSON.stringify(options.registrationId ?? registration.registrationId)} in ${options.idScope}`,
    );
  }

  const blocks = splitPemCertificates(texts.chain as string);
  if (blocks.length === 0) fail(`${CERTIFICATE_FILES.chain} holds no PEM certificate`);
  const chain = blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch {
      return fail(
        `${CERTIFICATE_FILES.chain}: certificate ${index + 1} of ${blocks.length} cannot be parsed`,
      );
    }
  });
  for (let index = 0; index + 1 < chain.length; index += 1) {
    const subject = chain[index] as X509Certificate;
    const issuer = chain[index + 1] as X509Certificate;
    let linked = false;
    try {
      linked = subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
    } catch {
      linked = false;
    }
    if (!linked)
      fail(`${CERTIFICATE_FILES.chain}: certificate ${index + 1} is not issued by certificate ${index + 2}`);
  }
  const leaf = chain[0] as X509Certificate;
  const leafCommonName = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
  if (leafCommonName !== registration.registrationId) {
    fail(
      `${CERTIFICATE_FILES.chain} is for CN=${leafCommonName ?? '(none)'}, but ${CERTIFICATE_FILES.registration} is for registration ${JSON.stringify(registration.registrationId)}`,
    );
  }

  if (texts.key !== undefined) {
    let matches = false;
    try {
      matches = leaf.checkPrivateKey(createPrivateKey(texts.key));
    } catch {
      fail(`${CERTIFICATE_FILES.key} is not a readable unencrypted PEM private key`);
    }
    if (!matches)
      fail(`${CERTIFICATE_FILES.key} does not belong to the certificate in ${CERTIFICATE_FILES.chain}`);
  }

  return {
    registration,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serialNumber: leaf.serialNumber.toUpperCase(),
    keyType: keyTypeOf(leaf.publicKey),
    leafPublicKeySpki: leaf.publicKey.export({ type: 'spki', format: 'der' }),
    hasKey: texts.key !== undefined,
    paths: certificateFilePaths(directory, texts.key !== undefined),
  };
}

/** The three names must be dps-mqtt's links (or absent), and `.current` a link: anything else is not ours. */
async function checkLayout(directory: string, shown: string): Promise<void> {
  const names = [...Object.values(CERTIFICATE_FILES), CURRENT];
  for (const name of names) {
    let info: Awaited<ReturnType<typeof lstat>>;
    try {
      info = await lstat(join(directory, name));
    } catch (error) {
      if (errorCode(error) === 'ENOENT') continue;
      throw new CertificateDirectoryError(
        directory,
        `${shown}/${name} cannot be read (${errorCode(error)})`,
        {
          phase: 'input',
          hint: 'check the permissions of the directory',
        },
      );
    }
    if (!info.isSymbolicLink()) {
      throw new CertificateDirectoryError(
        directory,
        `${shown}/${name} is a ${info.isDirectory() ? 'directory' : 'file'} that dps-mqtt did not write (it keeps its files in ${CURRENT}/ and links them)`,
        { phase: 'input', hint: REPLACE_HINT },
      );
    }
  }
}

async function readOptional(path: string, shown: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    // A dangling link (a name with no file in the current set) reads as absent.
    if (errorCode(error) === 'ENOENT') return undefined;
    throw new CertificateDirectoryError(
      resolve(shown),
      `${path} cannot be read (${errorCode(error) ?? String(error)})`,
      {
        phase: 'input',
        hint: 'check the permissions of the files (run as the user that wrote them)',
      },
    );
  }
}

function parseRegistration(text: string, fail: (message: string) => never): StoredRegistration {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail(`${CERTIFICATE_FILES.registration} is not valid JSON`);
  }
  const record = value as Partial<StoredRegistration> | null;
  if (
    record === null ||
    typeof record !== 'object' ||
    typeof record.idScope !== 'string' ||
    typeof record.registrationId !== 'string' ||
    typeof record.assignedHub !== 'string' ||
    typeof record.deviceId !== 'string'
  ) {
    return fail(`${CERTIFICATE_FILES.registration} lacks idScope, registrationId, deviceId or assignedHub`);
  }
  if (record.format !== REGISTRATION_FILE_FORMAT) {
    return fail(
      `${CERTIFICATE_FILES.registration} has format ${JSON.stringify(record.format)}, not ${REGISTRATION_FILE_FORMAT}`,
    );
  }
  return record as StoredRegistration;
}

export interface CertificateFileContents {
  /** Absent when the caller brought its own CSR. */
  privateKeyPem?: string;
  chainPem: string;
  registrationJson: string;
}

/**
 * Writes a new generation and switches DIR to it with one rename (see the top of this file). DIR is
 * created (mode 0700) when missing. Throws CertificateDirectoryError (phase `output`) when it cannot.
 */
export async function replaceCertificateFiles(
  directoryPath: string,
  contents: CertificateFileContents,
): Promise<CertificateFilePaths> {
  const directory = resolve(directoryPath);
  try {
    await mkdir(directory, { recursive: true, mode: 0o700 });
    const generation = `${GENERATION_PREFIX}${process.pid}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const generationPath = join(directory, generation);
    await mkdir(generationPath, { mode: 0o700 });
    const files: Array<[FileRole, string, number]> = [
      ['chain', contents.chainPem, 0o644],
      ['registration', contents.registrationJson, 0o644],
    ];
    if (contents.privateKeyPem !== undefined) files.push(['key', contents.privateKeyPem, 0o600]);
    for (const [role, text, mode] of files) {
      await writeDurably(join(generationPath, CERTIFICATE_FILES[role]), text, mode);
    }
    await syncDirectory(generationPath);

    // The stable names link through .current; made before the switch, so they may dangle until then
    // (a dangling name reads as absent, never as a mismatched file).
    for (const [role] of files)
      await ensureLink(directory, CERTIFICATE_FILES[role], `${CURRENT}/${CERTIFICATE_FILES[role]}`);
    await syncDirectory(directory);

    const previous = await readlink(join(directory, CURRENT)).catch(() => undefined);
    await replaceWithLink(directory, CURRENT, generation);
    await syncDirectory(directory);

    // With --csr the new set has no key: drop the name (it dangles already, so order does not matter).
    if (contents.privateKeyPem === undefined)
      await unlink(join(directory, CERTIFICATE_FILES.key)).catch(() => {});
    await removeStale(directory, generation, previous);
    return certificateFilePaths(directory, contents.privateKeyPem !== undefined);
  } catch (error) {
    if (error instanceof CertificateDirectoryError) throw error;
    throw new CertificateDirectoryError(
      directory,
      `the new certificate could not be written to ${directoryPath} (${errorCode(error) ?? String(error)}); the files there, if any, are unchanged`,
      {
        phase: 'output',
        hint: 'check that the directory is writable and the disk has space, then register again',
      },
    );
  }
}

async function writeDurably(path: string, text: string, mode: number): Promise<void> {
  const handle = await open(path, 'wx', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.chmod(mode); // the umask may have taken bits away from mode; it never adds any
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync of a directory makes its new entries durable; not every platform allows it (Windows). */
async function syncDirectory(path: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch {
    // best effort
  } finally {
    await handle?.close().catch(() => {});
  }
}

async function ensureLink(directory: string, name: string, target: string): Promise<void> {
  const current = await readlink(join(directory, name)).catch(() => undefined);
  if (current === target) return;
  await replaceWithLink(directory, name, target);
}

/** A new link under a temporary name, renamed over `name`: the name is never missing or half-made. */
async function replaceWithLink(directory: string, name: string, target: string): Promise<void> {
  const temporary = join(directory, `${LINK_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  await symlink(target, temporary, name === CURRENT ? 'junction' : 'file');
  try {
    await rename(temporary, join(directory, name));
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw error;
  }
}

/** Removes the generation just replaced, and leftovers of runs that died (their process is gone). */
async function removeStale(directory: string, keep: string, previous: string | undefined): Promise<void> {
  for (const name of await readdir(directory).catch(() => [] as string[])) {
    if (name === keep) continue;
    const leftover = name.startsWith(GENERATION_PREFIX) || name.startsWith(LINK_PREFIX);
    if (!leftover) continue;
    const pid = Number(/^\.(?:generation|link)-(\d+)-/.exec(name)?.[1]);
    if (name === previous || !isProcessAlive(pid)) {
      await rm(join(directory, name), { recursive: true, force: true }).catch(() => {});
    }
  }
}

function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false; // ours and not the one kept: superseded
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
