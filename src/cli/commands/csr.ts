// `dps-mqtt csr`: a new key pair and its PKCS#10 request (CN = the registration id), for a certificate
// signed elsewhere. The key goes to a new file (mode 0600), the request to stdout. Nothing is sent.
import { open } from 'node:fs/promises';
import type { CertificateKeyType } from '../../client/types.js';
import { validateRegistrationId } from '../../protocol/validate.js';
import { ENV, parseFlags, UsageError } from '../args.js';
import { ExitCode } from '../exit-codes.js';
import type { CliIo } from '../output.js';
import { reportError } from './register.js';

export const CSR_USAGE = `Usage: dps-mqtt csr --registration-id ID --key-out FILE [--key-type ec-p384|ec-p256|rsa-2048] [--der | --base64]

Generates a key pair and prints a PKCS#10 certificate signing request with subject CN=ID, the form DPS
certificate issuance and most CAs take. The private key is written to a new file (mode 0600), never
printed. Nothing is sent anywhere. (To have DPS sign it: dps-mqtt register --csr FILE --out DIR ...)

  --registration-id ID     the device's registration id, the CSR's CN      (env ${ENV.registrationId})
  --key-out FILE           where to write the private key (PEM, PKCS#8, mode 0600); must not exist
  --key-type TYPE          ec-p384 (default; the type the DPS docs name), ec-p256 or rsa-2048
  --der                    print the request as DER bytes (redirect to a file) instead of PEM
  --base64                 print it as base64 DER on one line: the register request's "csr" field
  -q, --quiet              no note on stderr
  -h, --help               this help

Exit codes: 0 written, 2 bad input or the key file exists (nothing written), 1 unexpected failure.

Examples
  dps-mqtt csr --registration-id sensor-042 --key-out sensor-042.key > sensor-042.csr
  openssl req -in sensor-042.csr -noout -verify -subject
`;

const CSR_FLAGS = {
  'registration-id': { type: 'string' },
  'key-type': { type: 'string' },
  'key-out': { type: 'string' },
  der: { type: 'boolean' },
  base64: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

const KEY_TYPES: readonly CertificateKeyType[] = ['ec-p384', 'ec-p256', 'rsa-2048'];

export interface CsrInvocation {
  registrationId: string;
  keyType: CertificateKeyType;
  keyOut: string;
  format: 'pem' | 'der' | 'base64';
  quiet: boolean;
}

/** `dps-mqtt csr` flags (or DPS_REGISTRATION_ID); 'help' for --help. Throws UsageError. */
export function parseCsrArgs(argv: string[], env: CliIo['env']): CsrInvocation | 'help' {
  const flags = parseFlags(argv, CSR_FLAGS);
  if (flags.help) return 'help';
  const registrationIdText = flags['registration-id'] ?? (env[ENV.registrationId] || undefined);
  if (registrationIdText === undefined) {
    throw new UsageError(`--registration-id is required (or set ${ENV.registrationId})`, '--registration-id');
  }
  let registrationId: string;
  try {
    registrationId = validateRegistrationId(registrationIdText);
  } catch (error) {
    throw new UsageError(`--registration-id: ${(error as Error).message}`, '--registration-id');
  }
  const keyType = flags['key-type'] ?? 'ec-p384';
  if (!(KEY_TYPES as readonly string[]).includes(keyType)) {
    throw new UsageError(
      `--key-type ${JSON.stringify(keyType)} is unknown: use ec-p384 (the default), ec-p256 or rsa-2048`,
      '--key-type',
    );
  }
  const keyOut = flags['key-out'];
  if (keyOut === undefined || keyOut === '') {
    throw new UsageError(
      '--key-out FILE is required: a CSR is useless without its private key, which is never printed',
      '--key-out',
    );
  }
  if (flags.der && flags.base64) throw new UsageError('give --der or --base64, not both', '--base64');
  return {
    registrationId,
    keyType: keyType as CertificateKeyType,
    keyOut,
    format: flags.der ? 'der' : flags.base64 ? 'base64' : 'pem',
    quiet: flags.quiet ?? false,
  };
}

export async function runCsr(argv: string[], io: CliIo): Promise<number> {
  const command = 'dps-mqtt csr';
  try {
    const invocation = parseCsrArgs(argv, io.env);
    if (invocation === 'help') {
      io.stdout.write(CSR_USAGE);
      return ExitCode.ok;
    }
    const { createCertificateRequest } = await import('../../client/certificate-options.js');
    const request = await createCertificateRequest({
      registrationId: invocation.registrationId,
      keyType: invocation.keyType,
    });
    // The key first: a CSR is printed only once its key is safely on disk.
    await writeNewKeyFile(invocation.keyOut, request.privateKeyPem);
    // process.stdout takes bytes; CliIo's type says text because every other command prints text.
    if (invocation.format === 'der')
      (io.stdout as unknown as { write(chunk: Uint8Array): unknown }).write(request.csrDer);
    else io.stdout.write(invocation.format === 'base64' ? `${request.csrBase64}\n` : request.csrPem);
    if (!invocation.quiet) {
      io.stderr.write(
        `${command}: ${invocation.keyType} private key written to ${invocation.keyOut} (mode 0600); CSR for CN=${invocation.registrationId} on stdout\n`,
      );
    }
    return ExitCode.ok;
  } catch (error) {
    return reportError(command, error, io, false, []);
  }
}

/** Creates the key file with mode 0600; an existing file is never overwritten (it may be a device's key). */
async function writeNewKeyFile(path: string, privateKeyPem: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new UsageError(
      code === 'EEXIST'
        ? `--key-out: ${JSON.stringify(path)} already exists: a key is never overwritten; remove it or choose another path`
        : `--key-out: cannot create ${JSON.stringify(path)} (${String(code ?? error)})`,
      '--key-out',
    );
  }
  try {
    await handle.writeFile(privateKeyPem, 'utf8');
    await handle.chmod(0o600);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
