// `--renew-before 7d | 36h | 20%`: when a certificate is close enough to its end to be renewed.

/** Renew when less than this much time, or this share of the lifetime, remains. */
export type RenewThreshold =
  | { kind: 'duration'; ms: number; text: string }
  | { kind: 'percent'; percent: number; text: string };

const UNIT_MS = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
} as const;

/**
 * Parses `7d`, `36h`, `90m`, `1.5d` (units s, m, h, d, w) or `20%` (of the certificate's lifetime,
 * more than 0 and less than 100). Throws a RangeError whose message says what is accepted.
 */
export function parseRenewThreshold(text: string): RenewThreshold {
  const trimmed = text.trim();
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(trimmed);
  if (percent) {
    const value = Number(percent[1]);
    if (value > 0 && value < 100) return { kind: 'percent', percent: value, text: trimmed };
    throw new RangeError(`a percentage must be more than 0% and less than 100%, not ${JSON.stringify(text)}`);
  }
  const duration = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(trimmed);
  if (duration) {
    const ms = Math.round(Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]);
    if (ms > 0) return { kind: 'duration', ms, text: trimmed };
  }
  throw new RangeError(
    `give a duration such as 7d, 36h, 90m or 2w, or a share of the lifetime such as 20%, not ${JSON.stringify(text)}`,
  );
}

/**
 * True when a certificate valid from notBefore to notAfter still has more left than the threshold at
 * `now`: more than the duration, or more than the percentage of its whole lifetime. A certificate not
 * yet valid, or expired, is never fresh.
 */
export function isBeyondThreshold(
  validity: { notBefore: Date; notAfter: Date },
  threshold: RenewThreshold,
  now: Date,
): boolean {
  const start = validity.notBefore.getTime();
  const end = validity.notAfter.getTime();
  const remaining = end - now.getTime();
  if (now.getTime() < start || remaining <= 0) return false;
  if (threshold.kind === 'duration') return remaining > threshold.ms;
  return remaining > ((end - start) * threshold.percent) / 100;
}
