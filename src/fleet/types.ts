// The public shape of registerFleet(): many devices in, one result per device out, as each completes.
import type { TransportKind } from '../client/types.js';
import type { JsonValue } from '../protocol/responses.js';

/** A group enrollment's X.509 CA: device certificates are made for it on the fly. PEM text or file paths. */
export interface GroupCaOptions {
  certificate: string;
  privateKey: string;
  passphrase?: string;
}

/** One device of a list (e.g. read from a CSV or JSONL file with readDeviceFile()). */
export interface FleetDeviceEntry {
  registrationId: string;
  /** The device's own key (individual enrollment); without it and a certificate, the group key is used. */
  symmetricKey?: string;
  /** X.509: the device certificate (chain) and private key, PEM text or file paths. */
  certificate?: string;
  privateKey?: string;
  passphrase?: string;
  /** Custom allocation data for this device; overrides the fleet's payload. */
  payload?: JsonValue;
}

/**
 * Where the devices come from: `count` registration ids `{prefix}{start}` … `{prefix}{start+count-1}`
 * with keys derived from `groupKey` or certificates issued by `groupCa`; or a list of devices (each with
 * its credential, or a derived key when `groupKey` is given).
 */
export type FleetDeviceSource =
  | { count: number; prefix?: string; start?: number; groupKey: string }
  | { count: number; prefix?: string; start?: number; groupCa: GroupCaOptions }
  | { devices: FleetDeviceEntry[]; groupKey?: string };

/** `index` of `count`: the devices at positions p with p % count === index (0-based). */
export interface FleetShard {
  index: number;
  count: number;
}

export interface FleetOptions {
  idScope: string;
  devices: FleetDeviceSource;
  /** `host` or `host:port`. Default `global.azure-devices-provisioning.net`. */
  endpoint?: string;
  /** Default `mqtt-ws`. */
  transport?: TransportKind;
  /** CA certificate(s) to trust for the DPS server: PEM text or a file path. */
  trustedCa?: string;
  /** HTTP proxy URL, or `false` for none (default: HTTPS_PROXY unless NO_PROXY matches). */
  proxy?: string | false;
  apiVersion?: string;
  /** Custom allocation data sent by every device (a device entry's own payload wins). */
  payload?: JsonValue;
  /** Send SUBSCRIBE and the request without waiting for CONNACK/SUBACK. */
  pipeline?: boolean;
  /** Deadline of each device's registration, in milliseconds. Default 120 000. */
  timeoutMs?: number;
  /** Registrations in flight at once, across all workers. Default 100. */
  concurrency?: number;
  /**
   * Registrations started per second, across all workers (DPS has per-unit quotas: stay under them).
   * Default: no limit. A 429 from the service slows the whole run down, whatever this is.
   */
  rate?: number;
  /** Worker threads that run the registrations; 0 (the default) runs them in this thread. */
  workers?: number;
  /** Register only this slice of the devices. */
  shard?: FleetShard;
  /** Put each device's key (or its issued certificate's private key) in its result. Default false. */
  includeKeys?: boolean;
  /** Aborts every registration in flight (they are reported as ERR_ABORTED) and starts no more. */
  signal?: AbortSignal;
}

/** Why a device failed: the error's stable code, the phase it happened in, and the service's details. */
export interface FleetDeviceError {
  code: string;
  phase: string | undefined;
  message: string;
  statusCode?: number;
  errorCode?: number;
  trackingId?: string;
}

interface FleetDeviceResultBase {
  /** The device's position in the source (before sharding), from 0. */
  index: number;
  registrationId: string;
  /** When the device was started and when its result arrived: milliseconds since the epoch. */
  startedAt: number;
  finishedAt: number;
  /** The registration's own duration (connect to assignment, retries included). */
  latencyMs: number;
  /** Answers 429 (throttled) this device received and waited out. */
  throttled: number;
  /** With includeKeys: the device's symmetric key, or its issued certificate and private key (PEM). */
  deviceKey?: string;
  certificatePem?: string;
  privateKeyPem?: string;
}

export interface FleetDeviceAssigned extends FleetDeviceResultBase {
  status: 'assigned';
  assignedHub: string;
  deviceId: string;
  substatus?: string;
  connections: number;
  polls: number;
  retries: number;
}

export interface FleetDeviceFailed extends FleetDeviceResultBase {
  status: 'failed';
  error: FleetDeviceError;
}

export type FleetDeviceResult = FleetDeviceAssigned | FleetDeviceFailed;

/** Failures that share a phase, an error code and a status code. */
export interface FleetFailureGroup {
  phase: string;
  code: string;
  statusCode: number | undefined;
  count: number;
  /** One of the messages (secrets redacted). */
  example: string;
}

export interface FleetSummary {
  /** Devices in the slice (after sharding). */
  devices: number;
  started: number;
  assigned: number;
  failed: number;
  /** Devices never started (the run was stopped). */
  notStarted: number;
  /** Answers 429 received across the fleet (not failures: the run slowed down). */
  throttled: number;
  /** From the first start to the last result. */
  wallMs: number;
  /** Results per second over wallMs. */
  devicesPerSecond: number;
  /** Registration latency of the assigned devices, in milliseconds (nearest rank). */
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  failures: FleetFailureGroup[];
}

/** A fleet registration in progress: iterate it for the results, as each device completes. */
export interface FleetRun extends AsyncIterable<FleetDeviceResult> {
  /** Start no more devices; those in flight finish and are reported. */
  stop(): void;
  /** Start no more devices and abort those in flight (reported as ERR_ABORTED). */
  abort(): void;
  /** The counts so far (final once the iteration has ended). */
  summary(): FleetSummary;
}
