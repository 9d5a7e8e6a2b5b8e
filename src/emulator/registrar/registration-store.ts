// Device registrations: in memory, and with a data directory also in `registrations.json`, written
// atomically (temporary file + rename) so a crash never leaves half a file. Writes are coalesced: a
// burst of thousands of registrations costs a few writes, not thousands.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsonObject } from '../../protocol/responses.js';

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
}

interface StoreFile {
  version: 1;
  registrations: RegistrationRecord[];
}

export const REGISTRATIONS_FILE = 'registrations.json';

export class RegistrationStore {
  private readonly records = new Map<string, RegistrationRecord>();
  private writing: Promise<void> | undefined;
  private dirty = false;

  private constructor(
    private readonly filePath: string | undefined,
    private readonly onWriteError: (error: unknown) => void,
  ) {}

  /** An in-memory store, or one loaded from (and saved to) `dataDir`. */
  static async open(
    dataDir: string | undefined,
    onWriteError: (error: unknown) => void = () => {},
  ): Promise<RegistrationStore> {
    if (dataDir === undefined) return new RegistrationStore(undefined, onWriteError);
    await mkdir(dataDir, { recursive: true });
    const store = new RegistrationStore(join(dataDir, REGISTRATIONS_FILE), onWriteError);
    await store.load();
    return store;
  }

  get(registrationId: string): RegistrationRecord | undefined {
    return this.records.get(registrationId);
  }

  all(): RegistrationRecord[] {
    return [...this.records.values()];
  }

  put(record: RegistrationRecord): void {
    this.records.set(record.registrationId, record);
    this.scheduleWrite();
  }

  /** Forgets a registration (the service API's DELETE): the device's next registration starts afresh. */
  delete(registrationId: string): boolean {
    const deleted = this.records.delete(registrationId);
    if (deleted) this.scheduleWrite();
    return deleted;
  }

  /** Resolves once everything put so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }

  private async load(): Promise<void> {
    if (this.filePath === undefined) return;
    let text: string;
    try {
      text = await readFile(this.filePath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    let file: StoreFile;
    try {
      file = JSON.parse(text) as StoreFile;
    } catch (error) {
      throw new Error(`the registrations file ${this.filePath} is not valid JSON; fix or delete it`, {
        cause: error,
      });
    }
    if (file.version !== 1 || !Array.isArray(file.registrations)) {
      throw new Error(
        `the registrations file ${this.filePath} has an unknown format; delete it to start afresh`,
      );
    }
    for (const record of file.registrations) this.records.set(record.registrationId, record);
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
      const file: StoreFile = { version: 1, registrations: this.all() };
      const temporary = `${filePath}.${process.pid}.tmp`;
      await writeFile(temporary, `${JSON.stringify(file, null, 2)}\n`);
      await rename(temporary, filePath);
    }
  }
}
