// The enrollments the emulator attests devices against, changed at run time by the service API: in
// memory, and with a data directory also in `enrollments.json` (the snapshot) and `enrollments.journal`
// (one line per change since) next to the registrations: storage/store-journal.ts. A change is written
// before the service API answers, so what it acknowledged survives a `kill -9`.
//
// Precedence at start: the file's enrollments are loaded first (everything the API made survives a
// restart), then the seeds (the configuration file, the `enrollments` option, the CLI flags, or the demo
// enrollments) are laid over them: a seed replaces the stored enrollment with its id at every start, so
// the configuration stays the source of truth for the ids it names. A seed that has not changed keeps
// its ETag and timestamps.
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { JsonObject } from '../../protocol/responses.js';
import { StoreJournal } from '../storage/store-journal.js';
import type { EnrollmentGroup, IndividualEnrollment } from './config.js';
import type { EnrollmentSource } from './enrollment-book.js';

export interface StoredEnrollmentMeta {
  etag: string;
  createdDateTimeUtc: string;
  lastUpdatedDateTimeUtc: string;
  /**
   * The document the service API accepted (its schema, without etag and timestamps), kept so that fields
   * the emulator does not act on are returned as they were sent. Absent for seeds from the configuration.
   */
  document?: JsonObject | undefined;
}

export interface StoredIndividualEnrollment extends StoredEnrollmentMeta {
  enrollment: IndividualEnrollment;
}

export interface StoredEnrollmentGroup extends StoredEnrollmentMeta {
  enrollment: EnrollmentGroup;
}

interface StoreFile {
  version: 1;
  individualEnrollments: StoredIndividualEnrollment[];
  enrollmentGroups: StoredEnrollmentGroup[];
}

export const ENROLLMENTS_FILE = 'enrollments.json';

export interface EnrollmentSeeds {
  individualEnrollments: IndividualEnrollment[];
  enrollmentGroups: EnrollmentGroup[];
}

export interface EnrollmentStoreOptions {
  /** A write that failed (the change is kept in memory only). */
  onWriteError?: (error: Error) => void;
  /** Something recovered at start, e.g. a torn last journal line. */
  onWarning?: (message: string) => void;
  now?: () => Date;
}

/** One journal line: an enrollment or group written, or deleted. */
type JournalEntry =
  | { putIndividual: StoredIndividualEnrollment }
  | { putGroup: StoredEnrollmentGroup }
  | { deleteIndividual: string }
  | { deleteGroup: string };

/** One kind of enrollment, by id. */
class Collection<E, S extends StoredEnrollmentMeta & { enrollment: E }> {
  readonly records = new Map<string, S>();
  constructor(readonly idOf: (enrollment: E) => string) {}

  sorted(): S[] {
    return [...this.records.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
  }
}

export class EnrollmentStore implements EnrollmentSource {
  private readonly individualRecords = new Collection<IndividualEnrollment, StoredIndividualEnrollment>(
    (enrollment) => enrollment.registrationId,
  );
  private readonly groupRecords = new Collection<EnrollmentGroup, StoredEnrollmentGroup>(
    (group) => group.enrollmentGroupId,
  );
  private readonly listeners: Array<() => void> = [];
  private journal: StoreJournal | undefined;
  private readonly now: () => Date;

  private constructor(options: EnrollmentStoreOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** An in-memory store, or one loaded from (and saved to) `dataDir`; the seeds laid over either. */
  static async open(
    dataDir: string | undefined,
    seeds: EnrollmentSeeds,
    options: EnrollmentStoreOptions = {},
  ): Promise<EnrollmentStore> {
    const store = new EnrollmentStore(options);
    if (dataDir !== undefined) {
      await mkdir(dataDir, { recursive: true });
      store.journal = StoreJournal.open({
        dataDir,
        snapshotFile: ENROLLMENTS_FILE,
        what: 'enrollments',
        readSnapshot: (json) => store.readSnapshot(json),
        replay: (entry) => store.replay(entry as JournalEntry),
        snapshot: (): StoreFile => ({
          version: 1,
          individualEnrollments: store.listIndividuals(),
          enrollmentGroups: store.listGroups(),
        }),
        ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
        ...(options.onWriteError === undefined ? {} : { onWriteError: options.onWriteError }),
      });
    }
    for (const seed of seeds.individualEnrollments) {
      const record = store.seed(store.individualRecords, seed);
      if (record !== undefined) store.journal?.append({ putIndividual: record } satisfies JournalEntry);
    }
    for (const seed of seeds.enrollmentGroups) {
      const record = store.seed(store.groupRecords, seed);
      if (record !== undefined) store.journal?.append({ putGroup: record } satisfies JournalEntry);
    }
    return store;
  }

  // EnrollmentSource: what attestation reads, at every connection.
  individual(registrationId: string): IndividualEnrollment | undefined {
    return this.individualRecords.records.get(registrationId)?.enrollment;
  }

  *individuals(): Iterable<IndividualEnrollment> {
    for (const record of this.individualRecords.records.values()) yield record.enrollment;
  }

  *groups(): Iterable<EnrollmentGroup> {
    for (const record of this.groupRecords.records.values()) yield record.enrollment;
  }

  getIndividual(registrationId: string): StoredIndividualEnrollment | undefined {
    return this.individualRecords.records.get(registrationId);
  }

  getGroup(enrollmentGroupId: string): StoredEnrollmentGroup | undefined {
    return this.groupRecords.records.get(enrollmentGroupId);
  }

  /** Sorted by registration id (stable pages for queries). */
  listIndividuals(): StoredIndividualEnrollment[] {
    return this.individualRecords.sorted();
  }

  /** Sorted by group id. */
  listGroups(): StoredEnrollmentGroup[] {
    return this.groupRecords.sorted();
  }

  /** Creates or replaces; a new ETag, the creation time kept on a replacement. */
  putIndividual(enrollment: IndividualEnrollment, document?: JsonObject): StoredIndividualEnrollment {
    const record = this.put(this.individualRecords, enrollment, document);
    this.changed({ putIndividual: record });
    return record;
  }

  putGroup(group: EnrollmentGroup, document?: JsonObject): StoredEnrollmentGroup {
    const record = this.put(this.groupRecords, group, document);
    this.changed({ putGroup: record });
    return record;
  }

  deleteIndividual(registrationId: string): boolean {
    const removed = this.individualRecords.records.delete(registrationId);
    if (removed) this.changed({ deleteIndividual: registrationId });
    return removed;
  }

  deleteGroup(enrollmentGroupId: string): boolean {
    const removed = this.groupRecords.records.delete(enrollmentGroupId);
    if (removed) this.changed({ deleteGroup: enrollmentGroupId });
    return removed;
  }

  /** Called after every change (the TLS listeners refresh their list of client CAs). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Resolves once every change so far is fsynced. */
  async flush(): Promise<void> {
    await this.journal?.flush();
  }

  /** Folds the journal into `enrollments.json` and closes it; failures join writeErrors(). */
  close(): void {
    this.journal?.close();
  }

  /** Writes that failed since the start (the data directory became unwritable, the disk filled up). */
  writeErrors(): readonly Error[] {
    return this.journal?.writeErrors() ?? [];
  }

  private put<E, S extends StoredEnrollmentMeta & { enrollment: E }>(
    collection: Collection<E, S>,
    enrollment: E,
    document: JsonObject | undefined,
  ): S {
    const id = collection.idOf(enrollment);
    const nowUtc = this.now().toISOString();
    const existing = collection.records.get(id);
    const record = {
      enrollment,
      etag: newEtag(),
      createdDateTimeUtc: existing?.createdDateTimeUtc ?? nowUtc,
      lastUpdatedDateTimeUtc: nowUtc,
      ...(document === undefined ? {} : { document }),
    } as S;
    collection.records.set(id, record);
    return record;
  }

  /** Lays a seed over the stored record with its id; the new record when that changed anything. */
  private seed<E, S extends StoredEnrollmentMeta & { enrollment: E }>(
    collection: Collection<E, S>,
    enrollment: E,
  ): S | undefined {
    const id = collection.idOf(enrollment);
    const existing = collection.records.get(id);
    if (
      existing !== undefined &&
      existing.document === undefined &&
      JSON.stringify(existing.enrollment) === JSON.stringify(enrollment)
    ) {
      return undefined;
    }
    const nowUtc = this.now().toISOString();
    const record = {
      enrollment,
      etag: newEtag(),
      createdDateTimeUtc: existing?.createdDateTimeUtc ?? nowUtc,
      lastUpdatedDateTimeUtc: nowUtc,
    } as S;
    collection.records.set(id, record);
    return record;
  }

  /** Written to the journal before the caller answers; then the listeners. */
  private changed(entry: JournalEntry): void {
    this.journal?.append(entry);
    for (const listener of this.listeners) listener();
  }

  private readSnapshot(json: unknown): void {
    const file = json as StoreFile;
    const wellFormed =
      file !== null &&
      typeof file === 'object' &&
      file.version === 1 &&
      Array.isArray(file.individualEnrollments) &&
      Array.isArray(file.enrollmentGroups) &&
      file.individualEnrollments.every(isStoredIndividual) &&
      file.enrollmentGroups.every(isStoredGroup);
    if (!wellFormed) {
      throw new Error('expected {"version":1,"individualEnrollments":[...],"enrollmentGroups":[...]}');
    }
    for (const record of file.individualEnrollments)
      this.individualRecords.records.set(record.enrollment.registrationId, record);
    for (const record of file.enrollmentGroups)
      this.groupRecords.records.set(record.enrollment.enrollmentGroupId, record);
  }

  private replay(entry: JournalEntry): void {
    if (entry === null || typeof entry !== 'object') throw new Error('not an enrollment change');
    if ('putIndividual' in entry && isStoredIndividual(entry.putIndividual)) {
      this.individualRecords.records.set(entry.putIndividual.enrollment.registrationId, entry.putIndividual);
    } else if ('putGroup' in entry && isStoredGroup(entry.putGroup)) {
      this.groupRecords.records.set(entry.putGroup.enrollment.enrollmentGroupId, entry.putGroup);
    } else if ('deleteIndividual' in entry && typeof entry.deleteIndividual === 'string') {
      this.individualRecords.records.delete(entry.deleteIndividual);
    } else if ('deleteGroup' in entry && typeof entry.deleteGroup === 'string') {
      this.groupRecords.records.delete(entry.deleteGroup);
    } else {
      throw new Error('not an enrollment change');
    }
  }
}

function isStoredIndividual(record: StoredIndividualEnrollment): boolean {
  return typeof record?.enrollment?.registrationId === 'string' && isMeta(record);
}

function isStoredGroup(record: StoredEnrollmentGroup): boolean {
  return typeof record?.enrollment?.enrollmentGroupId === 'string' && isMeta(record);
}

function isMeta(record: StoredEnrollmentMeta): boolean {
  return (
    typeof record.etag === 'string' &&
    typeof record.createdDateTimeUtc === 'string' &&
    typeof record.lastUpdatedDateTimeUtc === 'string'
  );
}

/** ETags look like the service's: base64 of a quoted UUID. */
export function newEtag(): string {
  return Buffer.from(JSON.stringify(randomUUID())).toString('base64');
}
