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

Output
  --json                   print one JSON object on stdout: the result plus connectionString,
                           or { "error": {...} }
  --trace                  print every MQTT packet on stderr (secrets redacted)
  -q, --quiet              no progress lines
  -h, --help               this help

Exit codes: 0 assigned, 2 bad input, 3 credentials refused, 4 service error or registration
failed/disabled, 5 timeout, 6 network/TLS/proxy failure, 130 interrupted (docs/cli.md).

Examples
  export ${ENV.symmetricKey}='...'
  dps-mqtt register --id-scope 0ne0012345A --registration-id sensor-042

  dps-mqtt register --id-scope 0ne0012345A --registration-id sensor-042 --group-key "$GROUP_KEY" --json

  dps-mqtt register --id-scope 0ne0012345A --cert device.pem --key device.key --transport mqtt

  dps-mqtt register --endpoint localhost:8443 --ca ~/.dps-mqtt/emulator/ca.pem \\
    --id-scope 0ne00000000 --registration-id my-device --group-key "$GROUP_KEY"
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
  return registerAndReport(invocation, io, {
    command,
    progress: io.stderrIsTTY && !invocation.quiet,
    ...(registerFunction ? { register: registerFunction } : {}),
  });
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

  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts += 1;
    if (interrupts === 1) {
      io.stderr.write(`${run.command}: interrupted, closing the connection (Ctrl+C again to quit now)\n`);
      controller.abort();
    } else {
      process.exit(ExitCode.aborted);
    }
  };
  io.signals.once('SIGINT', onSigint);
  try {
    const { deviceConnectionString, resolveDeviceKey } = await import('../../client/connection-string.js');
    // Known before the request so that it is scrubbed from every trace line and error too.
    const deviceKey = resolveDeviceKey(options.security, options.registrationId);
    if (deviceKey !== undefined) secrets.push(deviceKey);
    const register = run.register ?? (await import('../../client/register.js')).register;
    const result = await register(options, { signal: controller.signal });
    const connectionString = deviceConnectionString(result, deviceKey);
    io.stdout.write(
      json
        ? `${JSON.stringify(resultJson(result, connectionString))}\n`
        : formatResult(result, connectionString),
    );
    return ExitCode.ok;
  } catch (error) {
    return reportError(run.command, error, io, json, secrets);
  } finally {
    io.signals.off('SIGINT', onSigint);
  }
}

/** One line on stderr; with --json also `{ "error": ... }` on stdout. Returns the exit code. */
export function reportError(
  command: string,
  error: unknown,
  io: Pick<CliIo, 'stdout' | 'stderr'>,
  json: boolean,
  secrets: readonly string[],
): number {
  io.stderr.write(formatError(command, error, secrets));
  if (json) io.stdout.write(`${JSON.stringify(errorJson(error, secrets))}\n`);
  return exitCodeFor(error);
}
