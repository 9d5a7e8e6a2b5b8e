// Device registrations: in memory, and with a data directory also in `registrations.json` (the snapshot)
// and `registrations.journal` (one line per change since): storage/store-journal.ts. A registration is
// written before put() returns, so the answer that tells the device it is assigned goes out after it is
// on disk: a `kill -9` at any moment loses nothing a device was told.
import { mkdir } from 'node:fs/promises';
import type { JsonObject } from '../../protocol/responses.js';
import { StoreJournal } from '../storage/store-journal.js';

export interface RegistrationRecord {
  registrationId: string;
  deviceId: string;
  assignedHub: string;
  createdDateTimeUtc: string;
  lastUpdatedDateTimeUtc: string;
  etag: string;
  substatus: string;
  /** `individual` or the enrollment group id: which enrollment the device was provisioned by. */
  enrollment: { kind: 'individual' | 'group'; id: string };
  initialTwin?: JsonObject | undefined;
  /** The last certificate issued to the device (certificate issuance); the certificate itself is not kept. */
  issuedCertificate?: { serialNumber: string; notBeforeUtc: string; notAfterUtc: string } | undefined;
  /** Every hub the device has been assigned to, oldest first (re-provisioning: back on a hub it had). */
  hubHistory?: string[] | undefined;
}

interface StoreFile {
  version: 1;
  registrations: RegistrationRecord[];
}

export const REGISTRATIONS_FILE = 'registrations.json';

export interface RegistrationStoreOptions {
  /** A write that failed (the change is kept in memory only). */
  onWriteError?: (error: Error) => void;
  /** Something recovered at start, e.g. a torn last journal line. */
  onWarning?: (message: string) => void;
}

/** One journal line: a registration written, or forgotten. */
type JournalEntry = { put: RegistrationRecord } | { delete: string };

export class RegistrationStore {
  private readonly records = new Map<string, RegistrationRecord>();
  private journal: StoreJournal | undefined;

  private constructor() {}

  /** An in-memory store, or one loaded from (and saved to) `dataDir`. */
  static async open(
    dataDir: string | undefined,
    options: RegistrationStoreOptions = {},
  ): Promise<RegistrationStore> {
    const store = new RegistrationStore();
    if (dataDir === undefined) return store;
    await mkdir(dataDir, { recursive: true });
    store.journal = StoreJournal.open({
      dataDir,
      snapshotFile: REGISTRATIONS_FILE,
      what: 'registrations',
      readSnapshot: (json) => store.readSnapshot(json),
      replay: (entry) => store.replay(entry as JournalEntry),
      snapshot: (): StoreFile => ({ version: 1, registrations: store.all() }),
      ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
      ...(options.onWriteError === undefined ? {} : { onWriteError: options.onWriteError }),
    });
    return store;
  }

  get(registrationId: string): RegistrationRecord | undefined {
    return this.records.get(registrationId);
  }

  all(): RegistrationRecord[] {
    return [...this.records.values()];
  }

  /** Keeps the registration; with a data directory it is written to the journal before this returns. */
  put(record: RegistrationRecord): void {
    this.records.set(record.registrationId, record);
    this.journal?.append({ put: record } satisfies JournalEntry);
  }

  /** Forgets a registration (the service API's DELETE): the device's next registration starts afresh. */
  delete(registrationId: string): boolean {
    const deleted = this.records.delete(registrationId);
    if (deleted) this.journal?.append({ delete: registrationId } satisfies JournalEntry);
    return deleted;
  }

  /** Resolves once everything put so far is fsynced. */
  async flush(): Promise<void> {
    await this.journal?.flush();
  }

  /** Folds the journal into `registrations.json` and closes it; failures join writeErrors(). */
  close(): void {
    this.journal?.close();
  }

  /** Writes that failed since the start (the data directory became unwritable, the disk filled up). */
  writeErrors(): readonly Error[] {
    return this.journal?.writeErrors() ?? [];
  }

  private readSnapshot(json: unknown): void {
    const file = json as StoreFile | null;
    if (
      file === null ||
      typeof file !== 'object' ||
      file.version !== 1 ||
      !Array.isArray(file.registrations) ||
      !file.registrations.every(isRecord)
    ) {
      throw new Error('expected {"version":1,"registrations":[...]}');
    }
    for (const record of file.registrations) this.records.set(record.registrationId, record);
  }

  private replay(entry: JournalEntry): void {
    if (entry !== null && typeof entry === 'object' && 'put' in entry && isRecord(entry.put)) {
      this.records.set(entry.put.registrationId, entry.put);
    } else if (
      entry !== null &&
      typeof entry === 'object' &&
      'delete' in entry &&
      typeof entry.delete === 'string'
    ) {
      this.records.delete(entry.delete);
    } else {
      throw new Error('not a registration change');
    }
  }
}

function isRecord(value: unknown): value is RegistrationRecord {
  const record = value as RegistrationRecord | null;
  return (
    record !== null &&
    typeof record === 'object' &&
    typeof record.registrationId === 'string' &&
    typeof record.deviceId === 'string' &&
    typeof record.assignedHub === 'string'
  );
}
