// The emulator's service connection string: a key generated on first start and kept in the data directory
// (`service-credentials.json`, written atomically and fsynced, readable by the owner only), or for this run only
// without one. The host name is `localhost`: the official service SDK dials port 443 of that name, so on
// another port it needs an agent (docs/emulator.md, "Service API").
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  formatServiceConnectionString,
  SERVICE_KEY_NAME,
  type ServiceConnectionString,
} from '../../protocol/service-sas.js';
import { writeFileDurablySync } from '../storage/durable-file.js';

export const SERVICE_CREDENTIALS_FILE = 'service-credentials.json';
export const SERVICE_HOST_NAME = 'localhost';

export interface ServiceCredentials extends ServiceConnectionString {
  connectionString: string;
}

interface CredentialsFile {
  version: 1;
  keyName: string;
  key: string;
}

export async function loadServiceCredentials(dataDir: string | undefined): Promise<ServiceCredentials> {
  let key: string | undefined;
  if (dataDir !== undefined) {
    const path = join(dataDir, SERVICE_CREDENTIALS_FILE);
    key = await readKey(path);
    if (key === undefined) {
      key = newKey();
      await mkdir(dataDir, { recursive: true });
      const file: CredentialsFile = { version: 1, keyName: SERVICE_KEY_NAME, key };
      writeFileDurablySync(path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
    }
  }
  const parts = { hostName: SERVICE_HOST_NAME, keyName: SERVICE_KEY_NAME, key: key ?? newKey() };
  return { ...parts, connectionString: formatServiceConnectionString(parts) };
}

async function readKey(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let file: CredentialsFile | undefined;
  try {
    file = JSON.parse(text) as CredentialsFile;
  } catch {
    file = undefined;
  }
  if (
    file?.version !== 1 ||
    file.keyName !== SERVICE_KEY_NAME ||
    typeof file.key !== 'string' ||
    Buffer.from(file.key, 'base64').length < 16
  ) {
    throw new Error(
      `the service credentials file ${path} has an unknown format; delete it and a new key is generated`,
    );
  }
  return file.key;
}

function newKey(): string {
  return randomBytes(32).toString('base64');
}
