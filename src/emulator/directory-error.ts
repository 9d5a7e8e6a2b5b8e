// A PKI or data directory the emulator cannot create or write, said as such: not as a raw
// `EROFS: read-only file system, open '.../ca.pem.123.tmp'` about a temporary file inside it.
import { resolve, sep } from 'node:path';

/** Which option named the directory: the CLI turns it into its flag (`--data-dir`, `--pki-dir`). */
export type EmulatorDirectoryOption = 'dataDir' | 'pkiDir';

export class EmulatorDirectoryError extends Error {
  /** The directory as given. */
  readonly directory: string;
  readonly option: EmulatorDirectoryOption;
  /** The operating system's code, e.g. `EROFS`. */
  readonly reason: string;

  constructor(directory: string, option: EmulatorDirectoryOption, reason: string, cause: unknown) {
    const what = option === 'dataDir' ? 'data directory' : 'PKI directory';
    super(`the ${what} ${JSON.stringify(directory)} cannot be written: ${advice(reason)}`, { cause });
    this.name = 'EmulatorDirectoryError';
    this.directory = directory;
    this.option = option;
    this.reason = reason;
  }
}

function advice(code: string): string {
  switch (code) {
    case 'EROFS':
      return 'it is on a read-only file system (EROFS); choose a directory on a writable one';
    case 'EACCES':
    case 'EPERM':
      return `this user may not write there (${code}); fix its permissions or choose another directory`;
    case 'ENOTDIR':
    case 'EEXIST':
      return `a part of the path is a file, not a directory (${code}); choose another path`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `the disk is full (${code}); free some space or choose another directory`;
    default:
      return `${code}; choose another directory`;
  }
}

/**
 * Runs `work`, turning a file-system error about `directory` (or a file inside it) into an
 * EmulatorDirectoryError. Other errors, such as a missing openssl binary, pass through unchanged.
 */
export async function usingDirectory<T>(
  directory: string,
  option: EmulatorDirectoryOption,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw directoryErrorOf(directory, option, error);
  }
}

/**
 * The EmulatorDirectoryError for a file-system error about `directory` (or a file inside it); any other
 * error unchanged.
 */
export function directoryErrorOf(
  directory: string,
  option: EmulatorDirectoryOption,
  error: unknown,
): unknown {
  const { code, path, dest } = (error ?? {}) as { code?: unknown; path?: unknown; dest?: unknown };
  const root = resolve(directory);
  const isInside = (value: unknown): boolean =>
    typeof value === 'string' && (resolve(value) === root || resolve(value).startsWith(root + sep));
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code) && (isInside(path) || isInside(dest))) {
    return new EmulatorDirectoryError(directory, option, code, error);
  }
  return error;
}
