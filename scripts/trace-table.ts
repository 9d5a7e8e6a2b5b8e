// Builds the README's requirement-trace table from the test sources: every requirement ID that a
// test names, with the files that name it and its summary from docs/requirements.md. `npm run trace`
// rewrites the README; test/trace.test.ts fails when the README and the tests disagree.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The requirement IDs with their one-line summaries, as docs/requirements.md lists them. */
export function readRequirements(root = REPO_ROOT): Map<string, string> {
  const requirements = new Map<string, string>();
  const markdown = readFileSync(join(root, 'docs', 'requirements.md'), 'utf8');
  for (const row of markdown.matchAll(/^\| `(PROV_TRANSPORT_MQTT_[A-Z_]+_07_\d{3})` \| (.+?) \|$/gm)) {
    requirements.set(row[1]!, row[2]!);
  }
  return requirements;
}

const REQUIREMENTS = readRequirements();

/** The WebSocket provider's requirements (prov_transport_mqtt_ws_client), from docs/requirements.md. */
export const WS_REQUIREMENTS: Readonly<Record<string, string>> = Object.fromEntries(
  [...REQUIREMENTS].filter(([id]) => id.startsWith('PROV_TRANSPORT_MQTT_WS_CLIENT_07_')),
);

export const ID_PATTERN = /PROV_TRANSPORT_MQTT_(?:WS_CLIENT|COMMON)_07_\d{3}/g;

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
    const what = REQUIREMENTS.get(id) ?? '(not listed in docs/requirements.md)';
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
