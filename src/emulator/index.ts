// startEmulator(): a DPS-compatible server on this machine, for development, CI and benchmarks.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { validateIdScope } from '../protocol/validate.js';
import {
  defaultEmulatorConfig,
  type EmulatorConfig,
  loadEmulatorConfigFile,
  parseEmulatorConfig,
} from './config.js';
import { EnrollmentBook } from './enrollments.js';
import { type FaultOptions, FaultPlan, type ThrottleOptions } from './faults.js';
import { startListeners } from './listeners.js';
import { type EmulatorLogger, redactingLogger, silentLogger } from './log.js';
import { type EmulatorPki, ensureEmulatorPki } from './pki.js';
import { Registrar } from './registrar.js';
import { MqttSession, type SessionPeer } from './session.js';
import { type RegistrationRecord, RegistrationStore } from './store.js';

export {
  DEFAULT_ID_SCOPE,
  DEFAULT_IOT_HUB,
  DEMO_DEVICE_ID,
  DEMO_DEVICE_KEY,
  DEMO_GROUP_ID,
  DEMO_GROUP_KEY,
  DEMO_X509_GROUP_ID,
  type EmulatorConfig,
  EmulatorConfigError,
  loadEmulatorConfigFile,
  parseEmulatorConfig,
} from './config.js';
export type { FaultOptions, ThrottleOptions } from './faults.js';
export { type EmulatorLogEntry, type EmulatorLogger, jsonLinesLogger, silentLogger } from './log.js';
export {
  type CertificateAndKey,
  createRootCa,
  createSelfSignedCertificate,
  type EmulatorPki,
  ensureEmulatorPki,
  issueCertificate,
} from './pki.js';
export type { RegistrationRecord } from './store.js';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_MQTT_PORT = 8883;
export const DEFAULT_WSS_PORT = 8443;
/** Real DPS asks for about 3 s; the emulator answers faster by default so the quick start is quick. */
export const DEFAULT_RETRY_AFTER_SECONDS = 1;
export const DEFAULT_MAX_PACKET_BYTES = 64 * 1024;

export interface EmulatorOptions {
  /** Interface to bind; 127.0.0.1 by default. */
  host?: string;
  /** MQTT over TLS; 8883 by default, 0 for any free port. */
  mqttPort?: number;
  /** MQTT over WebSocket over TLS; 8443 by default (443 where the process may bind it), 0 for any free port. */
  wssPort?: number;
  /** Overrides the configuration's ID scope (default 0ne00000000). */
  idScope?: string;
  /**
   * Enrollments: a JSON file path, or the same JSON as an object (schema in docs/emulator.md).
   * Without one, the demo enrollments (docs/emulator.md) are used.
   */
  config?: string | Record<string, unknown>;
  /** Resolves relative certificate paths in an object `config`; the current directory by default. */
  configBaseDir?: string;
  /**
   * Enrollments added to the configuration's (or to the demo ones), in the configuration file's JSON
   * form; one with the same registration id or group id replaces the configured one. The CLI's
   * `--device` and `--group-key` land here.
   */
  enrollments?: { individualEnrollments?: unknown[]; enrollmentGroups?: unknown[] };
  /** Replaces the configuration's linked IoT hubs. */
  iotHubs?: string[];
  /** Keeps the PKI and the registrations (which then survive a restart). In-memory state without it. */
  dataDir?: string;
  /** Where the PKI lives without dataDir: ~/.dps-mqtt/emulator by default, so the CA stays the same. */
  pkiDir?: string;
  /** Use these certificates instead of generating or loading any (tests share one PKI this way). */
  pki?: EmulatorPki;
  /** Extra DNS names or IP addresses for the server certificate (besides localhost, 127.0.0.1, ::1). */
  serverNames?: string[];
  /** `retry-after` on 202 and 429 answers, in seconds; 1 by default. */
  retryAfterSeconds?: number;
  /** Status queries answered 202 `assigning` before the assignment; 0 by default (the first poll is assigned). */
  pollsBeforeAssignment?: number;
  /** No assignment before this long after the register request, in milliseconds; 0 by default. */
  assignmentDelayMs?: number;
  throttle?: ThrottleOptions;
  faults?: FaultOptions;
  /** Packets above this size close the connection; 64 KiB by default. */
  maxPacketBytes?: number;
  /** A connection must complete TLS and send CONNECT within this time; 10 s by default. */
  connectTimeoutMs?: number;
  /** Structured log, one entry per connection event and request (secrets redacted); silent by default. */
  logger?: EmulatorLogger;
}

export interface RunningEmulator {
  host: string;
  mqttPort: number;
  wssPort: number;
  idScope: string;
  /** The CA devices must trust: PEM text, and its file (none when `pki` was passed in). */
  caCertPem: string;
  caPath: string | undefined;
  config: EmulatorConfig;
  /** Every device registration (assigned devices), persisted ones included. */
  registrations(): RegistrationRecord[];
  /** Open device connections. */
  connectionCount(): number;
  /** Stops listening, closes every connection and writes the registrations out. */
  close(): Promise<void>;
}

/** The per-user PKI directory used when no data directory is given. */
export function defaultPkiDir(): string {
  return join(homedir(), '.dps-mqtt', 'emulator');
}

/** Starts the emulator; resolves once both listeners are bound. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const host = options.host ?? DEFAULT_HOST;
  const pkiFromDisk =
    options.pki === undefined
      ? await ensureEmulatorPki({
          dataDir: options.dataDir ?? options.pkiDir ?? defaultPkiDir(),
          extraNames: options.serverNames ?? [],
        })
      : undefined;
  const pki = options.pki ?? pkiFromDisk!;
  const caPath = pkiFromDisk?.caPath;

  const config = await resolveConfig(options, pki.ca.certPem);
  const book = new EnrollmentBook(config);
  const logger = redactingLogger(options.logger ?? silentLogger, () => book.secrets());
  const store = await RegistrationStore.open(options.dataDir, (error) =>
    logger({ event: 'storeError', error: error instanceof Error ? error.message : String(error) }),
  );
  const retryAfterSeconds = options.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
  const registrar = new Registrar({
    book,
    store,
    retryAfterSeconds,
    pollsBeforeAssignment: options.pollsBeforeAssignment ?? 0,
    assignmentDelayMs: options.assignmentDelayMs ?? 0,
  });
  const faults = new FaultPlan(options.throttle, options.faults);
  const maxPacketBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const sessions = new Set<MqttSession>();
  let closing = false;

  const onConnection = (stream: Duplex, peer: SessionPeer): void => {
    if (closing) {
      stream.destroy();
      return;
    }
    const session = new MqttSession(stream, peer, {
      book,
      registrar,
      faults,
      logger,
      maxPacketBytes,
      connectTimeoutMs,
      retryAfterSeconds,
    });
    sessions.add(session);
    void session.closed.then(() => sessions.delete(session));
  };

  const groupCaPems = config.enrollmentGroups.flatMap((group) =>
    group.attestation.type === 'x509' ? group.attestation.caCertificatePems : [],
  );
  const listeners = await startListeners({
    host,
    mqttPort: options.mqttPort ?? DEFAULT_MQTT_PORT,
    wssPort: options.wssPort ?? DEFAULT_WSS_PORT,
    server: pki.server,
    clientCaPems: [...new Set([pki.ca.certPem, ...groupCaPems])],
    maxPacketBytes,
    handshakeTimeoutMs: connectTimeoutMs,
    logger,
    onConnection,
  });
  logger({
    event: 'listening',
    host,
    mqttPort: listeners.mqttPort,
    wssPort: listeners.wssPort,
    idScope: config.idScope,
    individualEnrollments: config.individualEnrollments.length,
    enrollmentGroups: config.enrollmentGroups.length,
    persistent: options.dataDir !== undefined,
  });

  let closed: Promise<void> | undefined;
  return {
    host,
    mqttPort: listeners.mqttPort,
    wssPort: listeners.wssPort,
    idScope: config.idScope,
    caCertPem: pki.ca.certPem,
    caPath,
    config,
    registrations: () => store.all(),
    connectionCount: () => sessions.size,
    close() {
      closed ??= (async () => {
        closing = true;
        for (const session of sessions) session.close('the emulator is stopping');
        await listeners.close();
        await store.flush();
        logger({ event: 'stopped' });
      })();
      return closed;
    },
  };
}

async function resolveConfig(options: EmulatorOptions, emulatorCaPem: string): Promise<EmulatorConfig> {
  let config: EmulatorConfig;
  if (options.config === undefined) {
    config = defaultEmulatorConfig({ emulatorCaPem });
  } else if (typeof options.config === 'string') {
    config = await loadEmulatorConfigFile(options.config);
  } else {
    config = await parseEmulatorConfig(options.config, { baseDir: options.configBaseDir ?? process.cwd() });
  }
  if (options.idScope !== undefined) config = { ...config, idScope: validateIdScope(options.idScope) };
  if (options.iotHubs !== undefined) {
    const { iotHubs } = await parseEmulatorConfig({ iotHubs: options.iotHubs }, { source: 'iotHubs option' });
    config = { ...config, iotHubs };
  }
  if (options.enrollments !== undefined) {
    const extra = await parseEmulatorConfig(options.enrollments, {
      baseDir: options.configBaseDir ?? process.cwd(),
      source: 'enrollments option',
    });
    const individualIds = new Set(extra.individualEnrollments.map((enrollment) => enrollment.registrationId));
    const groupIds = new Set(extra.enrollmentGroups.map((group) => group.enrollmentGroupId));
    config = {
      ...config,
      individualEnrollments: [
        ...config.individualEnrollments.filter((enrollment) => !individualIds.has(enrollment.registrationId)),
        ...extra.individualEnrollments,
      ],
      enrollmentGroups: [
        ...config.enrollmentGroups.filter((group) => !groupIds.has(group.enrollmentGroupId)),
        ...extra.enrollmentGroups,
      ],
    };
  }
  return config;
}
