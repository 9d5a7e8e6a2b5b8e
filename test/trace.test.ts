// The README's requirement-trace table is derived from the tests; this keeps the two in step. The
// requirement IDs live in docs/requirements.md, so these tests run without the upstream spec; when the
// spec is beside this checkout (../shared/spec) the list is also checked against it.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  buildTraceTable,
  collectTrace,
  ID_PATTERN,
  readRequirements,
  tableInReadme,
  WS_REQUIREMENTS,
} from '../scripts/trace-table.js';

const SPEC_DIR = '../shared/spec';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : sources(path);
    return /\.(ts|mjs)$/.test(entry.name) ? [path] : [];
  });
}

test('docs/requirements.md lists the 14 requirements of the WebSocket provider, each with a summary', () => {
  const expected = Array.from(
    { length: 14 },
    (_, index) => `PROV_TRANSPORT_MQTT_WS_CLIENT_07_${String(index + 1).padStart(3, '0')}`,
  );
  assert.deepEqual(Object.keys(WS_REQUIREMENTS).sort(), expected);
  for (const [id, summary] of readRequirements())
    assert.ok(summary.trim().length > 10, `${id} has a summary`);
});

test('every requirement of the WebSocket provider spec is named by at least one test', () => {
  const trace = collectTrace();
  const missing = Object.keys(WS_REQUIREMENTS).filter((id) => !trace.has(id));
  assert.deepEqual(missing, []);
});

test('every requirement ID that the code or a test cites is listed in docs/requirements.md', () => {
  const listed = readRequirements();
  const unlisted = new Set<string>();
  for (const file of [...sources('src'), ...sources('test')]) {
    for (const id of readFileSync(file, 'utf8').match(ID_PATTERN) ?? []) {
      if (!listed.has(id)) unlisted.add(`${id} (${file})`);
    }
  }
  assert.deepEqual([...unlisted], []);
});

test('docs/requirements.md lists every ID of the spec when the spec is at hand', (context) => {
  const wsSpec = join(SPEC_DIR, 'prov_transport_mqtt_ws_client_requirements.md');
  const commonSpec = join(SPEC_DIR, 'mqtt_common.md');
  if (!existsSync(wsSpec) || !existsSync(commonSpec)) {
    context.skip('../shared/spec is not beside this checkout (docs/requirements.md stands in for it)');
    return;
  }
  const listed = readRequirements();
  const wsIds = [
    ...new Set(readFileSync(wsSpec, 'utf8').match(/PROV_TRANSPORT_MQTT_WS_CLIENT_07_\d{3}/g) ?? []),
  ];
  assert.deepEqual(wsIds.sort(), Object.keys(WS_REQUIREMENTS).sort());
  // The common page cites upstream numbers in parentheses: (001, 002), (053-056).
  const commonIds = new Set<string>();
  for (const group of readFileSync(commonSpec, 'utf8').matchAll(
    /\((\d{3}(?:-\d{3})?(?:, \d{3}(?:-\d{3})?)*)\)/g,
  )) {
    for (const part of group[1]!.split(', ')) {
      const [first, last = first] = part.split('-').map(Number) as [number, number?];
      for (let number = first; number <= last; number += 1) {
        commonIds.add(`PROV_TRANSPORT_MQTT_COMMON_07_${String(number).padStart(3, '0')}`);
      }
    }
  }
  assert.ok(commonIds.size > 40, `read ${commonIds.size} common IDs`);
  assert.deepEqual(
    [...commonIds].filter((id) => !listed.has(id)),
    [],
  );
});

test('the README trace table matches the tests (run `npm run trace` to regenerate it)', () => {
  assert.equal(tableInReadme(readFileSync('README.md', 'utf8')), buildTraceTable());
});
