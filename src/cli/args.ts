// Command-line flags and environment variables → client options. Every mistake becomes a UsageError that
// names the flag, before anything touches the network (exit code 2).
import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { parseProxyUrl } from '../client/proxy-from-env.js';
import type {
  CertificateKeyType,
  DeviceSecurity,
  ProvisioningClientOptions,
  TransportKind,
} from '../client/types.js';
import { DpsError } from '../protocol/errors.js';
import { MAX_TIMER_MS } from '../protocol/limits.js';
import type { JsonValue } from '../protocol/responses.js';
import {
  validateApiVersion,
  validateIdScope,
  validateRegistrationId,
  validateSymmetricKey,
} from '../protocol/validate.js';
import { parseRenewThreshold, type RenewThreshold } from './duration.js';

/** Bad command-line input: the message names the flag (or environment variable) to fix. */
export class UsageError extends Error {
  /** The flag or environment variable at fault, e.g. `--id-scope`. */
  readonly flag: string | undefined;
  constructor(message: string, flag?: string) {
    super(message);
    this.name = 'UsageError';
    this.flag = flag;
  }
}

/** Environment variables read when the matching flag is absent (secrets need not be on the command line). */
export const ENV = {
  idScope: 'DPS_ID_SCOPE',
  registrationId: 'DPS_REGISTRATION_ID',
  symmetricKey: 'DPS_SYMMETRIC_KEY',
  groupKey: 'DPS_GROUP_KEY',
  passphrase: 'DPS_KEY_PASSPHRASE',
  endpoint: 'DPS_ENDPOINT',
} as const;

export type Env = Record<string, string | undefined>;

/** Reads a file named on the command line; injectable for tests. */
export type ReadText = (path: string) => string;

const readTextFile: ReadText = (path) => readFileSync(path, 'utf8');

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/**
 * parseArgs in strict mode, with its errors rewritten into one line that names the flag.
 * `--help` is always accepted.
 */
export function parseFlags<O extends OptionsConfig>(
  argv: string[],
  options: O,
): ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>
>['values'] {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw usageErrorFromParseArgs(error);
  }
}

function usageErrorFromParseArgs(error: unknown): UsageError {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option ${flag ?? message}`, flag);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(message)) {
        return new UsageError(`${flag} does not take a value`, flag);
      }
      return new UsageError(
        `${flag} needs a value${/ambiguous/.test(message) ? ` (to pass a value starting with "-", write ${flag}=VALUE)` : ''}`,
        flag,
      );
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const argument = /argument '([^']*)'/.exec(message)?.[1] ?? message;
      return new UsageError(`unexpected argument "${argument}": every value follows its flag`);
    }
    default:
      return new UsageError(message.split('\n')[0] ?? message);
  }
}

/** Runs a protocol validator and turns its error into a UsageError naming the flag. */
export function checked<T>(flag: string, validate: () => T): T {
  try {
    return validate();
  } catch (error) {
    if (error instanceof DpsError) throw new UsageError(`${flag}: ${error.message}`, flag);
    throw error;
  }
}

export function readFlagFile(flag: string, path: string, readText: ReadText): string {
  try {
    return readText(path);
  } catch (error) {
    const reason = (error as { code?: unknown }).code ?? (error instanceof Error ? error.message : error);
    throw new UsageError(`${flag}: cannot read ${JSON.stringify(path)} (${String(reason)})`, flag);
  }
}

/** The parseArgs definitions of the flags parseConnectionFlags reads. */
export const CONNECTION_FLAG_OPTIONS = {
  endpoint: { type: 'string' },
  transport: { type: 'string' },
  ca: { type: 'string' },
  proxy: { type: 'string' },
  'no-proxy': { type: 'boolean' },
  payload: { type: 'string' },
  'api-version': { type: 'string' },
} as const;

export const REGISTER_FLAGS = {
  'id-scope': { type: 'string' },
  'registration-id': { type: 'string' },
  'symmetric-key': { type: 'string' },
  'group-key': { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  passphrase: { type: 'string' },
  ...CONNECTION_FLAG_OPTIONS,
  timeout: { type: 'string' },
  insecure: { type: 'boolean' },
  pipeline: { type: 'boolean' },
  // Certificate issuance: a bare --certificate is --certificate=ec-p384 (see withBareCertificateFlag).
  certificate: { type: 'string' },
  csr: { type: 'string' },
  out: { type: 'string' },
  'renew-before': { type: 'string' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  trace: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionsConfig;

export interface RegisterInvocation {
  /** Everything but the callbacks (onProgress, trace sink), which the command adds. */
  options: ProvisioningClientOptions;
  json: boolean;
  trace: boolean;
  quiet: boolean;
  /** Values to scrub from anything printed: keys, passphrase, private key, proxy password. */
  secrets: string[];
  /** With --certificate or --csr: where the issued certificate goes (options.certificate is set too). */
  certificateOutput?: CertificateOutput;
}

/** `--out DIR` and what goes with it. */
export interface CertificateOutput {
  directory: string;
  /** The key type asked for; undefined with --csr. */
  keyType?: CertificateKeyType;
  /** The caller's CSR (--csr FILE), PEM text or DER bytes; then no device.key is written. */
  csr?: string | Uint8Array;
  renewBefore?: RenewThreshold;
  force: boolean;
}

/** `dps-mqtt register` flags (and environment) → client options; 'help' for --help. */
export function parseRegisterArgs(
  argv: string[],
  env: Env = process.env,
  readText: ReadText = readTextFile,
  readBytes: ReadBytes = readBinaryFile,
): RegisterInvocation | 'help' {
  const flags = parseFlags(withBareCertificateFlag(argv), REGISTER_FLAGS);
  if (flags.help) return 'help';
  const secrets: string[] = [];

  const idScopeText = flags['id-scope'] ?? env[ENV.idScope];
  if (idScopeText === undefined || idScopeText === '') {
    throw new UsageError(`--id-scope is required (or set ${ENV.idScope})`, '--id-scope');
  }
  const idScope = checked('--id-scope', () => validateIdScope(idScopeText));

  const registrationIdText = flags['registration-id'] ?? env[ENV.registrationId];
  const registrationId =
    registrationIdText === undefined || registrationIdText === ''
      ? undefined
      : checked('--registration-id', () => validateRegistrationId(registrationIdText));

  const security = parseSecurity(flags, env, readText, secrets);
  if (registrationId === undefined && !('certificate' in security)) {
    throw new UsageError(
      `--registration-id is required with a symmetric or group key (or set ${ENV.registrationId})`,
      '--registration-id',
    );
  }

  const options: ProvisioningClientOptions = { idScope, security };
  if (registrationId !== undefined) options.registrationId = registrationId;

  Object.assign(options, parseConnectionFlags(flags, env, readText, secrets));
  if (flags.timeout !== undefined) options.timeoutMs = parseTimeout(flags.timeout);
  if (flags.insecure) options.insecureSkipVerify = true;
  if (flags.pipeline) options.pipeline = true;

  const invocation: RegisterInvocation = {
    options,
    json: flags.json ?? false,
    trace: flags.trace ?? false,
    quiet: flags.quiet ?? false,
    secrets,
  };
  const certificateOutput = parseCertificateOutput(flags, readBytes);
  if (certificateOutput !== undefined) {
    invocation.certificateOutput = certificateOutput;
    const { csr, keyType } = certificateOutput;
    options.certificate = csr !== undefined ? { csr } : keyType !== undefined ? { keyType } : {};
  }
  return invocation;
}

/** The connection flags `register` and `fleet` share; proxy passwords are added to `secrets`. */
export interface ConnectionFlags {
  endpoint?: string | undefined;
  transport?: string | undefined;
  ca?: string | undefined;
  proxy?: string | undefined;
  'no-proxy'?: boolean | undefined;
  payload?: string | undefined;
  'api-version'?: string | undefined;
}

export function parseConnectionFlags(
  flags: ConnectionFlags,
  env: Env,
  readText: ReadText,
  secrets: string[],
): Pick<
  ProvisioningClientOptions,
  'endpoint' | 'transport' | 'trustedCa' | 'proxy' | 'payload' | 'apiVersion'
> {
  const options: Pick<
    ProvisioningClientOptions,
    'endpoint' | 'transport' | 'trustedCa' | 'proxy' | 'payload' | 'apiVersion'
  > = {};
  const endpoint = flags.endpoint ?? env[ENV.endpoint];
  if (endpoint !== undefined) options.endpoint = parseEndpoint(endpoint);
  if (flags.transport !== undefined) options.transport = parseTransport(flags.transport);
  if (flags.ca !== undefined) options.trustedCa = parseCa(flags.ca, readText);

  if (flags.proxy !== undefined && flags['no-proxy']) {
    throw new UsageError('--proxy and --no-proxy cannot be used together', '--no-proxy');
  }
  if (flags.proxy !== undefined) {
    const proxy = flags.proxy;
    secrets.push(...proxyPasswordOf(proxy));
    // Checked here too, so that a malformed URL is a usage error naming --proxy.
    try {
      parseProxyUrl(proxy, '--proxy');
    } catch (error) {
      throw error instanceof DpsError ? new UsageError(error.message, '--proxy') : error;
    }
    options.proxy = proxy;
  } else if (flags['no-proxy']) {
    options.proxy = false;
  }
  // The client falls back to HTTPS_PROXY; its password must not be printed either.
  for (const variable of ['HTTPS_PROXY', 'https_proxy']) {
    const value = env[variable];
    if (value) secrets.push(...proxyPasswordOf(value));
  }
  if (flags.payload !== undefined) options.payload = parsePayload(flags.payload, readText);
  if (flags['api-version'] !== undefined) {
    const apiVersion = flags['api-version'];
    options.apiVersion = checked('--api-version', () => validateApiVersion(apiVersion));
  }
  return options;
}

/** Reads a binary file named on the command line (a DER CSR); injectable for tests. */
export type ReadBytes = (path: string) => Uint8Array;

const readBinaryFile: ReadBytes = (path) => readFileSync(path);

const CERTIFICATE_KEY_TYPE_NAMES: readonly CertificateKeyType[] = ['ec-p384', 'ec-p256', 'rsa-2048'];

/**
 * `--certificate` takes an optional key type: a bare `--certificate` (last, or followed by another flag)
 * becomes `--certificate=ec-p384`, which parseArgs, whose string options always take a value, accepts.
 */
export function withBareCertificateFlag(argv: string[]): string[] {
  return argv.map((argument, index) => {
    const next = argv[index + 1];
    return argument === '--certificate' && (next === undefined || next.startsWith('-'))
      ? '--certificate=ec-p384'
      : argument;
  });
}

/** `--certificate [TYPE]` / `--csr FILE`, `--out DIR`, `--renew-before`, `--force`: all or none. */
function parseCertificateOutput(flags: RegisterFlags, readBytes: ReadBytes): CertificateOutput | undefined {
  const keyTypeText = flags.certificate;
  const csrPath = flags.csr;
  const directory = flags.out;
  if (keyTypeText !== undefined && csrPath !== undefined) {
    throw new UsageError(
      '--certificate and --csr cannot be used together: --certificate has a key generated, --csr FILE brings your own request',
      '--csr',
    );
  }
  if (keyTypeText === undefined && csrPath === undefined) {
    for (const flag of ['out', 'renew-before', 'force'] as const) {
      if (flags[flag] !== undefined) {
        throw new UsageError(
          `--${flag} needs --certificate (or --csr FILE): it is about the issued certificate`,
          `--${flag}`,
        );
      }
    }
    return undefined;
  }
  const flag = keyTypeText !== undefined ? '--certificate' : '--csr';
  if (directory === undefined || directory === '') {
    throw new UsageError(
      `${flag} needs --out DIR: the directory to write device.key, device-chain.pem and registration.json to`,
      '--out',
    );
  }
  const output: CertificateOutput = { directory, force: flags.force ?? false };
  if (keyTypeText !== undefined) {
    if (!(CERTIFICATE_KEY_TYPE_NAMES as readonly string[]).includes(keyTypeText)) {
      throw new UsageError(
        `--certificate: key type ${JSON.stringify(keyTypeText)} is unknown: use ec-p384 (the default), ec-p256 or rsa-2048`,
        '--certificate',
      );
    }
    output.keyType = keyTypeText as CertificateKeyType;
  }
  if (csrPath !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = readBytes(csrPath);
    } catch (error) {
      const reason = (error as { code?: unknown }).code ?? (error instanceof Error ? error.message : error);
      throw new UsageError(`--csr: cannot read ${JSON.stringify(csrPath)} (${String(reason)})`, '--csr');
    }
    const text = Buffer.from(bytes).toString('latin1');
    output.csr = text.includes('-----BEGIN') ? text : bytes;
  }
  const renewBefore = flags['renew-before'];
  if (renewBefore !== undefined) {
    try {
      output.renewBefore = parseRenewThreshold(renewBefore);
    } catch (error) {
      throw new UsageError(`--renew-before: ${(error as Error).message}`, '--renew-before');
    }
  }
  return output;
}

type RegisterFlags = ReturnType<typeof parseFlags<typeof REGISTER_FLAGS>>;

function parseSecurity(
  flags: RegisterFlags,
  env: Env,
  readText: ReadText,
  secrets: string[],
): DeviceSecurity {
  const fromFlags: string[] = [];
  if (flags['symmetric-key'] !== undefined) fromFlags.push('--symmetric-key');
  if (flags['group-key'] !== undefined) fromFlags.push('--group-key');
  if (flags.cert !== undefined || flags.key !== undefined) fromFlags.push('--cert/--key');
  if (fromFlags.length > 1) {
    throw new UsageError(`give one way to authenticate, not ${fromFlags.join(' and ')}`, fromFlags[1]);
  }

  // Flags win over the environment; the environment is only read when no flag chose a method.
  let symmetricKey = flags['symmetric-key'];
  let groupKey = flags['group-key'];
  if (fromFlags.length === 0) {
    symmetricKey = env[ENV.symmetricKey] || undefined;
    groupKey = env[ENV.groupKey] || undefined;
    if (symmetricKey !== undefined && groupKey !== undefined) {
      throw new UsageError(
        `both ${ENV.symmetricKey} and ${ENV.groupKey} are set: unset one, or choose with --symmetric-key or --group-key`,
        ENV.groupKey,
      );
    }
  }

  if (symmetricKey !== undefined) {
    const flag = flags['symmetric-key'] === undefined ? ENV.symmetricKey : '--symmetric-key';
    secrets.push(symmetricKey);
    return { symmetricKey: checked(flag, () => validateSymmetricKey(symmetricKey, 'symmetric key')) };
  }
  if (groupKey !== undefined) {
    const flag = flags['group-key'] === undefined ? ENV.groupKey : '--group-key';
    secrets.push(groupKey);
    return { groupKey: checked(flag, () => validateSymmetricKey(groupKey, 'group key')) };
  }
  if (flags.cert !== undefined || flags.key !== undefined) {
    if (flags.cert === undefined)
      throw new UsageError('--key needs --cert (the device certificate)', '--cert');
    if (flags.key === undefined) throw new UsageError('--cert needs --key (its private key file)', '--key');
    const certificate = readFlagFile('--cert', flags.cert, readText);
    if (!certificate.includes('-----BEGIN CERTIFICATE-----')) {
      throw new UsageError(`--cert: ${JSON.stringify(flags.cert)} is not a PEM certificate`, '--cert');
    }
    const privateKey = readFlagFile('--key', flags.key, readText);
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
      throw new UsageError(`--key: ${JSON.stringify(flags.key)} is not a PEM private key`, '--key');
    }
    secrets.push(privateKey);
    const passphrase = flags.passphrase ?? (env[ENV.passphrase] || undefined);
    if (passphrase !== undefined) {
      secrets.push(passphrase);
      return { certificate, privateKey, passphrase };
    }
    return { certificate, privateKey };
  }
  throw new UsageError(
    `no credentials: give --symmetric-key, --group-key or --cert with --key (or set ${ENV.symmetricKey} or ${ENV.groupKey})`,
    '--symmetric-key',
  );
}

export function parseEndpoint(endpoint: string): string {
  if (endpoint.includes('://')) {
    throw new UsageError(
      `--endpoint: give a host name or host:port, not a URL (got ${JSON.stringify(endpoint)})`,
      '--endpoint',
    );
  }
  if (endpoint === '' || /[\s/?#@]/.test(endpoint)) {
    throw new UsageError(
      `--endpoint: ${JSON.stringify(endpoint)} is not a host name or host:port`,
      '--endpoint',
    );
  }
  return endpoint;
}

export function parseTransport(transport: string): TransportKind {
  if (transport === 'mqtt-ws' || transport === 'mqtt') return transport;
  throw new UsageError(
    `--transport must be mqtt-ws (MQTT over WebSocket, port 443) or mqtt (MQTT over TLS, port 8883), not ${JSON.stringify(transport)}`,
    '--transport',
  );
}

export function parseCa(path: string, readText: ReadText): string {
  const pem = readFlagFile('--ca', path, readText);
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new UsageError(`--ca: ${JSON.stringify(path)} contains no PEM certificate`, '--ca');
  }
  return pem;
}

/** `--payload '{"model":"x"}'`, or `--payload @file.json`. */
export function parsePayload(text: string, readText: ReadText): JsonValue {
  const json = text.startsWith('@') ? readFlagFile('--payload', text.slice(1), readText) : text;
  try {
    return JSON.parse(json) as JsonValue;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UsageError(`--payload is not valid JSON (${reason})`, '--payload');
  }
}

export function parseTimeout(text: string): number {
  const seconds = Number(text);
  if (text.trim() === '' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(
      `--timeout must be a positive number of seconds, not ${JSON.stringify(text)}`,
      '--timeout',
    );
  }
  if (Math.round(seconds * 1000) > MAX_TIMER_MS) {
    throw new UsageError(
      `--timeout ${text} is too long: at most ${Math.floor(MAX_TIMER_MS / 1000)} seconds (about 24.8 days, the longest a timer holds)`,
      '--timeout',
    );
  }
  return Math.round(seconds * 1000);
}

export function proxyPasswordOf(proxyUrl: string): string[] {
  try {
    const url = new URL(proxyUrl.includes('://') ? proxyUrl : `http://${proxyUrl}`);
    return url.password ? [url.password, decodeURIComponent(url.password)] : [];
  } catch {
    return [];
  }
}

export const DERIVE_KEY_FLAGS = {
  'group-key': { type: 'string' },
  'registration-id': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionsConfig;

export interface DeriveKeyInvocation {
  groupKey: string;
  registrationId: string;
}

/** `dps-mqtt derive-key` flags (or DPS_GROUP_KEY / DPS_REGISTRATION_ID); 'help' for --help. */
export function parseDeriveKeyArgs(argv: string[], env: Env = process.env): DeriveKeyInvocation | 'help' {
  const flags = parseFlags(argv, DERIVE_KEY_FLAGS);
  if (flags.help) return 'help';
  const groupKey = flags['group-key'] ?? (env[ENV.groupKey] || undefined);
  if (groupKey === undefined) {
    throw new UsageError(`--group-key is required (or set ${ENV.groupKey})`, '--group-key');
  }
  const registrationId = flags['registration-id'] ?? (env[ENV.registrationId] || undefined);
  if (registrationId === undefined) {
    throw new UsageError(`--registration-id is required (or set ${ENV.registrationId})`, '--registration-id');
  }
  return {
    groupKey: checked('--group-key', () => validateSymmetricKey(groupKey, 'group key')),
    registrationId: checked('--registration-id', () => validateRegistrationId(registrationId)),
  };
}
