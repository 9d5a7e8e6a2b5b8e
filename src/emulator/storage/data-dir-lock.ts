// One emulator per data directory: `emulator.lock` in it names the process that holds it (pid, host,
// start time). A second emulator is refused with that name; a lock left by a process that no longer
// runs (killed, crashed) on this host is taken over, and the caller says so in its log.
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'emulator.lock';

export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
}

/** Another emulator (a live process, or one on another host) holds the data directory. */
export class EmulatorDataDirInUseError extends Error {
  readonly dataDir: string;
  readonly lockPath: string;
  readonly owner: LockOwner;

  constructor(dataDir: string, lockPath: string, owner: LockOwner) {
    const where = owner.host === hostname() ? '' : ` on host ${owner.host}`;
    super(
      `the data directory ${JSON.stringify(dataDir)} is in use by another emulator (process ${owner.pid}${where}, started ${owner.startedAt}): stop that one, or choose another data directory; if no emulator runs there any more, delete ${lockPath}`,
    );
    this.name = 'EmulatorDataDirInUseError';
    this.dataDir = dataDir;
    this.lockPath = lockPath;
    this.owner = owner;
  }
}

export class DataDirLock {
  private released = false;

  private constructor(
    readonly path: string,
    readonly owner: LockOwner,
  ) {}

  /**
   * Takes the data directory's lock; throws EmulatorDataDirInUseError when a live process holds it.
   * `onStaleLock` hears of a lock taken over from a process that is gone.
   */
  static acquire(dataDir: string, onStaleLock: (previous: LockOwner) => void = () => {}): DataDirLock {
    const path = join(dataDir, LOCK_FILE);
    const owner: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
    // The lock appears whole or not at all: written under a private name, then hard-linked into place
    // (link fails if the name exists, atomically, unlike a check followed by a write).
    const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(owner)}\n`, { mode: 0o644 });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(temporary, path);
          return new DataDirLock(path, owner);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const holder = readOwner(path);
        if (holder === undefined) continue; // released between our link and our read
        if (holder.host !== owner.host || isAlive(holder.pid)) {
          throw new EmulatorDataDirInUseError(dataDir, path, holder);
        }
        rmSync(path, { force: true });
        onStaleLock(holder);
      }
      throw new Error(`cannot take the lock ${path}: other processes keep taking and releasing it`);
    } finally {
      rmSync(temporary, { force: true });
    }
  }

  /** Removes the lock if it is still this process's; never throws (the directory may be gone). */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      const holder = readOwner(this.path);
      if (holder?.pid === this.owner.pid && holder.startedAt === this.owner.startedAt) {
        rmSync(this.path, { force: true });
      }
    } catch {
      // the data directory became unwritable or vanished: the store errors say so
    }
  }
}

/** The lock's owner; undefined when there is no lock. An unreadable lock counts as held by nobody alive. */
function readOwner(path: string): LockOwner | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const json = JSON.parse(text) as LockOwner;
    if (Number.isInteger(json.pid) && typeof json.host === 'string' && typeof json.startedAt === 'string') {
      return json;
    }
  } catch {
    // fall through
  }
  // Written by link from a whole file, so this is not another emulator mid-write: not ours to honour.
  return { pid: 0, host: hostname(), startedAt: 'unknown (the lock file is damaged)' };
}

function isAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
