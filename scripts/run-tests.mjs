// Runs every test file under test/ with Node's built-in runner, TypeScript loaded through tsx.
// Node 20's --test has no glob support, so the file list is collected here.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

function collect(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : collect(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const filter = process.argv.slice(2);
const files = collect('test')
  .filter((file) => filter.length === 0 || filter.some((part) => file.includes(part)))
  .sort();
// In CI (or with TEST_REPORTER=summary) one line per file and the failures in full, instead of
// thousands of lines of TAP; TEST_REPORTER=spec|tap|dot picks one of Node's own.
const reporter = process.env.TEST_REPORTER ?? (process.env.CI ? 'summary' : undefined);
const reporterArgs =
  reporter === undefined
    ? []
    : [
        `--test-reporter=${reporter === 'summary' ? fileURLToPath(new URL('./test-reporter.mjs', import.meta.url)) : reporter}`,
        '--test-reporter-destination=stdout',
      ];
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-timeout=120000', ...reporterArgs, ...files],
  { stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
