// The enrollments the emulator attests devices against, changed at run time by the service API: in
// memory, and with a data directory also in `enrollments.json` next to `registrations.json`, written
// atomically (temporary file + rename) like the registrations.
//
// Precedence at start: the file's enrollments are loaded first (everything the API made survives a
// restart), then the seeds (the configuration file, the `enrollments` option, the CLI flags, or the demo
// enrollments) are laid over them: a seed replaces the stored enrollment with its id at every start, so
// the configuration stays the source of truth for the ids it names. A seed that has not changed keeps
// its ETag and timestamps.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsonObject } from '../../protocol/responses.js';
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
  onWriteError?: (error: unknown) => void;
  now?: () => Date;
}

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
  private writing: Promise<void> | undefined;
  private dirty = false;
  private readonly now: () => Date;
  private readonly onWriteError: (error: unknown) => void;

  private constructor(
    private readonly filePath: string | undefined,
    options: EnrollmentStoreOptions,
  ) {
    this.now = options.now ?? (() => new Date());
    this.onWriteError = options.onWriteError ?? (() => {});
  }

  /** An in-memory store, or one loaded from (and saved to) `dataDir`; the seeds laid over either. */
  static async open(
    dataDir: string | undefined,
    seeds: EnrollmentSeeds,
    options: EnrollmentStoreOptions = {},
  ): Promise<EnrollmentStore> {
    let store: EnrollmentStore;
    if (dataDir === undefined) {
      store = new EnrollmentStore(undefined, options);
    } else {
      await mkdir(dataDir, { recursive: true });
      store = new EnrollmentStore(join(dataDir, ENROLLMENTS_FILE), options);
      await store.load();
    }
    let changed = false;
    for (const seed of seeds.individualEnrollments)
      changed = store.seed(store.individualRecords, seed) || changed;
    for (const seed of seeds.enrollmentGroups) changed = store.seed(store.groupRecords, seed) || changed;
    if (changed) store.scheduleWrite();
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
    return this.put(this.individualRecords, enrollment, document);
  }

  putGroup(group: EnrollmentGroup, document?: JsonObject): StoredEnrollmentGroup {
    return this.put(this.groupRecords, group, document);
  }

  deleteIndividual(registrationId: string): boolean {
    return this.remove(this.individualRecords, registrationId);
  }

  deleteGroup(enrollmentGroupId: string): boolean {
    return this.remove(this.groupRecords, enrollmentGroupId);
  }

  /** Called after every change (the TLS listeners refresh their list of client CAs). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Resolves once every change so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
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
    this.changed();
    return record;
  }

  private remove<E, S extends StoredEnrollmentMeta & { enrollment: E }>(
    collection: Collection<E, S>,
    id: string,
  ): boolean {
    const removed = collection.records.delete(id);
    if (removed) this.changed();
    return removed;
  }

  /** Lays a seed over the stored record with its id; true when that changed anything. */
  private seed<E, S extends StoredEnrollmentMeta & { enrollment: E }>(
    collection: Collection<E, S>,
    enrollment: E,
  ): boolean {
    const id = collection.idOf(enrollment);
    const existing = collection.records.get(id);
    if (
      existing !== undefined &&
      existing.document === undefined &&
      JSON.stringify(existing.enrollment) === JSON.stringify(enrollment)
    ) {
      return false;
    }
    const nowUtc = this.now().toISOString();
    collection.records.set(id, {
      enrollment,
      etag: newEtag(),
      createdDateTimeUtc: existing?.createdDateTimeUtc ?? nowUtc,
      lastUpdatedDateTimeUtc: nowUtc,
    } as S);
    return true;
  }

  private changed(): void {
    this.scheduleWrite();
    for (const listener of this.listeners) listener();
  }

  private async load(): Promise<void> {
    const filePath = this.filePath!;
    let text: string;
    try {
      text = await readFile(filePath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    let file: StoreFile;
    try {
      file = JSON.parse(text) as StoreFile;
    } catch (error) {
      throw new Error(`the enrollments file ${filePath} is not valid JSON; fix or delete it`, {
        cause: error,
      });
    }
    const wellFormed =
      file !== null &&
      typeof file === 'object' &&
      file.version === 1 &&
      Array.isArray(file.individualEnrollments) &&
      Array.isArray(file.enrollmentGroups) &&
      file.individualEnrollments.every(
        (record) => typeof record?.enrollment?.registrationId === 'string' && isMeta(record),
      ) &&
      file.enrollmentGroups.every(
        (record) => typeof record?.enrollment?.enrollmentGroupId === 'string' && isMeta(record),
      );
    if (!wellFormed) {
      throw new Error(`the enrollments file ${filePath} has an unknown format; delete it to start afresh`);
    }
    for (const record of file.individualEnrollments)
      this.individualRecords.records.set(record.enrollment.registrationId, record);
    for (const record of file.enrollmentGroups)
      this.groupRecords.records.set(record.enrollment.enrollmentGroupId, record);
  }

  private scheduleWrite(): void {
    if (this.filePath === undefined) return;
    this.dirty = true;
    if (this.writing !== undefined) return; // the running write loop picks this change up
    this.writing = this.writeLoop()
      .catch((error: unknown) => this.onWriteError(error))
      .finally(() => {
        this.writing = undefined;
      });
  }

  private async writeLoop(): Promise<void> {
    const filePath = this.filePath!;
    while (this.dirty) {
      this.dirty = false;
      const file: StoreFile = {
        version: 1,
        individualEnrollments: this.listIndividuals(),
        enrollmentGroups: this.listGroups(),
      };
      const temporary = `${filePath}.${process.pid}.tmp`;
      await writeFile(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
      await rename(temporary, filePath);
    }
  }
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
