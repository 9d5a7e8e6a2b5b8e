// `dps-mqtt register`: flags → register() → the assignment (or one error line) and an exit code.
import type {
  ProvisioningClientOptions,
  RegisterCallOptions,
  RegistrationResult,
} from '../../client/types.js';
import { redact } from '../../protocol/redact.js';
import { ENV, parseRegisterArgs, type RegisterInvocation } from '../args.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { type CliIo, errorJson, formatError, formatResult, progressPrinter, resultJson } from '../output.js';

export const REGISTER_USAGE = `Usage: dps-mqtt register --id-scope SCOPE --registration-id ID (--symmetric-key KEY | --group-key KEY | --cert FILE --key FILE) [options]

Registers a device with the Azure IoT Device Provisioning Service and prints its IoT hub assignment.

Device
  --id-scope SCOPE         the DPS ID scope, e.g. 0ne00000000            (env ${ENV.idScope})
  --registration-id ID     the registration id; X.509: defaults to the certificate's CN
                                                                         (env ${ENV.registrationId})
Credentials (one of)
  --symmetric-key KEY      an individual enrollment's key                (env ${ENV.symmetricKey})
  --group-key KEY          a group enrollment's key; the device key is derived
                                                                         (env ${ENV.groupKey})
  --cert FILE --key FILE   X.509: device certificate (chain) and private key, PEM files
  --passphrase TEXT        the private key's passphrase                  (env ${ENV.passphrase})

Connection
  --endpoint HOST[:PORT]   default global.azure-devices-provisioning.net  (env ${ENV.endpoint})
  --transport mqtt-ws|mqtt MQTT over WebSocket on 443 (default) or MQTT over TLS on 8883
  --ca FILE                trust only this CA (PEM) for the DPS server, e.g. the emulator's
  --proxy URL              HTTP CONNECT proxy, http://[user:password@]host:port
                           (default: HTTPS_PROXY unless NO_PROXY matches)
  --no-proxy               ignore HTTPS_PROXY
  --insecure               do not verify the server certificate (debugging only)
  --pipeline               do not wait for CONNACK/SUBACK before the request (2 round trips fewer)

Request
  --payload JSON|@FILE     custom allocation data sent with the request
  --api-version DATE       default 2019-03-31; 2021-06-01 also returns the trust bundle
  --timeout SECONDS        overall deadline (default 120)

Certificate issuance (DPS signs a CSR and returns the device's X.509 certificate; https://github.com/dps-mqtt/dps-mqtt/blob/main/docs/cli.md)
  --certificate [TYPE]     generate a key and CSR: ec-p384 (default), ec-p256 or rsa-2048
  --csr FILE               or send your own CSR (PEM or DER); then no device.key is written
  --out DIR                write DIR/device.key (0600), DIR/device-chain.pem, DIR/registration.json
  --renew-before 7d|20%    reuse DIR's certificate, without contacting DPS, while more than this
                           time (or share of its lifetime) is left
  --force                  replace DIR's files even when they are corrupt or another device's

Output
  --json                   print one JSON object on stdout: the result plus connectionString,
                           or { "error": {...} }
  --trace                  print every MQTT packet on stderr (secrets redacted)
  -q, --quiet              no progress lines
  -h, --help               this help

Exit codes: 0 assigned, 2 bad input, 3 credentials refused, 4 service error or registration
failed/disabled (or CSR refused, issued chain failed a check), 5 timeout, 6 network/TLS/proxy
failure, 7 --out DIR corrupt/another device's/unwritable, 130 interrupted (SIGINT), 143 terminated
(SIGTERM) (https://github.com/dps-mqtt/dps-mqtt/blob/main/docs/cli.md).

Examples
  export ${ENV.symmetricKey}='...'
  dps-mqtt register --id-scope 0ne0012345A --registration-id sensor-042

  dps-mqtt register --id-scope 0ne0012345A --registration-id sensor-042 --group-key "$GROUP_KEY" --json

  dps-mqtt register --id-scope 0ne0012345A --cert device.pem --key device.key --transport mqtt

  dps-mqtt register --endpoint localhost:8443 --ca ~/.dps-mqtt/emulator/ca.pem \\
    --id-scope 0ne00000000 --registration-id my-device --group-key "$GROUP_KEY"

  dps-mqtt register ... --certificate --out /var/lib/device-cert --renew-before 20%
`;

export type RegisterFunction = (
  options: ProvisioningClientOptions,
  call?: RegisterCallOptions,
) => Promise<RegistrationResult>;

export interface RegisterRunOptions {
  /** The command name used in messages: `dps-mqtt register`, `dps-mqtt demo`. */
  command: string;
  /** Show progress lines on stderr. */
  progress: boolean;
  /** The client's register(); loaded on first use by default (tests pass a fake). */
  register?: RegisterFunction;
  /**
   * Turns the result into what stdout gets, instead of the default (--certificate writes its files
   * here); what it throws is reported like a registration error.
   */
  present?: (result: RegistrationResult) => Promise<string>;
  /** The command line, for the `npx dps-mqtt diagnose ...` line printed under a failure (same flags). */
  argv?: readonly string[];
}

export async function runRegister(
  argv: string[],
  io: CliIo,
  registerFunction?: RegisterFunction,
): Promise<number> {
  const command = 'dps-mqtt register';
  let invocation: RegisterInvocation | 'help';
  try {
    invocation = parseRegisterArgs(argv, io.env);
  } catch (error) {
    return reportError(command, error, io, argv.includes('--json'), []);
  }
  if (invocation === 'help') {
    io.stdout.write(REGISTER_USAGE);
    return ExitCode.ok;
  }
  const run: RegisterRunOptions = {
    command,
    progress: io.stderrIsTTY && !invocation.quiet,
    ...(registerFunction ? { register: registerFunction } : {}),
    argv,
  };
  if (invocation.certificateOutput !== undefined) {
    const { registerCertificateAndReport } = await import('./register-certificate.js');
    return registerCertificateAndReport(invocation, invocation.certificateOutput, io, run, {
      registerAndReport,
      reportError,
    });
  }
  return registerAndReport(invocation, io, run);
}

/** Registers with Ctrl+C wired to an AbortSignal, prints the result or the error, returns the exit code. */
export async function registerAndReport(
  invocation: RegisterInvocation,
  io: CliIo,
  run: RegisterRunOptions,
): Promise<number> {
  const { json, secrets } = invocation;
  const options: ProvisioningClientOptions = { ...invocation.options };
  if (run.progress) {
    options.onProgress = progressPrinter(
      io.stderr,
      { endpoint: options.endpoint, transport: options.transport },
      secrets,
    );
  }
  // The client redacts its packets; the CLI scrubs them once more with the secrets it knows.
  if (invocation.trace) options.trace = (line) => io.stderr.write(`${redact(line, secrets)}\n`);

  // SIGTERM (a service manager, a CI runner, `timeout`) stops the registration as cleanly as Ctrl+C does:
  // the connection is closed and the error printed, and the exit code tells the two apart (143, 130).
  const controller = new AbortController();
  let stoppedBy: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (stoppedBy === undefined) {
      stoppedBy = signal;
      io.stderr.write(
        signal === 'SIGINT'
          ? `${run.command}: interrupted, closing the connection (Ctrl+C again to quit now)\n`
          : `${run.command}: terminated (SIGTERM), closing the connection\n`,
      );
      controller.abort();
    } else {
      process.exit(stoppedBy === 'SIGTERM' ? ExitCode.terminated : ExitCode.aborted);
    }
  };
  const onSigint = (): void => onSignal('SIGINT');
  const onSigterm = (): void => onSignal('SIGTERM');
  // `on`, not `once`: a second signal must reach the handler instead of Node's default.
  io.signals.on('SIGINT', onSigint);
  io.signals.on('SIGTERM', onSigterm);
  try {
    const { deviceConnectionString, resolveDeviceKey } = await import('../../client/connection-string.js');
    // Known before the request so that it is scrubbed from every trace line and error too.
    const deviceKey = resolveDeviceKey(options.security, options.registrationId);
    if (deviceKey !== undefined) secrets.push(deviceKey);
    const register = run.register ?? (await import('../../client/register.js')).register;
    const result = await register(options, { signal: controller.signal });
    if (result.issuedCertificate?.privateKeyPem !== undefined)
      secrets.push(result.issuedCertificate.privateKeyPem);
    if (run.present !== undefined) {
      io.stdout.write(await run.present(result));
      return ExitCode.ok;
    }
    const connectionString = deviceConnectionString(result, deviceKey);
    io.stdout.write(
      json
        ? `${JSON.stringify(resultJson(result, connectionString))}\n`
        : formatResult(result, connectionString),
    );
    return ExitCode.ok;
  } catch (error) {
    // Loaded only on failure: a successful registration does not pay for it.
    const diagnoseCommand =
      run.argv === undefined
        ? undefined
        : (await import('../diagnose-suggestion.js')).diagnoseCommandFor(run.argv);
    const code = reportError(run.command, error, io, json, secrets, diagnoseCommand);
    return stoppedBy === 'SIGTERM' && code === ExitCode.aborted ? ExitCode.terminated : code;
  } finally {
    io.signals.off('SIGINT', onSigint);
    io.signals.off('SIGTERM', onSigterm);
  }
}

/** One line on stderr; with --json also `{ "error": ... }` on stdout. Returns the exit code. */
export function reportError(
  command: string,
  error: unknown,
  io: Pick<CliIo, 'stdout' | 'stderr'>,
  json: boolean,
  secrets: readonly string[],
  diagnoseCommand?: string,
): number {
  const exitCode = exitCodeFor(error);
  // Refusals and failures on the way (not bad input, not an interrupt) are what diagnose explains.
  const suggest = diagnoseCommand !== undefined && DIAGNOSABLE_EXIT_CODES.has(exitCode);
  const line = formatError(command, error, secrets);
  // Still one line: the suggestion closes it.
  io.stderr.write(
    suggest ? line.replace(/\n$/, `; run "${redact(diagnoseCommand, secrets)}" for details\n`) : line,
  );
  if (json) {
    const body = errorJson(error, secrets);
    if (suggest) body.error.diagnose = redact(diagnoseCommand, secrets);
    io.stdout.write(`${JSON.stringify(body)}\n`);
  }
  return exitCode;
}

const DIAGNOSABLE_EXIT_CODES = new Set<number>([
  ExitCode.credentials,
  ExitCode.service,
  ExitCode.timeout,
  ExitCode.network,
]);
