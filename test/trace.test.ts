// The README's requirement-trace table is derived from the tests; this keeps the two in step.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildTraceTable, collectTrace, tableInReadme, WS_REQUIREMENTS } from '../scripts/trace-table.js';

test('every requirement of the WebSocket provider spec is named by at least one test', () => {
  const trace = collectTrace();
  const missing = Object.keys(WS_REQUIREMENTS).filter((id) => !trace.has(id));
  assert.deepEqual(missing, []);
});

test('the list of requirements matches the spec file when it is at hand', (context) => {
  const spec = '../shared/spec/prov_transport_mqtt_ws_client_requirements.md';
  if (!existsSync(spec)) {
    context.skip('shared/spec is not beside this checkout');
    return;
  }
  const ids = [
    ...new Set(readFileSync(spec, 'utf8').match(/PROV_TRANSPORT_MQTT_WS_CLIENT_07_\d{3}/g) ?? []),
  ].sort();
  assert.deepEqual(ids, Object.keys(WS_REQUIREMENTS).sort());
});

test('the README trace table matches the tests (run `npm run trace` to regenerate it)', () => {
  assert.equal(tableInReadme(readFileSync('README.md', 'utf8')), buildTraceTable());
});
