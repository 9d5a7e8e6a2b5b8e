// A store's file pair in the data directory: a snapshot (`registrations.json`, the whole state, written
// durably) and a journal (`registrations.journal`, one JSON line per change since the snapshot).
//
// append() writes its line with a synchronous write before it returns, so a change is in the operating
// system's hands before the caller answers anyone: it survives the process being killed at any moment
// (kill -9). The fsync that also protects it from the machine crashing follows on the thread pool,
// batched (one fdatasync covers every line written before it started); flush() waits for it.
// The journal is folded into the snapshot at start, at close and whenever it outgrows the snapshot.
//
// On start a torn last line (the process killed in the middle of a write) is ignored and reported as a
// warning; a damaged snapshot, or a damaged line followed by good ones, stops the start with a message
// naming the file: it is never replaced silently.
import { closeSync, fdatasync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeAllSync, writeFileDurablySync } from './durable-file.js';

export interface StoreJournalOptions {
  dataDir: string;
  /** e.g. `registrations.json`; the journal is the same name with `.journal` for `.json`. */
  snapshotFile: string;
  /** What the files hold, for messages: `registrations`. */
  what: string;
  /** File mode of new files; owner-only by default. */
  mode?: number;
  /** Fills the store from the snapshot's JSON; throws (with a message) when its shape is unknown. */
  readSnapshot(json: unknown): void;
  /** Applies one journal entry; throws when its shape is unknown. */
  replay(entry: unknown): void;
  /** The store's whole state, as the snapshot's JSON. */
  snapshot(): unknown;
  /** Something the store recovered from (a torn last journal line). */
  onWarning?(message: string): void;
  /** A write that failed: the change is kept in memory only. */
  onWriteError?(error: Error): void;
}

/** Journal lines beyond this many bytes, and beyond the snapshot's size, fold into the snapshot. */
const MIN_COMPACTION_BYTES = 1024 * 1024;

export class StoreJournal {
  private fd: number | undefined;
  private journalBytes = 0;
  private snapshotBytes = 0;
  /** Lines appended so far, and how many of them the last finished fdatasync covers. */
  private appended = 0;
  private synced = 0;
  private syncing = false;
  private waiters: Array<{ target: number; resolve: () => void }> = [];
  private readonly errors: Error[] = [];
  /** After a failed write nothing more is appended (no holes): close() tries a whole snapshot instead. */
  private broken = false;

  private constructor(
    private readonly options: StoreJournalOptions,
    private readonly snapshotPath: string,
    private readonly journalPath: string,
  ) {}

  /** Loads the snapshot and replays the journal into the store, folds them together, opens the journal. */
  static open(options: StoreJournalOptions): StoreJournal {
    const snapshotPath = join(options.dataDir, options.snapshotFile);
    const journalPath = join(options.dataDir, `${options.snapshotFile.replace(/\.json$/, '')}.journal`);
    const journal = new StoreJournal(options, snapshotPath, journalPath);
    journal.load();
    return journal;
  }

  /** Writes one change; the caller may answer as soon as this returns. Never throws: see writeErrors(). */
  append(entry: object): void {
    if (this.fd === undefined || this.broken) return;
    const line = Buffer.from(`${JSON.stringify(entry)}\n`, 'utf8');
    try {
      writeAllSync(this.fd, line);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.appended++;
    this.journalBytes += line.length;
    if (this.journalBytes > Math.max(MIN_COMPACTION_BYTES, this.snapshotBytes)) {
      this.compact();
      return;
    }
    this.sync();
  }

  /** Resolves once everything appended so far is fsynced (or could not be: see writeErrors()). */
  flush(): Promise<void> {
    if (this.fd === undefined || this.broken || this.synced >= this.appended) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push({ target: this.appended, resolve });
      this.sync();
    });
  }

  /** Folds the journal into the snapshot and closes the file; a failure joins writeErrors(). */
  close(): void {
    if (this.fd === undefined) return;
    // A journal that failed is not trusted: the whole state goes to the snapshot, or the error stays.
    this.compact();
    try {
      closeSync(this.fd);
    } catch {
      // nothing left to lose: the snapshot is written or the error reported
    }
    this.fd = undefined;
    this.release();
  }

  /** Every write that failed since the start, oldest first. */
  writeErrors(): readonly Error[] {
    return this.errors;
  }

  private load(): void {
    const { what } = this.options;
    const snapshotText = readIfExists(this.snapshotPath);
    if (snapshotText !== undefined) {
      let json: unknown;
      try {
        json = JSON.parse(snapshotText);
      } catch (error) {
        throw new Error(
          `the ${what} file ${this.snapshotPath} is not valid JSON (${(error as Error).message}); it was left as it is: repair it, or move it away to start without the ${what}`,
          { cause: error },
        );
      }
      try {
        this.options.readSnapshot(json);
      } catch (error) {
        throw new Error(
          `the ${what} file ${this.snapshotPath} has an unknown format (${(error as Error).message}); it was left as it is: move it away to start without the ${what}`,
          { cause: error },
        );
      }
      this.snapshotBytes = Buffer.byteLength(snapshotText);
    }
    const journalText = readIfExists(this.journalPath);
    if (journalText !== undefined && journalText.length > 0) {
      this.replayJournal(journalText);
      // Fold now: the torn tail, if any, must not sit in front of the next appended line.
      this.writeSnapshot();
      this.fd = openSync(this.journalPath, 'w', this.options.mode ?? 0o600);
    } else {
      this.fd = openSync(this.journalPath, 'a', this.options.mode ?? 0o600);
    }
  }

  private replayJournal(text: string): void {
    const lines = text.split('\n');
    // The text after the last newline is a line the process was killed in the middle of writing.
    const tail = lines.pop() ?? '';
    const parsed: unknown[] = [];
    let firstBad: number | undefined;
    for (const [index, line] of lines.entries()) {
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch {
        firstBad ??= index;
        continue;
      }
      if (firstBad !== undefined) {
        throw new Error(
          `the ${this.options.what} journal ${this.journalPath} is damaged at line ${firstBad + 1} (good lines follow it); it was left as it is: repair or remove that line`,
        );
      }
      parsed.push(entry);
    }
    for (const [index, entry] of parsed.entries()) {
      try {
        this.options.replay(entry);
      } catch (error) {
        throw new Error(
          `the ${this.options.what} journal ${this.journalPath} has an entry of unknown shape at line ${index + 1}; it was left as it is: repair or remove that line`,
          { cause: error },
        );
      }
    }
    const ignored = (firstBad === undefined ? 0 : lines.length - firstBad) + (tail === '' ? 0 : 1);
    if (ignored > 0) {
      this.options.onWarning?.(
        `the ${this.options.what} journal ${this.journalPath} ended with ${ignored} incomplete line${ignored === 1 ? '' : 's'} (a write cut short by a crash): ignored; ${parsed.length} change${parsed.length === 1 ? '' : 's'} recovered`,
      );
    }
  }

  /** The snapshot now, then an empty journal; on failure the journal is kept and the error recorded. */
  private compact(): void {
    if (this.fd === undefined) return;
    try {
      this.writeSnapshot();
      ftruncateSync(this.fd, 0);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.journalBytes = 0;
    // The snapshot is fsynced and holds every change: a journal in trouble before is whole again.
    this.broken = false;
    this.synced = this.appended;
    this.release();
  }

  private writeSnapshot(): void {
    const text = `${JSON.stringify(this.options.snapshot(), null, 2)}\n`;
    writeFileDurablySync(this.snapshotPath, text, this.options.mode ?? 0o600);
    this.snapshotBytes = Buffer.byteLength(text);
  }

  /** One fdatasync at a time; each covers every line written before it started. */
  private sync(): void {
    if (this.syncing || this.fd === undefined || this.synced >= this.appended) return;
    this.syncing = true;
    const target = this.appended;
    fdatasync(this.fd, (error) => {
      this.syncing = false;
      if (this.fd === undefined) return; // closed meanwhile: close() wrote the snapshot
      if (error !== null) this.fail(error);
      else this.synced = Math.max(this.synced, target);
      this.release();
      if (!this.broken) this.sync();
    });
  }

  private release(): void {
    const done = this.broken || this.fd === undefined;
    const waiting = this.waiters;
    this.waiters = [];
    for (const waiter of waiting) {
      if (done || waiter.target <= this.synced) waiter.resolve();
      else this.waiters.push(waiter);
    }
  }

  private fail(error: unknown): void {
    const failure = error instanceof Error ? error : new Error(String(error));
    this.broken = true;
    this.errors.push(failure);
    this.options.onWriteError?.(failure);
    this.release();
  }
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
