// Builds the README's requirement-trace table from the test sources: every requirement ID that a
// test names, with the files that name it. `npm run trace` rewrites the README; test/trace.test.ts
// fails when the README and the tests disagree.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The spec's requirements (shared/spec/prov_transport_mqtt_ws_client_requirements.md). */
export const WS_REQUIREMENTS: Readonly<Record<string, string>> = {
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_001: 'create: the common transport with the WebSocket IO',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_002: 'destroy: delegates to the common destroy',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_003: 'open: delegates to the common open',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_004: 'close: delegates to the common close',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_005: 'register_device: delegates to the common register',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_006: 'get_operation_status: delegates to the common status query',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_007: 'dowork: delegates to the common dowork',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_008: 'set_trace: delegates to the common set_trace',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_009: 'x509_cert: delegates to the common x509_cert',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_010: 'set_trusted_cert: delegates to the common set_trusted_cert',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_011: 'set_proxy: delegates to the common set_proxy',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_012:
    'IO: HTTP CONNECT proxy tunnel beneath TLS when proxy options are set',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_013: 'IO: any failure building the IO is an error, nothing left open',
  PROV_TRANSPORT_MQTT_WS_CLIENT_07_014: 'IO: success yields the stream that carries MQTT',
};

const ID_PATTERN = /PROV_TRANSPORT_MQTT_(?:WS_CLIENT|COMMON)_07_\d{3}/g;

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** ID -> the test files that name it, sorted. */
export function collectTrace(root = '.'): Map<string, string[]> {
  const trace = new Map<string, Set<string>>();
  for (const file of testFiles(join(root, 'test'))) {
    for (const id of readFileSync(file, 'utf8').match(ID_PATTERN) ?? []) {
      if (!trace.has(id)) trace.set(id, new Set());
      trace.get(id)!.add(file.slice(root === '.' ? 0 : root.length + 1));
    }
  }
  return new Map(
    [...trace].sort(([a], [b]) => a.localeCompare(b)).map(([id, files]) => [id, [...files].sort()]),
  );
}

export function buildTraceTable(root = '.'): string {
  const trace = collectTrace(root);
  const rows = ['| requirement | what | tests |', '| --- | --- | --- |'];
  for (const [id, files] of trace) {
    const what = WS_REQUIREMENTS[id] ?? 'common transport (shared/spec/mqtt_common.md)';
    rows.push(`| \`${id}\` | ${what} | ${files.map((file) => `\`${file}\``).join(', ')} |`);
  }
  return rows.join('\n');
}

const START = '<!-- trace:start -->';
const END = '<!-- trace:end -->';

export function tableInReadme(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error('README.md has no trace markers');
  return readme.slice(start + START.length, end).trim();
}

if (process.argv.includes('--write')) {
  const readme = readFileSync('README.md', 'utf8');
  const start = readme.indexOf(START) + START.length;
  const end = readme.indexOf(END);
  writeFileSync('README.md', `${readme.slice(0, start)}\n${buildTraceTable()}\n${readme.slice(end)}`);
  console.log('README.md trace table updated');
}
