// `dps-mqtt fleet`: flags → registerFleet() → a progress line, a JSONL results file and a summary.
// Ctrl+C stops starting devices and lets those in flight finish; a second Ctrl+C aborts them. Either way
// the results file holds one whole line per started device and the summary is printed.

import type { FleetDeviceResult, FleetSummary } from '../../fleet/types.js';
import { redact } from '../../protocol/redact.js';
import { ENV } from '../args.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { type FleetInvocation, parseFleetArgs } from '../fleet-args.js';
import { clientCost, formatFleetSummary, progressLine } from '../fleet-output.js';
import { type CliIo, errorJson, formatError } from '../output.js';
import { ResultsFile } from '../results-file.js';

const COMMAND = 'dps-mqtt fleet';
const PROGRESS_INTERVAL_MS = 250;

export const FLEET_USAGE = `Usage: dps-mqtt fleet --id-scope SCOPE (--count N (--group-key KEY | --issue-certs ...) | --devices FILE) [options]

Registers many devices at once, to onboard a batch or to load-test a DPS set-up: a progress line on a
terminal, one JSON line per device in --out FILE, and a summary at the end.

Devices (one of)
  --count N                N devices, registration ids PREFIX0 ... PREFIX(N-1)
    --prefix TEXT          registration id prefix (default device-)
    --start K              number the ids from K (default 0)
    --group-key KEY        the symmetric-key enrollment group's key; keys derived per device
                                                                         (env ${ENV.groupKey})
    --issue-certs          X.509: make each device a certificate (CN = registration id, EC P-256)
      --group-ca-cert FILE   signed by this CA of the X.509 enrollment group (PEM)
      --group-ca-key FILE    and its private key (PEM)
      --passphrase TEXT      the CA key's passphrase                     (env ${ENV.passphrase})
  --devices FILE           a CSV (header row: registrationId[,symmetricKey][,certificate,privateKey])
                           or JSON Lines file ({"registrationId":...,"symmetricKey":...,"payload":...});
                           devices without a credential use --group-key

Pace (global: across all workers)
  --concurrency C          registrations in flight at once (default 100)
  --rate R                 registrations started per second: 50, 50/s or 3000/min (default: no
                           limit). A 429 from DPS slows the whole run (pause for its retry-after, then
                           half the rate and concurrency, growing back), and is not a failure
  --workers W              worker threads running registrations (default: the number of cores;
                           0 runs them on the main thread)
  --shard I/N              register only slice I of N (0 <= I < N; device p is in slice p mod N),
                           e.g. --shard "$JOB_COMPLETION_INDEX/8" in a Kubernetes Indexed Job

Connection (as for dps-mqtt register)
  --endpoint HOST[:PORT]   default global.azure-devices-provisioning.net  (env ${ENV.endpoint})
  --transport mqtt-ws|mqtt MQTT over WebSocket on 443 (default) or MQTT over TLS on 8883
  --ca FILE                trust only this CA (PEM) for the DPS server, e.g. the emulator's
  --proxy URL | --no-proxy HTTP CONNECT proxy (default: HTTPS_PROXY unless NO_PROXY matches)
  --pipeline               do not wait for CONNACK/SUBACK before the request
  --payload JSON|@FILE     custom allocation data sent by every device
  --api-version DATE       default 2019-03-31
  --timeout SECONDS        each device's deadline (default 120)

Output
  --out FILE               one JSON line per device as it completes (- for stdout): registration id,
                           hub, device id, timings, or the error with its phase and status
  --include-keys           also each device's key (or issued certificate and key) in --out FILE,
                           which is then created owner-only (0600)
  --json                   the summary as one JSON object on stdout
  -q, --quiet              no progress line (there is none when stderr is not a terminal)
  -h, --help               this help

Exit codes: 0 every device assigned; 2 bad input; otherwise that of the most common failure, as for
register (3 credentials, 4 service, 5 timeout, 6 network); 130 interrupted (SIGINT), 143 terminated.

Examples
  dps-mqtt fleet --id-scope 0ne0012345A --count 1000 --prefix line3- --group-key "$GROUP_KEY" \\
    --rate 50 --out line3.jsonl

  dps-mqtt fleet --endpoint localhost:8443 --ca ~/.dps-mqtt/emulator/ca.pem --id-scope 0ne00000000 \\
    --count 10000 --issue-certs --group-ca-cert ~/.dps-mqtt/emulator/ca.pem \\
    --group-ca-key ~/.dps-mqtt/emulator/ca.key --out fleet.jsonl

  dps-mqtt fleet --id-scope 0ne0012345A --devices batch.csv --shard 2/8 --out shard-2.jsonl
`;

/** The exit code of the most common failure, mapped as for `dps-mqtt register`. */
function failureExitCode(summary: FleetSummary): number {
  const [group] = summary.failures;
  if (group === undefined) return ExitCode.ok;
  return exitCodeFor({ code: group.code, statusCode: group.statusCode });
}

export async function runFleet(argv: string[], io: CliIo): Promise<number> {
  let invocation: FleetInvocation | 'help';
  try {
    invocation = parseFleetArgs(argv, io.env);
  } catch (error) {
    return reportFailure(error, io, argv.includes('--json'), []);
  }
  if (invocation === 'help') {
    io.stdout.write(FLEET_USAGE);
    return ExitCode.ok;
  }
  const { options, secrets, json } = invocation;
  const cpuStart = process.cpuUsage();
  let file: ResultsFile | undefined;
  const toStdout = invocation.out === '-';
  const summaryStream = toStdout ? io.stderr : io.stdout;
  const showProgress = io.stderrIsTTY && !invocation.quiet;
  let stoppedBy: 'SIGINT' | 'SIGTERM' | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  let run: ReturnType<typeof import('../../fleet/register-fleet.js').registerFleet> | undefined;
  const onSigint = (): void => {
    if (stoppedBy === undefined) {
      stoppedBy = 'SIGINT';
      io.stderr.write(
        `${showProgress ? '\r\x1b[K' : ''}${COMMAND}: interrupted: starting no more devices, waiting for those in flight (Ctrl+C again aborts them)\n`,
      );
      run?.stop();
    } else {
      io.stderr.write(`${COMMAND}: aborting the registrations in flight\n`);
      run?.abort();
    }
  };
  const onSigterm = (): void => {
    stoppedBy = 'SIGTERM';
    io.stderr.write(`${COMMAND}: terminated (SIGTERM): aborting the registrations in flight\n`);
    run?.abort();
  };
  io.signals.on('SIGINT', onSigint);
  io.signals.on('SIGTERM', onSigterm);
  try {
    if (invocation.out !== undefined && !toStdout) {
      file = ResultsFile.open(invocation.out, { secret: options.includeKeys === true });
    }
    const { registerFleet } = await import('../../fleet/register-fleet.js');
    run = registerFleet(options);
    if (stoppedBy !== undefined) run.abort();
    const activeRun = run;
    const writeProgress = (): void => {
      const summary = activeRun.summary();
      io.stderr.write(
        `\r\x1b[K${progressLine({
          done: summary.assigned + summary.failed,
          failed: summary.failed,
          devices: summary.devices,
          elapsedMs: summary.wallMs,
          p50: summary.latencyMs.p50,
          p95: summary.latencyMs.p95,
        })}`,
      );
    };
    progressTimer = setInterval(() => {
      file?.flush();
      if (showProgress) writeProgress();
    }, PROGRESS_INTERVAL_MS);
    for await (const result of run) {
      const line = JSON.stringify(scrubbed(result, secrets));
      if (file) file.append(line);
      else if (toStdout) io.stdout.write(`${line}\n`);
    }
    clearInterval(progressTimer);
    if (showProgress) {
      writeProgress();
      io.stderr.write('\n');
    }
    file?.close();
    const closedFile = file;
    file = undefined;
    const summary = run.summary();
    const cost = clientCost(summary.started, cpuStart);
    const interrupted =
      stoppedBy === 'SIGINT' ? 'interrupted' : stoppedBy === 'SIGTERM' ? 'terminated' : undefined;
    const results = closedFile ? { path: closedFile.path, lines: closedFile.lines } : undefined;
    summaryStream.write(
      json
        ? `${JSON.stringify({ ...summary, client: cost, ...(results ? { results } : {}), ...(interrupted ? { interrupted: true } : {}) })}\n`
        : formatFleetSummary(summary, cost, results, interrupted),
    );
    if (stoppedBy === 'SIGINT') return ExitCode.aborted;
    if (stoppedBy === 'SIGTERM') return ExitCode.terminated;
    return failureExitCode(summary);
  } catch (error) {
    return reportFailure(error, io, json, secrets);
  } finally {
    clearInterval(progressTimer);
    file?.close();
    io.signals.off('SIGINT', onSigint);
    io.signals.off('SIGTERM', onSigterm);
  }
}

/** An error message never carries the group key or another secret the CLI knows. */
function scrubbed(result: FleetDeviceResult, secrets: readonly string[]): FleetDeviceResult {
  if (result.status !== 'failed') return result;
  return { ...result, error: { ...result.error, message: redact(result.error.message, secrets) } };
}

function reportFailure(error: unknown, io: CliIo, json: boolean, secrets: readonly string[]): number {
  io.stderr.write(formatError(COMMAND, error, secrets));
  if (json) io.stdout.write(`${JSON.stringify(errorJson(error, secrets))}\n`);
  return exitCodeFor(error);
}
