// Exit codes of `dps-mqtt` (documented in docs/cli.md): one per thing a script can act on.
import { UsageError } from './args.js';

export const ExitCode = {
  /** The device is assigned (or the command did what it was asked). */
  ok: 0,
  /** An unexpected failure: a bug, or the emulator could not start. */
  failure: 1,
  /** Bad input or usage: unknown flag, missing value, malformed key/ID/file. Nothing was sent. */
  usage: 2,
  /** The service refused the credentials: CONNACK refusal, or DPS answered 401/403. */
  credentials: 3,
  /** The service answered with an error, broke the protocol, or the registration failed or is disabled. */
  service: 4,
  /** The deadline (--timeout) passed. */
  timeout: 5,
  /** The network, TLS, WebSocket or proxy failed. */
  network: 6,
  /**
   * `--out DIR` cannot be used: its files are corrupt, for another registration or not dps-mqtt's, or
   * cannot be read or written. Nothing in DIR was changed.
   */
  certificateDirectory: 7,
  /** Interrupted (Ctrl+C / SIGINT): 128 + 2, the shell convention. */
  aborted: 130,
  /** Stopped by SIGTERM, after the connection was closed and the error printed: 128 + 15. */
  terminated: 143,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * The exit code for an error. Mapped by the errors' stable `code` (not instanceof), so errors from
 * another copy of the library map the same way.
 */
export function exitCodeFor(error: unknown): ExitCodeValue {
  if (error instanceof UsageError) return ExitCode.usage;
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ERR_INVALID_INPUT':
    case 'ERR_NOT_SUPPORTED':
      return ExitCode.usage;
    case 'ERR_AUTHENTICATION':
      return ExitCode.credentials;
    case 'ERR_SERVICE': {
      const statusCode = (error as { statusCode?: unknown }).statusCode;
      return statusCode === 401 || statusCode === 403 ? ExitCode.credentials : ExitCode.service;
    }
    case 'ERR_REGISTRATION_FAILED':
    case 'ERR_PROTOCOL':
    // The service issued a chain that fails a check: like a protocol error, the service's fault.
    case 'ERR_CERTIFICATE_CHAIN':
      return ExitCode.service;
    case 'ERR_CERTIFICATE_DIRECTORY':
      return ExitCode.certificateDirectory;
    case 'ERR_TIMEOUT':
      return ExitCode.timeout;
    case 'ERR_TRANSPORT':
    case 'ERR_PROXY':
      return ExitCode.network;
    case 'ERR_ABORTED':
      return ExitCode.aborted;
    default:
      return ExitCode.failure;
  }
}
