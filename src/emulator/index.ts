// startEmulator(): a DPS-compatible server on this machine, for development, CI and benchmarks.
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { findUnknownOption } from '../protocol/known-options.js';
import { validateIdScope } from '../protocol/validate.js';
import { deviceApi } from './device-api/device-api.js';
import { directoryErrorOf, usingDirectory } from './directory-error.js';
import type { CertificateIssuancePolicy } from './enrollments/certificate-policy.js';
import {
  defaultEmulatorConfig,
  type EmulatorConfig,
  EmulatorConfigError,
  loadEmulatorConfigFile,
  parseCertificateIssuancePolicy,
  parseEmulatorConfig,
} from './enrollments/config.js';
import type { EmulatorConfigFile, EnrollmentsConfig } from './enrollments/config-file.js';
import { EnrollmentBook } from './enrollments/enrollment-book.js';
import { EnrollmentStore } from './enrollments/enrollment-store.js';
import { type FaultOptions, FaultPlan, type ThrottleOptions } from './faults.js';
import { type EmulatorLogger, redactingLogger, silentLogger } from './log.js';
import { MqttSession, type SessionPeer, type SessionStream } from './mqtt/mqtt-session.js';
import { type HttpsApis, httpsRouter } from './network/https-router.js';
import { startListeners } from './network/listeners.js';
import { createIssuingCa, type EmulatorPki, ensureEmulatorPki } from './pki/pki.js';
import { type AllocationWebhookOptions, allocationWebhook } from './registrar/allocation-webhook.js';
import { CertificateIssuer } from './registrar/certificate-issuer.js';
import { Registrar } from './registrar/registrar.js';
import { type RegistrationRecord, RegistrationStore } from './registrar/registration-store.js';
import { loadServiceCredentials, type ServiceCredentials } from './service-api/credentials.js';
import { serviceApi } from './service-api/service-api.js';
import { DataDirLock } from './storage/data-dir-lock.js';

export { EmulatorDirectoryError, type EmulatorDirectoryOption } from './directory-error.js';
export type { CertificateIssuancePolicy, IssuanceKeyType } from './enrollments/certificate-policy.js';
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
} from './enrollments/config.js';
export type {
  AllocationPolicyConfig,
  CertificateIssuanceConfig,
  CustomAllocationDefinitionConfig,
  EmulatorConfigFile,
  EnrollmentConfigCommon,
  EnrollmentGroupConfig,
  EnrollmentsConfig,
  GroupX509AttestationConfig,
  IndividualEnrollmentConfig,
  IndividualX509AttestationConfig,
  ReprovisionPolicyConfig,
  SymmetricKeyAttestationConfig,
} from './enrollments/config-file.js';
export type { FaultOptions, ThrottleOptions } from './faults.js';
export { type EmulatorLogEntry, type EmulatorLogger, jsonLinesLogger, silentLogger } from './log.js';
export {
  type CertificateAndKey,
  createIssuingCa,
  createRootCa,
  createSelfSignedCertificate,
  type EmulatorPki,
  ensureEmulatorPki,
  issueCertificate,
} from './pki/pki.js';
export type { AllocationWebhookOptions } from './registrar/allocation-webhook.js';
export { CSR_ERROR_CODES } from './registrar/certificate-issuer.js';
export {
  CUSTOM_ALLOCATION_ERROR_CODES,
  type CustomAllocationRequest,
} from './registrar/custom-allocation.js';
export type { RegistrationRecord } from './registrar/registration-store.js';
export { EmulatorDataDirInUseError, LOCK_FILE, type LockOwner } from './storage/data-dir-lock.js';

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
  config?: string | EmulatorConfigFile;
  /** Resolves relative certificate paths in an object `config`; the current directory by default. */
  configBaseDir?: string;
  /**
   * Enrollments added to the configuration's (or to the demo ones), in the configuration file's JSON
   * form; one with the same registration id or group id replaces the configured one. The CLI's
   * `--device` and `--group-key` land here.
   */
  enrollments?: EnrollmentsConfig;
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
  /**
   * The default certificate issuance policy, over the configuration's top-level one (field by field);
   * an enrollment's own policy still wins. `validityDays` 7..90, `keyTypes` of "ec-p256", "ec-p384", "rsa".
   */
  certificateIssuance?: Partial<CertificateIssuancePolicy>;
  /**
   * Custom allocation webhooks (an enrollment with allocationPolicy "custom"): `timeoutMs` (10 s by
   * default; no answer by then fails the registration) and `ca` (PEM text: the CA certificates an https:
   * webhook is trusted with, instead of Node's defaults).
   */
  allocationWebhook?: AllocationWebhookOptions;
}

/**
 * Every EmulatorOptions field: startEmulator() refuses any other name, so a typo is an error, not an
 * option silently ignored. The `satisfies` clause keeps the list and the interface in step.
 */
const EMULATOR_OPTION_NAMES = Object.keys({
  host: true,
  mqttPort: true,
  wssPort: true,
  idScope: true,
  config: true,
  configBaseDir: true,
  enrollments: true,
  iotHubs: true,
  dataDir: true,
  pkiDir: true,
  pki: true,
  serverNames: true,
  retryAfterSeconds: true,
  pollsBeforeAssignment: true,
  assignmentDelayMs: true,
  throttle: true,
  faults: true,
  maxPacketBytes: true,
  connectTimeoutMs: true,
  logger: true,
  certificateIssuance: true,
  allocationWebhook: true,
} satisfies Record<keyof EmulatorOptions, true>);

const ALLOCATION_WEBHOOK_OPTION_NAMES = Object.keys({
  timeoutMs: true,
  ca: true,
} satisfies Record<keyof AllocationWebhookOptions, true>);

/** The longest webhook timeout accepted: a registration that waits longer is a stuck one. */
const MAX_WEBHOOK_TIMEOUT_MS = 600_000;

/** The webhook options, checked: a timeout in range, CA certificates as PEM text. */
function checkAllocationWebhookOptions(options: AllocationWebhookOptions | undefined): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object') {
    throw new EmulatorConfigError(
      'allocationWebhook',
      'allocationWebhook: expected an object, e.g. { timeoutMs: 5000 }',
    );
  }
  const { timeoutMs, ca } = options;
  if (
    timeoutMs !== undefined &&
    (typeof timeoutMs !== 'number' ||
      !Number.isInteger(timeoutMs) ||
      timeoutMs < 1 ||
      timeoutMs > MAX_WEBHOOK_TIMEOUT_MS)
  ) {
    throw new EmulatorConfigError(
      'allocationWebhook.timeoutMs',
      `allocationWebhook.timeoutMs: ${JSON.stringify(timeoutMs)} is not allowed: expected whole milliseconds from 1 to ${MAX_WEBHOOK_TIMEOUT_MS}, e.g. 5000`,
    );
  }
  if (ca !== undefined) {
    const pems = Array.isArray(ca) ? ca : [ca];
    if (
      pems.length === 0 ||
      !pems.every((pem) => typeof pem === 'string' && pem.includes('-----BEGIN CERTIFICATE-----'))
    ) {
      throw new EmulatorConfigError(
        'allocationWebhook.ca',
        'allocationWebhook.ca: expected PEM text (-----BEGIN CERTIFICATE-----) or an array of them',
      );
    }
  }
}

const THROTTLE_OPTION_NAMES = Object.keys({
  firstRequests: true,
  fraction: true,
  retryAfterSeconds: true,
} satisfies Record<keyof ThrottleOptions, true>);

const FAULT_OPTION_NAMES = Object.keys({
  dropBeforeRequest: true,
  dropAfterResponse: true,
  responseDelayMs: true,
  dropBeforeConnack: true,
  dropAfterSuback: true,
} satisfies Record<keyof FaultOptions, true>);

const ENROLLMENTS_OPTION_NAMES = Object.keys({
  individualEnrollments: true,
  enrollmentGroups: true,
} satisfies Record<keyof EnrollmentsConfig, true>);

/** Refuses option names the types do not declare, with a suggestion when one is close. */
function checkOptionNames(options: EmulatorOptions): void {
  if (options === null || typeof options !== 'object') {
    throw new EmulatorConfigError('options', 'startEmulator() takes an options object (or nothing)');
  }
  const nested: Array<[string, unknown, readonly string[]]> = [
    ['throttle', options.throttle, THROTTLE_OPTION_NAMES],
    ['faults', options.faults, FAULT_OPTION_NAMES],
    ['enrollments', options.enrollments, ENROLLMENTS_OPTION_NAMES],
    ['allocationWebhook', options.allocationWebhook, ALLOCATION_WEBHOOK_OPTION_NAMES],
  ];
  const unknown =
    findUnknownOption(options, EMULATOR_OPTION_NAMES) ??
    nested
      .map(([path, value, known]) =>
        value !== null && typeof value === 'object' ? findUnknownOption(value, known, path) : undefined,
      )
      .find((found) => found !== undefined);
  if (unknown) throw new EmulatorConfigError(unknown.field, unknown.message);
}

export interface RunningEmulator {
  host: string;
  mqttPort: number;
  wssPort: number;
  idScope: string;
  /** The CA devices must trust: PEM text, and its file (none when `pki` was passed in). */
  caCertPem: string;
  caPath: string | undefined;
  /** The CA that signs devices' certificates (certificate issuance), issued by the CA above; its file when on disk. */
  issuingCaCertPem: string;
  issuingCaPath: string | undefined;
  /** The configuration at start; the service API changes the enrollments afterwards. */
  config: EmulatorConfig;
  /**
   * `HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=...` for the service
   * API (docs/emulator.md, "Service API"); the key is kept in the data directory, or lasts this run without one.
   */
  serviceConnectionString: string;
  /** Every device registration (assigned devices), persisted ones included. */
  registrations(): RegistrationRecord[];
  /** Open device connections. */
  connectionCount(): number;
  /**
   * Writes to the data directory that failed since the start (it became unwritable, was removed, the disk
   * filled up): the changes they carried are in memory only. EmulatorDirectoryError where the file system
   * said why. Empty without a data directory, and when everything acknowledged is on disk. Final once
   * close() has resolved: close() writes the last snapshot and reports its failure here, not by rejecting.
   */
  storeErrors(): Error[];
  /**
   * Stops listening, closes every connection, writes the registrations and enrollments out and releases
   * the data directory; check storeErrors() afterwards.
   */
  close(): Promise<void>;
}

/** The per-user PKI directory used when no data directory is given. */
export function defaultPkiDir(): string {
  return join(homedir(), '.dps-mqtt', 'emulator');
}

/**
 * Starts the emulator; resolves once both listeners are bound. With a data directory another emulator
 * holds, rejects with EmulatorDataDirInUseError (which names that process).
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  checkOptionNames(options);
  checkAllocationWebhookOptions(options.allocationWebhook);
  const lock = options.dataDir === undefined ? undefined : await lockDataDir(options.dataDir, options.logger);
  try {
    return await startWithDataDir(options, lock);
  } catch (error) {
    lock?.release();
    throw error;
  }
}

/** One emulator per data directory (storage/data-dir-lock.ts); a lock left by a dead process is taken over. */
function lockDataDir(dataDir: string, logger: EmulatorLogger = silentLogger): Promise<DataDirLock> {
  return usingDirectory(dataDir, 'dataDir', async () => {
    await mkdir(dataDir, { recursive: true });
    return DataDirLock.acquire(dataDir, (previous) =>
      logger({
        event: 'staleLockTakenOver',
        dataDir,
        previousPid: previous.pid,
        previousHost: previous.host,
        previousStartedAt: previous.startedAt,
      }),
    );
  });
}

async function startWithDataDir(
  options: EmulatorOptions,
  lock: DataDirLock | undefined,
): Promise<RunningEmulator> {
  const host = options.host ?? DEFAULT_HOST;
  const pkiDir = options.dataDir ?? options.pkiDir ?? defaultPkiDir();
  const pkiFromDisk =
    options.pki === undefined
      ? await usingDirectory(pkiDir, options.dataDir === undefined ? 'pkiDir' : 'dataDir', () =>
          ensureEmulatorPki({ dataDir: pkiDir, extraNames: options.serverNames ?? [] }),
        )
      : undefined;
  const pki = options.pki ?? pkiFromDisk!;
  const caPath = pkiFromDisk?.caPath;
  // A PKI brought without an issuing CA gets one for this run only.
  const issuingCa = pki.issuingCa ?? (await createIssuingCa({ root: pki.ca }));
  const issuingCaPath = pki.issuingCa === undefined ? undefined : pki.issuingCaPath;
  const issuer = new CertificateIssuer(issuingCa, pki.ca.certPem);

  const config = await resolveConfig(options, pki.ca.certPem);
  // Every enrollment key (configured, or made by the service API) and the service key stay out of the log.
  const secrets: { current: () => Iterable<string> } = { current: () => [] };
  const logger = redactingLogger(options.logger ?? silentLogger, () => secrets.current());
  // The enrollments: the data directory's, with the configuration's laid over them (enrollments/enrollment-store.ts).
  const { enrollmentStore, serviceCredentials } = await openServiceState(options.dataDir, config, logger);
  const book = new EnrollmentBook(config, enrollmentStore);
  secrets.current = () => [...book.secrets(), serviceCredentials.key];
  const openStore = () =>
    RegistrationStore.open(options.dataDir, {
      onWriteError: (error) => logger({ event: 'storeError', store: 'registrations', error: error.message }),
      onWarning: (message) => logger({ event: 'storeRecovered', store: 'registrations', message }),
    });
  const { dataDir } = options;
  // The registrations are written there later: a directory that cannot take them fails the start.
  const store =
    dataDir === undefined
      ? await openStore()
      : await usingDirectory(dataDir, 'dataDir', async () => {
          const opened = await openStore();
          await access(dataDir, constants.W_OK);
          return opened;
        });
  const retryAfterSeconds = options.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
  // Outbound HTTP for custom allocation: the registrar gets the call, not the client.
  const webhook = allocationWebhook(options.allocationWebhook);
  const registrar = new Registrar({
    book,
    store,
    retryAfterSeconds,
    pollsBeforeAssignment: options.pollsBeforeAssignment ?? 0,
    assignmentDelayMs: options.assignmentDelayMs ?? 0,
    issuer,
    callAllocationWebhook: webhook.call,
  });
  const faults = new FaultPlan(options.throttle, options.faults);
  const maxPacketBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const sessions = new Set<MqttSession>();
  let closing = false;

  // One context for every session: nothing in it is per connection.
  const sessionContext = {
    book,
    registrar,
    faults,
    logger,
    maxPacketBytes,
    connectTimeoutMs,
    retryAfterSeconds,
  };
  const onConnection = (stream: SessionStream, peer: SessionPeer): void => {
    if (closing) {
      stream.destroy();
      return;
    }
    const session = new MqttSession(stream, peer, sessionContext);
    sessions.add(session);
    void session.closed.then(() => sessions.delete(session));
  };

  // The CA names offered to devices: the emulator's CA and every X.509 group's, kept current below.
  const clientCaPems = (): string[] => [
    ...new Set([
      pki.ca.certPem,
      ...[...enrollmentStore.groups()].flatMap((group) =>
        group.attestation.type === 'x509' ? group.attestation.caCertificatePems : [],
      ),
    ]),
  ];
  // The HTTPS rooms (service API, device API) register their handlers here.
  const httpsApis: HttpsApis = {};
  httpsApis.service = serviceApi({
    enrollments: enrollmentStore,
    registrations: store,
    credentials: serviceCredentials,
    logger,
  });
  httpsApis.device = deviceApi({
    book,
    registrar,
    faults,
    logger,
    retryAfterSeconds,
    maxBodyBytes: maxPacketBytes,
    bodyTimeoutMs: connectTimeoutMs,
  });
  const listeners = await startListeners({
    host,
    mqttPort: options.mqttPort ?? DEFAULT_MQTT_PORT,
    wssPort: options.wssPort ?? DEFAULT_WSS_PORT,
    server: pki.server,
    clientCaPems: clientCaPems(),
    maxPacketBytes,
    handshakeTimeoutMs: connectTimeoutMs,
    logger,
    onConnection,
    onHttpsRequest: httpsRouter(httpsApis),
  });
  let offeredCaPems = clientCaPems();
  enrollmentStore.onChange(() => {
    const pems = clientCaPems();
    if (pems.join('\n') === offeredCaPems.join('\n')) return;
    offeredCaPems = pems;
    listeners.setClientCaPems(pems);
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
    issuingCaCertPem: issuingCa.certPem,
    issuingCaPath,
    config,
    serviceConnectionString: serviceCredentials.connectionString,
    registrations: () => store.all(),
    connectionCount: () => sessions.size,
    storeErrors: () =>
      dataDir === undefined
        ? []
        : [...store.writeErrors(), ...enrollmentStore.writeErrors()].map(
            (error) => directoryErrorOf(dataDir, 'dataDir', error) as Error,
          ),
    close() {
      closed ??= (async () => {
        closing = true;
        for (const session of sessions) session.close('the emulator is stopping');
        webhook.close();
        await listeners.close();
        await Promise.all([store.flush(), enrollmentStore.flush()]);
        // The journals fold into registrations.json and enrollments.json; a failure joins storeErrors().
        store.close();
        enrollmentStore.close();
        lock?.release();
        logger({
          event: 'stopped',
          storeErrors: store.writeErrors().length + enrollmentStore.writeErrors().length,
        });
      })();
      return closed;
    },
  };
}

/** The enrollment store and the service key, from the data directory when there is one. */
async function openServiceState(
  dataDir: string | undefined,
  config: EmulatorConfig,
  logger: EmulatorLogger,
): Promise<{ enrollmentStore: EnrollmentStore; serviceCredentials: ServiceCredentials }> {
  const open = async () => ({
    enrollmentStore: await EnrollmentStore.open(dataDir, config, {
      onWriteError: (error) => logger({ event: 'storeError', store: 'enrollments', error: error.message }),
      onWarning: (message) => logger({ event: 'storeRecovered', store: 'enrollments', message }),
    }),
    serviceCredentials: await loadServiceCredentials(dataDir),
  });
  return dataDir === undefined ? open() : usingDirectory(dataDir, 'dataDir', open);
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
  if (options.certificateIssuance !== undefined) {
    const policy = parseCertificateIssuancePolicy(options.certificateIssuance);
    config = { ...config, certificateIssuance: { ...config.certificateIssuance, ...policy } };
  }
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
