// A fleet's device list from a file: JSON Lines (one object a line) or CSV with a header row. Columns
// and fields: registrationId, and optionally symmetricKey, or certificate + privateKey (+ passphrase)
// as PEM file paths; JSON Lines may add a payload. A device with no credential uses the group key.
import { InvalidInputError } from '../protocol/errors.js';
import type { JsonValue } from '../protocol/responses.js';
import type { FleetDeviceEntry } from './types.js';

const FIELDS = ['registrationId', 'symmetricKey', 'certificate', 'privateKey', 'passphrase'] as const;
type Field = (typeof FIELDS)[number];
/** Header spellings people use for the same column. */
const ALIASES: Record<string, Field> = {
  registrationid: 'registrationId',
  registration_id: 'registrationId',
  'registration-id': 'registrationId',
  symmetrickey: 'symmetricKey',
  symmetric_key: 'symmetricKey',
  'symmetric-key': 'symmetricKey',
  certificate: 'certificate',
  cert: 'certificate',
  privatekey: 'privateKey',
  private_key: 'privateKey',
  'private-key': 'privateKey',
  passphrase: 'passphrase',
};

function fileError(name: string, line: number, message: string): InvalidInputError {
  return new InvalidInputError('devices', `${name} line ${line}: ${message}`);
}

/** The devices listed in `text` (the file's content); `name` is used in messages. */
export function parseDeviceFile(text: string, name = 'the device file'): FleetDeviceEntry[] {
  const firstLine = text.replace(/^\uFEFF/, '').trimStart();
  return firstLine.startsWith('{') ? parseJsonLines(text, name) : parseCsv(text, name);
}

function parseJsonLines(text: string, name: string): FleetDeviceEntry[] {
  const entries: FleetDeviceEntry[] = [];
  text.split(/\r?\n/).forEach((line, position) => {
    const lineNumber = position + 1;
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw fileError(name, lineNumber, `not JSON (${(error as Error).message})`);
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      throw fileError(name, lineNumber, 'expected an object such as {"registrationId":"dev-1"}');
    }
    const entry: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
      const known = key === 'payload' ? 'payload' : ALIASES[key.toLowerCase()];
      if (known === undefined) {
        throw fileError(name, lineNumber, `unknown field "${key}": use ${FIELDS.join(', ')}, payload`);
      }
      if (known !== 'payload' && typeof field !== 'string') {
        throw fileError(name, lineNumber, `"${key}" must be a string`);
      }
      entry[known] = field;
    }
    entries.push(checkedEntry(entry, name, lineNumber));
  });
  return entries;
}

function parseCsv(text: string, name: string): FleetDeviceEntry[] {
  const rows = csvRows(text.replace(/^\uFEFF/, ''), name);
  const header = rows.shift();
  if (header === undefined) return [];
  const columns = header.cells.map((cell) => {
    const field = ALIASES[cell.trim().toLowerCase()];
    if (field === undefined) {
      throw fileError(
        name,
        header.line,
        `unknown column "${cell}": the header names the columns, e.g. registrationId,symmetricKey (known: ${FIELDS.join(', ')})`,
      );
    }
    return field;
  });
  if (!columns.includes('registrationId')) {
    throw fileError(name, header.line, 'the header has no registrationId column');
  }
  return rows
    .filter((row) => row.cells.some((cell) => cell.trim() !== ''))
    .map((row) => {
      if (row.cells.length !== columns.length) {
        throw fileError(name, row.line, `${row.cells.length} cells, but the header has ${columns.length}`);
      }
      const entry: Record<string, unknown> = {};
      columns.forEach((field, column) => {
        const cell = (row.cells[column] as string).trim();
        if (cell !== '') entry[field] = cell;
      });
      return checkedEntry(entry, name, row.line);
    });
}

function checkedEntry(entry: Record<string, unknown>, name: string, line: number): FleetDeviceEntry {
  if (typeof entry.registrationId !== 'string' || entry.registrationId === '') {
    throw fileError(name, line, 'registrationId is missing');
  }
  const result: FleetDeviceEntry = { registrationId: entry.registrationId };
  for (const field of ['symmetricKey', 'certificate', 'privateKey', 'passphrase'] as const) {
    if (typeof entry[field] === 'string') result[field] = entry[field] as string;
  }
  if (entry.payload !== undefined) result.payload = entry.payload as JsonValue;
  return result;
}

/** RFC 4180 rows: commas, double-quoted cells with "" for a quote, CRLF or LF line ends. */
function csvRows(text: string, name: string): Array<{ line: number; cells: string[] }> {
  const rows: Array<{ line: number; cells: string[] }> = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (char === '"') {
        quoted = false;
      } else {
        if (char === '\n') line++;
        cell += char;
      }
    } else if (char === '"' && cell.trim() === '') {
      quoted = true;
      cell = '';
    } else if (char === ',') {
      cells.push(cell);
      cell = '';
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && text[i + 1] === '\n') i++;
      cells.push(cell);
      rows.push({ line: rowLine, cells });
      cells = [];
      cell = '';
      line++;
      rowLine = line;
    } else {
      cell += char;
    }
  }
  if (quoted) throw fileError(name, rowLine, 'a quoted cell is not closed');
  if (cell !== '' || cells.length > 0) {
    cells.push(cell);
    rows.push({ line: rowLine, cells });
  }
  return rows;
}
