// Runs every test file under test/ with Node's built-in runner, TypeScript loaded through tsx.
// Node 20's --test has no glob support, so the file list is collected here.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

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
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-timeout=120000', ...files], {
  stdio: 'inherit',
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
