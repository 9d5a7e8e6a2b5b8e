// The `dps-mqtt diagnose ...` line that `register` prints under a failure: the same connection and
// credential flags, with every secret replaced by a placeholder (it is meant to be copied and shared).
import { parseFlags, REGISTER_FLAGS, withBareCertificateFlag } from './args.js';

/** Flags diagnose takes with the same meaning; secrets map to a placeholder. */
const CARRIED: ReadonlyArray<[flag: string, placeholder?: string]> = [
  ['endpoint'],
  ['transport'],
  ['id-scope'],
  ['registration-id'],
  ['symmetric-key', '<symmetric-key>'],
  ['group-key', '<group-key>'],
  ['cert'],
  ['key'],
  ['passphrase', '<passphrase>'],
  ['ca'],
  ['proxy'],
  ['no-proxy'],
  ['insecure'],
  ['api-version'],
];

function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A proxy URL with its password (if any) replaced. */
function withoutPassword(url: string): string {
  return url.replace(/^((?:[a-z][a-z0-9+.-]*:\/\/)?[^:/@\s]*:)[^@\s]*@/i, '$1<password>@');
}

/** `npx dps-mqtt diagnose ...` for a register command line, or undefined when it cannot be parsed. */
export function diagnoseCommandFor(argv: readonly string[]): string | undefined {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseFlags(withBareCertificateFlag([...argv]), REGISTER_FLAGS) as Record<
      string,
      string | boolean | undefined
    >;
  } catch {
    return undefined;
  }
  const parts = ['npx', 'dps-mqtt', 'diagnose'];
  for (const [flag, placeholder] of CARRIED) {
    const value = flags[flag];
    if (value === undefined || value === false) continue;
    if (value === true) {
      parts.push(`--${flag}`);
      continue;
    }
    const shown = placeholder ?? (flag === 'proxy' ? withoutPassword(value) : value);
    parts.push(`--${flag}`, shellQuote(shown));
  }
  return parts.join(' ');
}
