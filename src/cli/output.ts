// What `dps-mqtt` prints: progress lines on stderr, the result for people or as one JSON object on
// stdout, and errors as one line. Everything derived from options or errors passes through redact().
import type { ProgressEvent, RegistrationResult, TransportKind } from '../client/types.js';
import { flagHintForReason } from '../diagnose/flag-hints.js';
import type { TransportFailureReason } from '../protocol/errors.js';
import { redact } from '../protocol/redact.js';
import { UsageError } from './args.js';

export interface Writable {
  write(text: string): unknown;
}

/** The process as a command sees it; tests pass their own. */
export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  /** Progress is shown when stderr is a terminal. */
  stderrIsTTY: boolean;
  env: Record<string, string | undefined>;
  /** Where SIGINT and SIGTERM come from. */
  signals: Pick<NodeJS.Process, 'on' | 'once' | 'off'>;
}

export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stderrIsTTY: process.stderr.isTTY === true,
    env: process.env,
    signals: process,
  };
}

const TRANSPORT_NAMES: Record<TransportKind, string> = {
  'mqtt-ws': 'MQTT over WebSocket',
  mqtt: 'MQTT over TLS',
};

export const DEFAULT_ENDPOINT = 'global.azure-devices-provisioning.net';

export interface ProgressContext {
  endpoint?: string | undefined;
  transport?: TransportKind | undefined;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

/** One line for a progress event, e.g. `assigning (status query 2, next in 1.0 s)`. */
export function describeProgress(event: ProgressEvent, context: ProgressContext = {}): string {
  switch (event.type) {
    case 'connecting': {
      const target = `${context.endpoint ?? DEFAULT_ENDPOINT} over ${TRANSPORT_NAMES[context.transport ?? 'mqtt-ws']}`;
      return event.attempt > 1
        ? `connecting to ${target} (attempt ${event.attempt})`
        : `connecting to ${target}`;
    }
    case 'connected':
      return 'connected';
    case 'registering':
      return 'registering';
    case 'assigning':
      // pollCount numbers the status query about to be sent, after retry-after.
      return `assigning: status query ${event.pollCount} in ${seconds(event.retryAfterMs)} (operation ${event.operationId})`;
    case 'transient': {
      const status = event.statusCode === undefined ? '' : ` (status ${event.statusCode})`;
      return `transient failure${status}: ${event.reason}; retrying in ${seconds(event.waitMs)} (attempt ${event.attempt})`;
    }
    case 'assigned': {
      const assigned = `assigned to ${event.assignedHub} as ${event.deviceId}`;
      const moved = event.substatus === undefined ? undefined : MOVED_SUBSTATUS.get(event.substatus);
      // The registration state names no previous hub: the substatus is what says the device moved.
      return moved === undefined
        ? assigned
        : `${assigned}, moved from its previous hub (${event.substatus}: ${moved})`;
    }
  }
}

/** The substatuses DPS reports when a registration moved the device to another IoT hub, in words. */
const MOVED_SUBSTATUS = new Map<string, string>([
  ['deviceDataMigrated', 'its twin and device id were migrated from the previous hub'],
  ['deviceDataReset', "its twin was reset to the enrollment's initial twin"],
  ['reprovisionedToInitialAssignment', 'back on a hub it was assigned to before'],
]);

/** An onProgress callback that prints `[ 0.2 s] connected` lines, secrets redacted. */
export function progressPrinter(
  stream: Writable,
  context: ProgressContext,
  secrets: readonly string[],
  now: () => number = Date.now,
): (event: ProgressEvent) => void {
  const start = now();
  return (event) => {
    const elapsed = ((now() - start) / 1000).toFixed(2).padStart(6);
    stream.write(`[${elapsed} s] ${redact(describeProgress(event, context), secrets)}\n`);
  };
}

/** The `--json` result: the RegistrationResult plus how the device connects to its hub. */
export function resultJson(
  result: RegistrationResult,
  connectionString: string | undefined,
): RegistrationResult & { connectionString?: string } {
  return connectionString === undefined ? { ...result } : { ...result, connectionString };
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** The result for people. */
export function formatResult(result: RegistrationResult, connectionString: string | undefined): string {
  const rows: Array<[string, string]> = [
    ['registration id', result.registrationId],
    ['device id', result.deviceId],
    ['IoT hub', result.assignedHub],
    ['status', result.substatus ? `${result.status} (${result.substatus})` : result.status],
    ['operation id', result.operationId],
    ['authentication', result.attestation === 'x509' ? 'X.509 certificate' : 'symmetric key'],
  ];
  if (result.payload !== undefined) rows.push(['payload', JSON.stringify(result.payload)]);
  if (result.trustBundle !== undefined) rows.push(['trust bundle', 'returned (see --json)']);
  const { timings } = result;
  rows.push([
    'took',
    `${timings.totalMs} ms (${plural(timings.connections, 'connection')}, ${plural(timings.polls, 'status query', 'status queries')}, ${plural(timings.transientRetries, 'retry', 'retries')})`,
  ]);
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  let text = `Device ${result.deviceId} is assigned to ${result.assignedHub}\n`;
  for (const [label, value] of rows) text += `  ${`${label}:`.padEnd(width)}${value}\n`;
  if (connectionString !== undefined)
    text += `\nDevice connection string (IoT Hub):\n  ${connectionString}\n`;
  return text;
}

export interface ErrorJson {
  error: {
    code: string;
    phase: string | undefined;
    message: string;
    hint: string | undefined;
    statusCode?: number;
    errorCode?: number;
    trackingId?: string;
    /** What went wrong last before a timeout, e.g. the refused connection that kept being retried. */
    cause?: { code: string; phase: string | undefined; message: string };
    /** `npx dps-mqtt diagnose ...` with the same flags (secrets as placeholders), for a failure. */
    diagnose?: string;
  };
}

interface ErrorFields {
  code?: unknown;
  phase?: unknown;
  hint?: unknown;
  statusCode?: unknown;
  errorCode?: unknown;
  trackingId?: unknown;
  cause?: unknown;
  reason?: unknown;
}

/** CLI wording for errors the library leaves without a hint. */
function cliHint(code: string | undefined, phase: string | undefined): string | undefined {
  if (code === 'ERR_TRANSPORT' && phase === 'tls') {
    return 'pass the CA that issued the server certificate with --ca FILE (the emulator prints its CA path)';
  }
  if (code === 'ERR_PROXY')
    return 'check --proxy or HTTPS_PROXY (and its credentials), or bypass it with --no-proxy';
  return undefined;
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** `{ "error": { code, phase, message, hint, statusCode?, errorCode?, trackingId? } }`, redacted. */
export function errorJson(error: unknown, secrets: readonly string[] = []): ErrorJson {
  const fields: ErrorFields = typeof error === 'object' && error !== null ? (error as ErrorFields) : {};
  const message = redact(error instanceof Error ? error.message : String(error), secrets);
  const code = stringOrUndefined(fields.code);
  const phase = stringOrUndefined(fields.phase);
  // A failure whose reason the IO knew gets advice in flags, not in the library's option names.
  const hint =
    flagHintForReason(stringOrUndefined(fields.reason) as TransportFailureReason | undefined) ??
    stringOrUndefined(fields.hint) ??
    cliHint(code, phase);
  const body: ErrorJson['error'] =
    error instanceof UsageError
      ? { code: 'ERR_INVALID_INPUT', phase: 'input', message, hint: 'run with --help for the options' }
      : {
          code: code ?? 'ERR_INTERNAL',
          phase,
          message,
          hint: hint === undefined ? undefined : redact(hint, secrets),
        };
  if (typeof fields.statusCode === 'number') body.statusCode = fields.statusCode;
  if (typeof fields.errorCode === 'number') body.errorCode = fields.errorCode;
  if (typeof fields.trackingId === 'string') body.trackingId = fields.trackingId;
  const cause = fields.cause;
  if (cause instanceof Error && typeof (cause as ErrorFields).code === 'string') {
    body.cause = {
      code: String((cause as ErrorFields).code),
      phase: stringOrUndefined((cause as ErrorFields).phase),
      message: redact(cause.message, secrets),
    };
  }
  return { error: body };
}

/** One line for stderr: what happened, where, and what to do. */
export function formatError(command: string, error: unknown, secrets: readonly string[] = []): string {
  const { error: details } = errorJson(error, secrets);
  if (error instanceof UsageError) {
    return `${command}: ${details.message} (run "${command} --help" for the options)\n`;
  }
  const where = details.phase === undefined ? details.code : `${details.code} during ${details.phase}`;
  const service = details.trackingId === undefined ? '' : `, tracking id ${details.trackingId}`;
  const hint = details.hint === undefined ? '' : `; hint: ${details.hint}`;
  return `${command}: error: ${details.message} [${where}${service}]${hint}\n`;
}
