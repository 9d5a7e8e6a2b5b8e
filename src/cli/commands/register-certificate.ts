// `dps-mqtt register --certificate --out DIR [--renew-before 7d|20%]`: register with a CSR, write the
// key, the issued chain and the result to DIR as one set, or, when DIR already holds a certificate valid
// beyond the threshold for the same registration, print that without contacting DPS.
import type { RegistrationResult } from '../../client/types.js';
import { CsrFormatError, csrDerFrom, readCsr } from '../../protocol/csr-reader.js';
import { commonNameOf } from '../../protocol/validate.js';
import { type CertificateOutput, type RegisterInvocation, UsageError } from '../args.js';
import {
  CertificateDirectoryError,
  type CertificateFilePaths,
  readCertificateDirectory,
  registrationRecord,
  replaceCertificateFiles,
  type StoredCertificate,
  type StoredRegistration,
} from '../certificate-files.js';
import { isBeyondThreshold } from '../duration.js';
import { ExitCode } from '../exit-codes.js';
import { type CliIo, DEFAULT_ENDPOINT, formatResult } from '../output.js';
import type * as RegisterCommand from './register.js';

/** What this module uses of the register command, passed in so that the two do not import each other. */
export type Reporting = Pick<typeof RegisterCommand, 'registerAndReport' | 'reportError'>;

export async function registerCertificateAndReport(
  invocation: RegisterInvocation,
  output: CertificateOutput,
  io: CliIo,
  run: RegisterCommand.RegisterRunOptions,
  { registerAndReport, reportError }: Reporting,
): Promise<number> {
  const { options, json, quiet, secrets } = invocation;
  const say = (line: string): void => {
    if (!quiet) io.stderr.write(`${run.command}: ${line}\n`);
  };
  const registrationId =
    options.registrationId ??
    ('certificate' in options.security ? commonNameOf(options.security.certificate) : undefined);

  let stored: StoredCertificate | undefined;
  try {
    const csrPublicKey = output.csr === undefined ? undefined : csrPublicKeySpki(output.csr);
    try {
      stored = await readCertificateDirectory({
        directory: output.directory,
        idScope: options.idScope,
        registrationId,
        expectKey: output.csr === undefined,
      });
    } catch (error) {
      if (!(output.force && error instanceof CertificateDirectoryError)) throw error;
      say(`${error.message}; replacing it (--force)`);
    }
    if (stored !== undefined && output.renewBefore !== undefined) {
      const reason = staleReason(stored, output, csrPublicKey);
      if (reason === undefined) {
        say(
          `certificate in ${output.directory} is valid until ${stored.notAfter.toISOString()} (${timeLeft(stored.notAfter)} left); not renewing (renew-before ${output.renewBefore.text})`,
        );
        io.stdout.write(present(stored.registration, stored.paths, true, json));
        return ExitCode.ok;
      }
      say(`${reason}; registering for a new certificate`);
    }
  } catch (error) {
    return reportError(run.command, error, io, json, secrets);
  }

  return registerAndReport(invocation, io, {
    ...run,
    present: async (result) => {
      const issued = result.issuedCertificate;
      if (issued === undefined) {
        // The library resolves with a checked chain or throws; this is a guard, not a path.
        throw new Error('the registration result has no issued certificate');
      }
      const record = registrationRecord(result, {
        idScope: options.idScope,
        endpoint: options.endpoint ?? DEFAULT_ENDPOINT,
        transport: options.transport ?? 'mqtt-ws',
        connectionString: x509ConnectionString(result),
      });
      const paths = await replaceCertificateFiles(output.directory, {
        ...(issued.privateKeyPem === undefined ? {} : { privateKeyPem: issued.privateKeyPem }),
        chainPem: issued.chainPem,
        registrationJson: `${JSON.stringify(record, null, 2)}\n`,
      });
      return json
        ? present(record, paths, false, true)
        : formatResult(result, undefined) + present(record, paths, false, false);
    },
  });
}

/** Why DIR's certificate must be replaced, or undefined when it is fresh and is what was asked for. */
function staleReason(
  stored: StoredCertificate,
  output: CertificateOutput,
  csrPublicKey: Buffer | undefined,
): string | undefined {
  const where = `certificate in ${output.directory}`;
  const threshold = output.renewBefore;
  if (threshold !== undefined && !isBeyondThreshold(stored, threshold, new Date())) {
    const now = Date.now();
    if (stored.notAfter.getTime() <= now) return `${where} expired at ${stored.notAfter.toISOString()}`;
    if (stored.notBefore.getTime() > now)
      return `${where} is not valid before ${stored.notBefore.toISOString()}`;
    return `${where} is valid until ${stored.notAfter.toISOString()} (${timeLeft(stored.notAfter)} left), within renew-before ${threshold.text}`;
  }
  if (csrPublicKey !== undefined && !csrPublicKey.equals(stored.leafPublicKeySpki)) {
    return `${where} is not for the key of the --csr request`;
  }
  if (output.keyType !== undefined && stored.keyType !== output.keyType) {
    return `${where} has an ${stored.keyType} key, not ${output.keyType}`;
  }
  return undefined;
}

/** The CSR's public key, to tell whether DIR's certificate is for it; a bad file is a usage error. */
function csrPublicKeySpki(csr: string | Uint8Array): Buffer {
  try {
    return Buffer.from(readCsr(csrDerFrom(csr)).publicKeySpkiDer);
  } catch (error) {
    if (error instanceof CsrFormatError) {
      throw new UsageError(`--csr: not a PKCS#10 certificate request (${error.message})`, '--csr');
    }
    throw error;
  }
}

/** With the issued certificate the device connects to its hub by X.509, not with a key. */
function x509ConnectionString(result: RegistrationResult): string {
  return `HostName=${result.assignedHub};DeviceId=${result.deviceId};x509=true`;
}

function timeLeft(notAfter: Date): string {
  const hours = (notAfter.getTime() - Date.now()) / 3_600_000;
  if (hours >= 48) return `${Math.floor(hours / 24)} days`;
  if (hours >= 1) return `${Math.floor(hours)} hours`;
  return `${Math.max(0, Math.floor(hours * 60))} minutes`;
}

/** stdout: registration.json plus the file paths (--json), or the certificate and where it is. */
function present(
  record: StoredRegistration,
  paths: CertificateFilePaths,
  cached: boolean,
  json: boolean,
): string {
  if (json) return `${JSON.stringify({ ...record, certificateFiles: paths, cached })}\n`;
  const { certificate } = record;
  let text = cached
    ? `Device ${record.deviceId} is assigned to ${record.assignedHub} (from ${paths.registration}; DPS was not contacted)\n`
    : '\n';
  text += `Certificate: ${certificate.keyType}, serial ${certificate.serialNumber}, valid ${certificate.notBefore} to ${certificate.notAfter}\n`;
  if (paths.key !== undefined) text += `  private key:   ${paths.key} (mode 0600)\n`;
  else text += '  private key:   yours (the key of the --csr request; not written)\n';
  text += `  chain:         ${paths.chain} (leaf first)\n`;
  text += `  registration:  ${paths.registration}\n`;
  text += `\nDevice connection (IoT Hub, X.509 with the key and chain above):\n  ${String(record.connectionString)}\n`;
  return text;
}
