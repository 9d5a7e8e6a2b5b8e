// The shapes of `dps-mqtt diagnose`: what is checked (the options), and what each step saw (the report).
import type { DeviceSecurity, TransportKind } from '../client/types.js';
import type { JsonValue } from '../protocol/responses.js';

/** The steps, in the order they run; a transport's run stops at the first that fails. */
export const STEP_NAMES = [
  'input',
  'dns',
  'tcp',
  'proxy',
  'tls',
  'tls-inspection',
  'websocket',
  'clock',
  'connect',
  'subscribe',
  'register',
] as const;

export type StepName = (typeof STEP_NAMES)[number];

/** `warn`: it passed, but something is off (a certificate about to expire, a clock a few minutes off). */
export type StepStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface StepResult {
  step: StepName;
  status: StepStatus;
  durationMs: number;
  /** One line: what the step saw. */
  summary: string;
  /** What the step measured, for --json (no secrets). */
  details?: { [key: string]: JsonValue };
  /** For a failure: the likely causes, most likely first. */
  causes?: string[];
  /** What to do. */
  hint?: string;
  /** The library error behind a failure. */
  error?: { code: string; phase: string | undefined; message: string };
}

export interface TransportDiagnosis {
  transport: TransportKind;
  /** host:port */
  endpoint: string;
  ok: boolean;
  /** The first step that failed, when one did. */
  failedStep?: StepName;
  steps: StepResult[];
}

export interface DiagnosisReport {
  ok: boolean;
  /** The first failing step of the first transport that failed. */
  failedStep?: StepName;
  /** The transports that passed every step. */
  working: TransportKind[];
  transports: TransportDiagnosis[];
}

export interface DiagnoseOptions {
  idScope: string;
  registrationId?: string;
  security: DeviceSecurity;
  /** Host, or host:port; default global.azure-devices-provisioning.net. */
  endpoint?: string;
  /** Default mqtt-ws; `both` checks MQTT over WebSocket and MQTT over TLS. */
  transport?: TransportKind | 'both';
  /** Ports for `both` (default 443 and 8883); a port in `endpoint` applies to a single transport. */
  webSocketPort?: number;
  mqttPort?: number;
  trustedCa?: string;
  trustMode?: 'replace' | 'extend';
  /** As for register(): a URL, an object, false for none; default HTTPS_PROXY unless NO_PROXY matches. */
  proxy?: string | { host: string; port: number; username?: string; password?: string } | false;
  insecureSkipVerify?: boolean;
  apiVersion?: string;
  /** Also run a full registration after SUBSCRIBE. */
  register?: boolean;
  payload?: JsonValue;
  /** Bound on each network step, in milliseconds; default 10 000. */
  stepTimeoutMs?: number;
  signal?: AbortSignal;
  /** Called as each step settles (for a checklist printed as it goes). */
  onStep?: (transport: TransportKind, result: StepResult, endpoint: string) => void;
  /** The environment the proxy is taken from; default process.env. */
  env?: NodeJS.ProcessEnv;
}
