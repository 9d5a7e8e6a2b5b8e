// Running one step: timing it, and turning a thrown error into a failed step that says what happened.
import { performance } from 'node:perf_hooks';
import type { TransportFailureReason } from '../protocol/errors.js';
import { flagHintForReason } from './flag-hints.js';
import type { StepName, StepResult } from './types.js';

export type StepOutcome = Omit<StepResult, 'step' | 'durationMs'>;

export async function timedStep(
  step: StepName,
  run: () => StepOutcome | Promise<StepOutcome>,
): Promise<StepResult> {
  const startedAt = performance.now();
  let outcome: StepOutcome;
  try {
    outcome = await run();
  } catch (error) {
    outcome = failureFrom(error);
  }
  return { step, durationMs: Math.round(performance.now() - startedAt), ...outcome };
}

export function skipped(step: StepName, summary: string): StepResult {
  return { step, status: 'skip', durationMs: 0, summary };
}

interface ErrorShape {
  code?: unknown;
  phase?: unknown;
  hint?: unknown;
  reason?: unknown;
}

/** A failed step from a library error: its message, the flag-worded hint for its reason, its code and phase. */
export function failureFrom(error: unknown, extra: Partial<StepOutcome> = {}): StepOutcome {
  const fields: ErrorShape = typeof error === 'object' && error !== null ? (error as ErrorShape) : {};
  const message = error instanceof Error ? error.message : String(error);
  const code = typeof fields.code === 'string' ? fields.code : 'ERR_INTERNAL';
  const phase = typeof fields.phase === 'string' ? fields.phase : undefined;
  const hint =
    flagHintForReason(fields.reason as TransportFailureReason | undefined) ??
    (typeof fields.hint === 'string' ? fields.hint : undefined);
  return {
    status: 'fail',
    summary: message,
    ...(hint === undefined ? {} : { hint }),
    error: { code, phase, message },
    ...extra,
  };
}
