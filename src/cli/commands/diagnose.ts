// `dps-mqtt diagnose`: the register flags → diagnose() → a checklist (or --json) and an exit code that
// names the first failing step.
import type { TransportKind } from '../../client/types.js';
import type { DiagnoseOptions, DiagnosisReport, StepResult } from '../../diagnose/types.js';
import { deriveDeviceKey } from '../../protocol/sas.js';
import { ENV, parseFlags, parseRegisterArgs, REGISTER_FLAGS, UsageError } from '../args.js';
import { exitCodeOf, formatJson, formatStep, formatVerdict, transportHeading } from '../diagnose-output.js';
import { ExitCode } from '../exit-codes.js';
import type { CliIo } from '../output.js';

export const DIAGNOSE_USAGE = `Usage: dps-mqtt diagnose --id-scope SCOPE --registration-id ID (--symmetric-key KEY | --group-key KEY | --cert FILE --key FILE) [options]

Finds out why a device cannot provision: checks each step from this machine to DPS on its own, times
it, and stops at the first that fails, with what it saw and what to do. Takes register's connection
and credential flags (and HTTPS_PROXY, NO_PROXY, ${ENV.symmetricKey}, ${ENV.groupKey}, ...).

Steps: input, dns, tcp, proxy, tls, tls-inspection, websocket, clock, connect, subscribe, register

Options (besides register's --id-scope, --registration-id, credentials, --endpoint, --ca, --proxy,
--no-proxy, --insecure, --api-version, --payload)
  --transport mqtt-ws|mqtt|both   which transport to check (default mqtt-ws); both: 443 and 8883
  --ws-port PORT          with --transport both: the MQTT-over-WebSocket port (default 443)
  --mqtt-port PORT        with --transport both: the MQTT-over-TLS port (default 8883)
  --register              also run a full registration after SUBSCRIBE
  --timeout SECONDS       bound on each step (default 10)
  --json                  print one JSON object with every step on stdout
  -h, --help              this help

Exit codes: 0 every step passed, 2 bad usage, 10 input, 11 dns, 12 tcp, 13 proxy, 14 tls,
15 tls-inspection, 16 websocket, 17 clock, 18 connect, 19 subscribe, 20 register (the first failing
step), 130 interrupted. Secrets never appear in the output, --json included.

Examples
  dps-mqtt diagnose --id-scope 0ne0012345A --registration-id sensor-042 --group-key "$GROUP_KEY"
  dps-mqtt diagnose ... --transport both --register
  dps-mqtt diagnose --endpoint 127.0.0.1:8443 --ca ~/.dps-mqtt/emulator/ca.pem ... --json
`;

const DIAGNOSE_FLAGS = {
  ...REGISTER_FLAGS,
  'ws-port': { type: 'string' },
  'mqtt-port': { type: 'string' },
  register: { type: 'boolean' },
} as const;

/** Flags of register that diagnose does not take: certificate issuance and register's own output. */
const NOT_FOR_DIAGNOSE = ['certificate', 'csr', 'out', 'renew-before', 'force', 'pipeline', 'trace', 'quiet'];
/** diagnose's own flags, not passed on to register's parser. */
const OWN_FLAGS = ['ws-port', 'mqtt-port', 'register', 'json', 'help', 'transport', 'timeout'];

export type DiagnoseFunction = (options: DiagnoseOptions) => Promise<DiagnosisReport>;

export async function runDiagnose(
  argv: string[],
  io: CliIo,
  diagnoseFunction?: DiagnoseFunction,
): Promise<number> {
  const command = 'dps-mqtt diagnose';
  let flags: Record<string, string | boolean | undefined>;
  let transport: TransportKind | 'both';
  let ports: { webSocketPort?: number; mqttPort?: number };
  let stepTimeoutMs: number | undefined;
  try {
    flags = parseFlags(argv, DIAGNOSE_FLAGS) as Record<string, string | boolean | undefined>;
    if (flags.help) {
      io.stdout.write(DIAGNOSE_USAGE);
      return ExitCode.ok;
    }
    const unsupported = NOT_FOR_DIAGNOSE.find((flag) => flags[flag] !== undefined);
    if (unsupported !== undefined) {
      throw new UsageError(
        `--${unsupported} is a register option: diagnose does not take it`,
        `--${unsupported}`,
      );
    }
    transport = parseTransport(flags.transport);
    ports = {
      ...(flags['ws-port'] === undefined ? {} : { webSocketPort: parsePort('--ws-port', flags['ws-port']) }),
      ...(flags['mqtt-port'] === undefined ? {} : { mqttPort: parsePort('--mqtt-port', flags['mqtt-port']) }),
    };
    stepTimeoutMs = flags.timeout === undefined ? undefined : parseSeconds(String(flags.timeout));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`${command}: ${error.message} (run "${command} --help" for the options)\n`);
    return ExitCode.usage;
  }
  const json = flags.json === true;

  // The remaining flags are register's: parsed (and checked) by register's own parser.
  const registerArgv: string[] = [];
  for (const [flag, value] of Object.entries(flags)) {
    if (OWN_FLAGS.includes(flag) || value === undefined || value === false) continue;
    registerArgv.push(value === true ? `--${flag}` : `--${flag}=${value}`);
  }
  if (transport !== 'both') registerArgv.push(`--transport=${transport}`);

  const secrets: string[] = [];
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  io.signals.on('SIGINT', onSigint);
  const headed = new Set<TransportKind>();
  const print = (kind: TransportKind, result: StepResult, endpoint: string): void => {
    if (json) return;
    if (!headed.has(kind)) {
      headed.add(kind);
      io.stdout.write(`${headed.size > 1 ? '\n' : ''}${transportHeading(kind, endpoint)}`);
    }
    io.stdout.write(formatStep(result, secrets));
  };
  try {
    let report: DiagnosisReport;
    try {
      const invocation = parseRegisterArgs(registerArgv, io.env);
      if (invocation === 'help') return ExitCode.ok;
      secrets.push(...invocation.secrets);
      const { security } = invocation.options;
      // Derived keys are secrets too: the group member's key, and the "was it a group key?" retry's.
      const given = security as { symmetricKey?: string; groupKey?: string };
      const key = given.symmetricKey ?? given.groupKey;
      const registrationId = invocation.options.registrationId;
      if (key !== undefined && registrationId !== undefined)
        secrets.push(deriveDeviceKey(key, registrationId));
      const run = diagnoseFunction ?? (await import('../../diagnose/diagnose.js')).diagnose;
      report = await run({
        ...invocation.options,
        transport,
        ...ports,
        ...(stepTimeoutMs === undefined ? {} : { stepTimeoutMs }),
        ...(flags.register === true ? { register: true } : {}),
        signal: controller.signal,
        env: io.env as NodeJS.ProcessEnv,
        onStep: (kind, result, endpoint) => print(kind, result, endpoint),
      } as DiagnoseOptions);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      // register's parser refused the input: that is the input step failing.
      const result: StepResult = { step: 'input', status: 'fail', durationMs: 0, summary: error.message };
      const kinds: TransportKind[] = transport === 'both' ? ['mqtt-ws', 'mqtt'] : [transport];
      report = {
        ok: false,
        failedStep: 'input',
        working: [],
        transports: kinds.map((kind) => ({
          transport: kind,
          endpoint: '',
          ok: false,
          failedStep: 'input',
          steps: [result],
        })),
      };
      if (!json) io.stdout.write(formatStep(result, secrets));
    }
    if (controller.signal.aborted) {
      io.stderr.write(`${command}: interrupted\n`);
      return ExitCode.aborted;
    }
    io.stdout.write(json ? formatJson(report, secrets) : formatVerdict(report, secrets));
    return exitCodeOf(report);
  } finally {
    io.signals.off('SIGINT', onSigint);
  }
}

function parseTransport(value: string | boolean | undefined): TransportKind | 'both' {
  if (value === undefined) return 'mqtt-ws';
  if (value === 'mqtt-ws' || value === 'mqtt' || value === 'both') return value;
  throw new UsageError(
    `--transport must be mqtt-ws (MQTT over WebSocket), mqtt (MQTT over TLS) or both, not ${JSON.stringify(value)}`,
    '--transport',
  );
}

function parsePort(flag: string, value: string | boolean): number {
  const port = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || port < 1 || port > 65_535) {
    throw new UsageError(`${flag} must be a port number (1-65535), not ${JSON.stringify(value)}`, flag);
  }
  return port;
}

function parseSeconds(text: string): number {
  const seconds = Number(text);
  if (text.trim() === '' || !Number.isFinite(seconds) || seconds <= 0 || seconds > 600) {
    throw new UsageError(
      `--timeout must be a number of seconds per step (up to 600), not ${JSON.stringify(text)}`,
      '--timeout',
    );
  }
  return Math.round(seconds * 1000);
}
