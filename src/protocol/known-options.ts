// Options bags are checked against the names their types declare, so a typo (`ca` for `trustedCa`) is an
// error with a suggestion instead of an option silently ignored. Shared by the client and the emulator,
// which each raise their own error type.

/** The option in `options` whose name is not in `known`, with a suggestion when one is close. */
export interface UnknownOption {
  /** The unknown name, prefixed by `path` (`security.privatekey`). */
  field: string;
  /** What to say about it: `option "ca" is unknown (did you mean "trustedCa"?): known options are ...`. */
  message: string;
}

/**
 * The first own key of `options` that `known` does not list, or undefined. `path` prefixes the names
 * in the message (`retry` gives `retry.maxDelay`).
 */
export function findUnknownOption(
  options: object,
  known: readonly string[],
  path = '',
): UnknownOption | undefined {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const field = path ? `${path}.${name}` : name;
    const suggestions = suggestOptionNames(name, known);
    const didYouMean =
      suggestions.length === 0
        ? ''
        : ` (did you mean ${suggestions.map((suggestion) => JSON.stringify(path ? `${path}.${suggestion}` : suggestion)).join(' or ')}?)`;
    const list = `known ${path ? `${path} ` : ''}options are ${known.join(', ')}`;
    return {
      field,
      message:
        suggestions.length === 0
          ? `option ${JSON.stringify(field)} is unknown: ${list}`
          : `option ${JSON.stringify(field)} is unknown${didYouMean}`,
    };
  }
  return undefined;
}

/**
 * Known names close to `name`: the same name in another case, a name one or two typos away, or a name
 * one of whose camelCase words `name` is or begins (`ca` → `trustedCa`, `cert` → `certificate`). At most two.
 */
export function suggestOptionNames(name: string, known: readonly string[]): string[] {
  const wanted = name.toLowerCase().replace(/[-_]/g, '');
  if (wanted === '') return [];
  const sameButCase = known.filter((candidate) => candidate.toLowerCase() === wanted);
  if (sameButCase.length > 0) return sameButCase.slice(0, 2);
  const scored: Array<{ candidate: string; score: number }> = [];
  for (const candidate of known) {
    let best = Number.POSITIVE_INFINITY;
    for (const part of wordRuns(candidate)) {
      if (part === wanted) best = Math.min(best, 0.5);
      else if (wanted.length >= 3 && part.startsWith(wanted)) best = Math.min(best, 1);
      else if (part.length >= 3 || part === candidate.toLowerCase()) {
        const distance = editDistance(wanted, part);
        if (distance <= Math.max(1, Math.floor(Math.min(wanted.length, part.length) / 3)))
          best = Math.min(best, distance);
      }
    }
    if (best !== Number.POSITIVE_INFINITY) scored.push({ candidate, score: best });
  }
  return scored
    .sort((one, two) => one.score - two.score)
    .slice(0, 2)
    .map((entry) => entry.candidate);
}

/** The lower-case runs of consecutive camelCase words: `trustedCa` → trustedca, trusted, ca. */
function wordRuns(name: string): string[] {
  const words = name.split(/(?=[A-Z])/).map((word) => word.toLowerCase());
  const runs: string[] = [];
  for (let start = 0; start < words.length; start += 1) {
    for (let end = start + 1; end <= words.length; end += 1) runs.push(words.slice(start, end).join(''));
  }
  return runs;
}

function editDistance(one: string, two: string): number {
  let previous = Array.from({ length: two.length + 1 }, (_, index) => index);
  for (let i = 1; i <= one.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= two.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (one[i - 1] === two[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[two.length] ?? 0;
}
