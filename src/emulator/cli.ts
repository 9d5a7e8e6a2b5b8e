// `dps-mqtt emulator`: parse flags, start the emulator, print the ready line, stop on SIGINT/SIGTERM.
// stdout carries one machine-readable JSON line; people read stderr (hints, then the JSON log).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isValidRegistrationId, validateIdScope } from '../protocol/validate.js';
import { EmulatorDirectoryError } from './directory-error.js';
import {
  DEFAULT_CERTIFICATE_ISSUANCE,
  ISSUANCE_KEY_TYPES,
  type IssuanceKeyType,
  MAX_VALIDITY_DAYS,
  MIN_VALIDITY_DAYS,
} from './enrollments/certificate-policy.js';
import {
  DEMO_DEVICE_ID,
  DEMO_DEVICE_KEY,
  DEMO_GROUP_KEY,
  ENROLLMENT_KEY_SHAPE,
  invalidIotHubMessage,
  isEnrollmentKey,
  isIotHubHostName,
} from './enrollments/config.js';
import type { EnrollmentGroupConfig, IndividualEnrollmentConfig } from './enrollments/config-file.js';
import {
  DEFAULT_HOST,
  DEFAULT_MQTT_PORT,
  DEFAULT_RETRY_AFTER_SECONDS,
  DEFAULT_WSS_PORT,
  defaultPkiDir,
  type EmulatorOptions,
  type RunningEmulator,
  startEmulator,
} from './index.js';
import { jsonLinesLogger } from './log.js';
import { EmulatorDataDirInUseError } from './storage/data-dir-lock.js';

export const EMULATOR_USAGE = `Usage: dps-mqtt emulator [options]

A local Azure IoT Device Provisioning Service: MQTT over TLS and MQTT over WebSocket on loopback.

Listeners
  --host HOST                    interface to bind (default ${DEFAULT_HOST})
  --mqtt-port PORT               MQTT over TLS (default ${DEFAULT_MQTT_PORT}; 0 = any free port)
  --wss-port PORT                MQTT over WebSocket, path /$iothub/websocket (default ${DEFAULT_WSS_PORT}; 0 = any free port)
  --server-name NAME             extra DNS name or IP for the server certificate (repeatable)

Enrollments
  --config FILE                  enrollments JSON (schema in the documentation); without it, the demo enrollments
  --id-scope SCOPE               the ID scope (default 0ne00000000, or the config file's)
  --device ID=KEY                add an individual symmetric-key enrollment (repeatable)
  --group-key KEY                add a symmetric-key enrollment group "cli-group" (device keys derived)
  --group-ca FILE                add an X.509 enrollment group "cli-x509-group" trusting this CA
  --hub HOST                     linked IoT hub host name (repeatable; replaces the config's)

State
  --data-dir DIR                 keep the PKI, registrations and enrollments here (they survive a restart,
                                 even a kill -9); one emulator per directory
  --pki-dir DIR                  where the PKI lives without --data-dir (default ${defaultPkiDir()})

Behaviour (tests and benchmarks)
  --retry-after SECONDS          retry-after on 202 and 429 answers (default ${DEFAULT_RETRY_AFTER_SECONDS}; DPS sends about 3)
  --polls-before-assignment N    status queries answered 202 before the assignment (default 0)
  --assignment-delay MS          no assignment before this long after the register request (default 0)
  --throttle-first N             answer 429 to the first N requests
  --throttle-fraction F          answer 429 to this fraction (0..1) of the later requests
  --throttle-retry-after SECONDS retry-after sent with a 429
  --drop-before-request N[,N]    close the connection when the Nth request arrives, unanswered
  --drop-after-response N[,N]    close the connection right after answering the Nth request
  --drop-before-connack N[,N]    close the Nth connection when its CONNECT arrives, unanswered
  --drop-after-suback N[,N]      close the Nth subscribing connection right after its SUBACK
  --response-delay MS            hold every response back this long

Certificate issuance (a register request with a csr; an enrollment's own policy wins)
  --cert-validity-days N         lifetime of issued certificates, ${MIN_VALIDITY_DAYS} to ${MAX_VALIDITY_DAYS} days (default ${DEFAULT_CERTIFICATE_ISSUANCE.validityDays})
  --cert-key-types LIST          accepted CSR keys, of ec-p256,ec-p384,rsa (default all; rsa = RSA >= 2048 bits;
                                 ec-p384 alone = strict, as DPS's docs say)

Custom allocation (enrollments with allocationPolicy "custom")
  --webhook-timeout MS           a webhook that has not answered by then fails the registration (default 10000)
  --webhook-ca FILE              trust https: webhooks with this CA (PEM) instead of Node's defaults

Limits
  --connect-timeout MS           TLS, the WebSocket upgrade and CONNECT must be done within this (default 10000)
  --max-packet-bytes N           MQTT packets above this size close the connection (default 65536)

Output
  --quiet                        no log lines on stderr (the ready line is still printed)
  -h, --help                     this help

Exit codes: 0 stopped, 1 could not start, 2 bad usage, 3 data directory in use by another emulator,
4 stopped but writes to the data directory failed (printed on stderr)

Documentation (the enrollments JSON, the service API, certificate issuance):
  https://github.com/dps-mqtt/dps-mqtt/blob/main/docs/emulator.md
`;

export interface EmulatorCliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Where SIGINT/SIGTERM come from; the process by default. */
  signals: Pick<NodeJS.Process, 'once' | 'off'>;
}

class EmulatorUsageError extends Error {}

/** Exit codes of `dps-mqtt emulator` (docs/cli.md). */
export const EMULATOR_EXIT_CODES = {
  stopped: 0,
  couldNotStart: 1,
  badUsage: 2,
  /** Another emulator (a live process) holds the data directory; the message names it. */
  dataDirInUse: 3,
  /** Stopped, but writes to the data directory failed: some acknowledged state is not on disk. */
  stateNotSaved: 4,
} as const;

/**
 * Runs until SIGINT or SIGTERM; resolves with the exit code (0 stopped, 1 failed to start, 2 bad usage,
 * 3 data directory in use, 4 stopped with writes to the data directory failed).
 */
export async function runEmulatorCli(
  argv: string[],
  io: EmulatorCliIo = { stdout: process.stdout, stderr: process.stderr, signals: process },
): Promise<number> {
  let options: EmulatorOptions;
  try {
    const parsed = parseCliOptions(argv);
    if (parsed === 'help') {
      io.stdout.write(EMULATOR_USAGE);
      return 0;
    }
    // `quiet` is the CLI's, not an emulator option (startEmulator refuses unknown options).
    const { quiet, ...emulatorOptions } = parsed;
    options = emulatorOptions;
    if (!quiet) options.logger = jsonLinesLogger(io.stderr);
  } catch (error) {
    io.stderr.write(`dps-mqtt emulator: ${error instanceof Error ? error.message : String(error)}\n`);
    io.stderr.write('Run "dps-mqtt emulator --help" for the options.\n');
    return 2;
  }

  let emulator: RunningEmulator;
  try {
    emulator = await startEmulator(options);
  } catch (error) {
    if (error instanceof EmulatorDataDirInUseError) {
      io.stderr.write(`dps-mqtt emulator: could not start: ${error.message} (--data-dir DIR)\n`);
      return EMULATOR_EXIT_CODES.dataDirInUse;
    }
    const flag =
      error instanceof EmulatorDirectoryError
        ? ` (${error.option === 'dataDir' ? '--data-dir' : '--pki-dir'} DIR)`
        : '';
    io.stderr.write(
      `dps-mqtt emulator: could not start: ${error instanceof Error ? error.message : String(error)}${flag}\n`,
    );
    return 1;
  }

  // The signal handlers are in place before the ready line: whoever reads it may stop the emulator at once.
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      io.signals.off('SIGINT', stop);
      io.signals.off('SIGTERM', stop);
      if (!options.logger) io.stderr.write(`dps-mqtt emulator: ${signal}, stopping\n`);
      void emulator.close().then(resolve, resolve);
    };
    io.signals.once('SIGINT', stop);
    io.signals.once('SIGTERM', stop);
  });
  // Absolute, so the line still works from another directory (a relative --data-dir gives a relative path).
  const caPath = emulator.caPath === undefined ? undefined : resolve(emulator.caPath);
  io.stdout.write(
    `${JSON.stringify({
      event: 'ready',
      host: emulator.host,
      mqttPort: emulator.mqttPort,
      wssPort: emulator.wssPort,
      idScope: emulator.idScope,
      ca: caPath,
      serviceConnectionString: emulator.serviceConnectionString,
    })}\n`,
  );
  io.stderr.write(hints(emulator, caPath, options));
  await stopped;
  // Failed writes were logged as they happened; at exit they are said once more, whatever the log level.
  const storeErrors = emulator.storeErrors();
  if (storeErrors.length > 0) {
    io.stderr.write(
      `dps-mqtt emulator: stopped, but ${storeErrors.length} write${storeErrors.length === 1 ? '' : 's'} to the data directory failed: registrations or enrollments acknowledged since are not all on disk\n`,
    );
    for (const error of storeErrors) io.stderr.write(`  ${error.message}\n`);
    return EMULATOR_EXIT_CODES.stateNotSaved;
  }
  return EMULATOR_EXIT_CODES.stopped;
}

function parseCliOptions(argv: string[]): (EmulatorOptions & { quiet: boolean }) | 'help' {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new EmulatorUsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return 'help';

  const options: EmulatorOptions & { quiet: boolean } = { quiet: values.quiet ?? false };
  if (values.host !== undefined) options.host = values.host;
  if (values['mqtt-port'] !== undefined) options.mqttPort = port(values['mqtt-port'], '--mqtt-port');
  if (values['wss-port'] !== undefined) options.wssPort = port(values['wss-port'], '--wss-port');
  if (values['server-name'] !== undefined) options.serverNames = values['server-name'];
  if (values.config !== undefined) options.config = values.config;
  if (values['id-scope'] !== undefined) options.idScope = idScope(values['id-scope']);
  if (values.hub !== undefined) {
    for (const hub of values.hub) {
      if (!isIotHubHostName(hub)) throw new EmulatorUsageError(`--hub: ${invalidIotHubMessage(hub)}`);
    }
    options.iotHubs = values.hub;
  }
  if (values['data-dir'] !== undefined) options.dataDir = values['data-dir'];
  if (values['pki-dir'] !== undefined) options.pkiDir = values['pki-dir'];

  const individualEnrollments = (values.device ?? []).map((entry): IndividualEnrollmentConfig => {
    const equals = entry.indexOf('=');
    if (equals <= 0)
      throw new EmulatorUsageError(
        `--device expects ID=KEY (a registration id and its base64 key), got "${entry}"`,
      );
    const registrationId = entry.slice(0, equals);
    const primaryKey = entry.slice(equals + 1);
    // Bad input is a usage error (exit code 2), found before anything starts; the key is not echoed.
    if (!isValidRegistrationId(registrationId)) {
      throw new EmulatorUsageError(
        `--device: registration id ${JSON.stringify(registrationId)} is invalid: use lowercase letters, digits and - . _ : (at most 128 characters)`,
      );
    }
    if (!isEnrollmentKey(primaryKey)) {
      throw new EmulatorUsageError(
        `--device ${registrationId}=KEY: the key is not valid: ${ENROLLMENT_KEY_SHAPE}`,
      );
    }
    return { registrationId, attestation: { type: 'symmetricKey', primaryKey } };
  });
  const enrollmentGroups: EnrollmentGroupConfig[] = [];
  if (values['group-key'] !== undefined) {
    if (!isEnrollmentKey(values['group-key'])) {
      throw new EmulatorUsageError(`--group-key: the key is not valid: ${ENROLLMENT_KEY_SHAPE}`);
    }
    enrollmentGroups.push({
      enrollmentGroupId: 'cli-group',
      attestation: { type: 'symmetricKey', primaryKey: values['group-key'] },
    });
  }
  if (values['group-ca'] !== undefined) {
    enrollmentGroups.push({
      enrollmentGroupId: 'cli-x509-group',
      attestation: { type: 'x509', caCertificate: values['group-ca'] },
    });
  }
  if (individualEnrollments.length > 0 || enrollmentGroups.length > 0) {
    options.enrollments = { individualEnrollments, enrollmentGroups };
  }

  if (values['retry-after'] !== undefined)
    options.retryAfterSeconds = number(values['retry-after'], '--retry-after');
  if (values['polls-before-assignment'] !== undefined) {
    options.pollsBeforeAssignment = integer(values['polls-before-assignment'], '--polls-before-assignment');
  }
  if (values['assignment-delay'] !== undefined) {
    options.assignmentDelayMs = number(values['assignment-delay'], '--assignment-delay');
  }
  const throttle: NonNullable<EmulatorOptions['throttle']> = {};
  if (values['throttle-first'] !== undefined)
    throttle.firstRequests = integer(values['throttle-first'], '--throttle-first');
  if (values['throttle-fraction'] !== undefined) {
    const fraction = number(values['throttle-fraction'], '--throttle-fraction');
    if (fraction > 1) throw new EmulatorUsageError('--throttle-fraction must be between 0 and 1');
    throttle.fraction = fraction;
  }
  if (values['throttle-retry-after'] !== undefined) {
    throttle.retryAfterSeconds = number(values['throttle-retry-after'], '--throttle-retry-after');
  }
  if (Object.keys(throttle).length > 0) options.throttle = throttle;
  const faults: NonNullable<EmulatorOptions['faults']> = {};
  if (values['drop-before-request'] !== undefined) {
    faults.dropBeforeRequest = integerList(values['drop-before-request'], '--drop-before-request');
  }
  if (values['drop-after-response'] !== undefined) {
    faults.dropAfterResponse = integerList(values['drop-after-response'], '--drop-after-response');
  }
  if (values['drop-before-connack'] !== undefined) {
    faults.dropBeforeConnack = integerList(values['drop-before-connack'], '--drop-before-connack');
  }
  if (values['drop-after-suback'] !== undefined) {
    faults.dropAfterSuback = integerList(values['drop-after-suback'], '--drop-after-suback');
  }
  if (values['response-delay'] !== undefined)
    faults.responseDelayMs = number(values['response-delay'], '--response-delay');
  if (Object.keys(faults).length > 0) options.faults = faults;
  if (values['connect-timeout'] !== undefined) {
    options.connectTimeoutMs = positiveInteger(values['connect-timeout'], '--connect-timeout');
  }
  if (values['max-packet-bytes'] !== undefined) {
    options.maxPacketBytes = positiveInteger(values['max-packet-bytes'], '--max-packet-bytes');
  }
  const allocationWebhook: NonNullable<EmulatorOptions['allocationWebhook']> = {};
  if (values['webhook-timeout'] !== undefined) {
    allocationWebhook.timeoutMs = positiveInteger(values['webhook-timeout'], '--webhook-timeout');
  }
  if (values['webhook-ca'] !== undefined) {
    try {
      allocationWebhook.ca = readFileSync(values['webhook-ca'], 'utf8');
    } catch (error) {
      throw new EmulatorUsageError(`--webhook-ca: cannot read ${values['webhook-ca']}: ${String(error)}`);
    }
  }
  if (Object.keys(allocationWebhook).length > 0) options.allocationWebhook = allocationWebhook;
  const certificateIssuance: NonNullable<EmulatorOptions['certificateIssuance']> = {};
  if (values['cert-validity-days'] !== undefined) {
    const days = integer(values['cert-validity-days'], '--cert-validity-days');
    if (days < MIN_VALIDITY_DAYS || days > MAX_VALIDITY_DAYS) {
      throw new EmulatorUsageError(
        `--cert-validity-days expects ${MIN_VALIDITY_DAYS} to ${MAX_VALIDITY_DAYS} days (DPS's policy range), got "${values['cert-validity-days']}"`,
      );
    }
    certificateIssuance.validityDays = days;
  }
  if (values['cert-key-types'] !== undefined) {
    certificateIssuance.keyTypes = keyTypes(values['cert-key-types']);
  }
  if (Object.keys(certificateIssuance).length > 0) options.certificateIssuance = certificateIssuance;
  return options;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      'mqtt-port': { type: 'string' },
      'wss-port': { type: 'string' },
      'server-name': { type: 'string', multiple: true },
      config: { type: 'string' },
      'id-scope': { type: 'string' },
      device: { type: 'string', multiple: true },
      'group-key': { type: 'string' },
      'group-ca': { type: 'string' },
      hub: { type: 'string', multiple: true },
      'data-dir': { type: 'string' },
      'pki-dir': { type: 'string' },
      'retry-after': { type: 'string' },
      'polls-before-assignment': { type: 'string' },
      'assignment-delay': { type: 'string' },
      'throttle-first': { type: 'string' },
      'throttle-fraction': { type: 'string' },
      'throttle-retry-after': { type: 'string' },
      'drop-before-request': { type: 'string' },
      'drop-after-response': { type: 'string' },
      'drop-before-connack': { type: 'string' },
      'drop-after-suback': { type: 'string' },
      'response-delay': { type: 'string' },
      'connect-timeout': { type: 'string' },
      'max-packet-bytes': { type: 'string' },
      'webhook-timeout': { type: 'string' },
      'webhook-ca': { type: 'string' },
      'cert-validity-days': { type: 'string' },
      'cert-key-types': { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function idScope(text: string): string {
  try {
    return validateIdScope(text);
  } catch (error) {
    throw new EmulatorUsageError(`--id-scope: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function keyTypes(text: string): IssuanceKeyType[] {
  const list = text.split(',').map((part) => part.trim());
  for (const keyType of list) {
    if (!ISSUANCE_KEY_TYPES.includes(keyType as IssuanceKeyType)) {
      throw new EmulatorUsageError(
        `--cert-key-types: "${keyType}" is not a key type: list some of ${ISSUANCE_KEY_TYPES.join(',')} (rsa = RSA of at least 2048 bits)`,
      );
    }
  }
  return [...new Set(list as IssuanceKeyType[])];
}

function number(text: string, flag: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) {
    throw new EmulatorUsageError(`${flag} expects a number of at least 0, got "${text}"`);
  }
  return value;
}

function integer(text: string, flag: string): number {
  const value = number(text, flag);
  if (!Number.isInteger(value)) throw new EmulatorUsageError(`${flag} expects a whole number, got "${text}"`);
  return value;
}

function positiveInteger(text: string, flag: string): number {
  const value = integer(text, flag);
  if (value < 1) throw new EmulatorUsageError(`${flag} expects a whole number of at least 1, got "${text}"`);
  return value;
}

function integerList(text: string, flag: string): number[] {
  return text.split(',').map((part) => integer(part.trim(), flag));
}

function port(text: string, flag: string): number {
  const value = integer(text, flag);
  if (value > 65535)
    throw new EmulatorUsageError(`${flag} expects a port between 0 and 65535, got "${text}"`);
  return value;
}

function hints(emulator: RunningEmulator, caPath: string | undefined, options: EmulatorOptions): string {
  const host = emulator.host.includes(':') ? `[${emulator.host}]` : emulator.host;
  const lines = [
    `DPS emulator listening: mqtts://${host}:${emulator.mqttPort}  wss://${host}:${emulator.wssPort}/$iothub/websocket`,
    `ID scope: ${emulator.idScope}`,
    `Trust its CA: ${caPath ?? '(in memory)'}`,
    `  npx dps-mqtt register --ca ${caPath} ...   or   NODE_EXTRA_CA_CERTS=${caPath} node app.js`,
  ];
  if (options.config === undefined) {
    lines.push(
      'Demo enrollments (not secrets, never for production):',
      `  any registration id, key = derived from group key ${DEMO_GROUP_KEY} (npx dps-mqtt derive-key)`,
      `  registration id ${DEMO_DEVICE_ID}, key ${DEMO_DEVICE_KEY}`,
      '  X.509: a device certificate issued by the CA above, CN = registration id',
    );
  }
  lines.push(
    `Service API: https://localhost:${emulator.wssPort}/enrollments (the ready line's serviceConnectionString; see https://github.com/dps-mqtt/dps-mqtt/blob/main/docs/emulator.md)`,
    options.dataDir === undefined
      ? 'Registrations are kept in memory (use --data-dir to keep them).'
      : `Data: ${options.dataDir}`,
    'Stop with Ctrl+C (SIGINT) or SIGTERM.',
  );
  return `${lines.join('\n')}\n`;
}
