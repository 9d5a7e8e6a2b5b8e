// One bound for a whole open: the caller's AbortSignal composed with a timer, and the typed error to
// raise when it fires, naming the phase that was in progress.
import { AbortError, DpsError, InvalidInputError, type Phase, TimeoutError } from '../protocol/errors.js';
import { DEFAULT_OPEN_TIMEOUT_MS } from './types.js';

/** The abort reason of an expired deadline: carries the bound so the message can state it. */
class DeadlineExceeded extends Error {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`no connection within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

export interface Deadline {
  signal: AbortSignal;
  /** Stops the timer; call once the open has settled either way. */
  dispose(): void;
}

/**
 * `timeoutMs` defaults to DEFAULT_OPEN_TIMEOUT_MS; `Infinity` means the caller's signal alone bounds the
 * open (used when an outer layer already holds the deadline).
 */
export function startDeadline(options: {
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
}): Deadline {
  const timeoutMs = options.timeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new InvalidInputError(
      'timeoutMs',
      `timeoutMs ${String(timeoutMs)} is invalid: give milliseconds (0 or more)`,
    );
  }
  if (timeoutMs === Number.POSITIVE_INFINITY) {
    return { signal: options.signal ?? new AbortController().signal, dispose() {} };
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DeadlineExceeded(timeoutMs)), timeoutMs);
  timer.unref();
  // The caller's signal is followed with one listener, removed at dispose(), rather than AbortSignal.any():
  // on Node 20 that costs more per open than the rest of this module, and keeps its sources referenced.
  const outer = options.signal;
  if (outer === undefined) return { signal: controller.signal, dispose: () => clearTimeout(timer) };
  const followOuter = (): void => controller.abort(outer.reason);
  if (outer.aborted) followOuter();
  else outer.addEventListener('abort', followOuter, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      outer.removeEventListener('abort', followOuter);
    },
  };
}

/** True when the signal fired because the deadline expired (rather than the caller aborting). */
export function isDeadlineExceeded(signal: AbortSignal): boolean {
  return signal.reason instanceof DeadlineExceeded;
}

/**
 * The error an aborted open rejects with: TimeoutError when the deadline expired, the caller's own reason
 * when it is already a DpsError, AbortError otherwise.
 */
export function abortedError(signal: AbortSignal, phase: Phase, target: string): DpsError {
  const reason: unknown = signal.reason;
  if (reason instanceof DeadlineExceeded) {
    return new TimeoutError(
      `opening ${target} took longer than ${reason.timeoutMs} ms (stopped during the ${phaseName(phase)}): ` +
        'check the host, port and network path, or raise timeoutMs',
      { phase },
    );
  }
  if (reason instanceof DpsError) return reason;
  return new AbortError(`opening ${target} was aborted during the ${phaseName(phase)}`, {
    phase,
    cause: reason,
  });
}

function phaseName(phase: Phase): string {
  switch (phase) {
    case 'proxy':
      return 'proxy CONNECT';
    case 'tcp':
      return 'TCP connect';
    case 'tls':
      return 'TLS handshake';
    case 'websocket':
      return 'WebSocket upgrade';
    default:
      return phase;
  }
}
