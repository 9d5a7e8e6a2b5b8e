// The package's JavaScript is an esbuild bundle with code splitting (scripts/build.mjs). These tests build it
// into a scratch folder and check what the file-per-module layout gave for free: each module exists once
// (so `instanceof` holds across entry points), the paths the package is loaded by are where they were, files
// found relative to a module (package.json, the fleet's worker thread) are found, the lazy parts stay lazy,
// and no bundling rename touches an error class's name.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Metafile } from 'esbuild';
import { bundle, ENTRY_POINTS } from '../scripts/build.mjs';
import { DEMO_GROUP_KEY } from '../src/emulator/index.js';
import { startTestEmulator, type TestEmulator } from './helpers/emulator.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..');

let scratch: string;
let dist: string;
let metafile: Metafile;
let emulator: TestEmulator;

/** Output path (relative to dist/) -> the source files (relative to the repository) whose code it holds. */
function outputInputs(): Map<string, string[]> {
  const byOutput = new Map<string, string[]>();
  for (const [path, output] of Object.entries(metafile.outputs)) {
    const inputs = Object.entries(output.inputs)
      .filter(([, input]) => input.bytesInOutput > 0)
      .map(([input]) => input);
    byOutput.set(relative(dist, resolve(REPO, path)).split('\\').join('/'), inputs);
  }
  return byOutput;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

before(async () => {
  // The package's layout: package.json next to dist/, and node_modules (for `ws`) above it.
  scratch = mkdtempSync(join(tmpdir(), 'dps-mqtt-bundle-'));
  dist = join(scratch, 'dist');
  cpSync(join(REPO, 'package.json'), join(scratch, 'package.json'));
  symlinkSync(join(REPO, 'node_modules'), join(scratch, 'node_modules'), 'dir');
  metafile = await bundle(dist);
  emulator = await startTestEmulator();
});

after(async () => {
  await emulator?.close();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

describe('the bundle', () => {
  test('holds each source module in exactly one output file', () => {
    const seen = new Map<string, string>();
    for (const [output, inputs] of outputInputs()) {
      for (const input of inputs) {
        const first = seen.get(input);
        assert.equal(first, undefined, `${input} is in both ${first} and ${output}`);
        seen.set(input, output);
      }
    }
    for (const module of ['src/protocol/errors.ts', 'src/client/register.ts', 'src/emulator/index.ts']) {
      assert.ok(seen.has(module), `${module} is bundled`);
    }
  });

  test('keeps every entry point at its path, and puts everything else in dist/chunks/', () => {
    const outputs = [...outputInputs().keys()];
    const entries = ENTRY_POINTS.map((entry) => entry.replace(/^src\//, '').replace(/\.ts$/, '.js'));
    assert.deepEqual([...entries].sort(), [
      'cli/main.js',
      'emulator/cli-entry.js',
      'emulator/index.js',
      'fleet/fleet-worker.js',
      'index.js',
    ]);
    for (const entry of entries) assert.ok(outputs.includes(entry), entry);
    assert.deepEqual(
      outputs.filter((output) => !entries.includes(output) && !output.startsWith('chunks/')),
      [],
    );
    const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
    for (const path of [
      manifest.bin['dps-mqtt'],
      manifest.exports['.'].default,
      manifest.exports['./emulator'].default,
    ]) {
      assert.ok(entries.includes(path.replace(/^\.\/dist\//, '')), path);
    }
  });

  test('names no source map and no unresolved module URL', () => {
    for (const output of outputInputs().keys()) {
      const text = readFileSync(join(dist, output), 'utf8');
      assert.doesNotMatch(text, /sourceMappingURL/, output);
      assert.doesNotMatch(text, /__DPS_MQTT_OUTDIR__/, output);
    }
  });

  test('renames no class: error names come from new.target.name (`class X` or `var X=class`)', () => {
    const bundled = [...outputInputs().keys()]
      .map((output) => readFileSync(join(dist, output), 'utf8'))
      .join('\n');
    const classes = sourceFiles(join(REPO, 'src')).flatMap((file) =>
      [
        ...readFileSync(file, 'utf8').matchAll(/^(?:export\s+)?(?:abstract\s+)?class\s+([A-Za-z_$][\w$]*)/gm),
      ].map((match) => match[1]!),
    );
    assert.ok(classes.includes('ProvisioningServiceError'));
    // As many declarations of each name as the source has: a renamed one (`UsageError2`) is one short.
    const count = (pattern: RegExp): number => bundled.match(pattern)?.length ?? 0;
    const renamed = [...new Set(classes)].filter(
      (name) =>
        count(new RegExp(`(?:\\bclass ${name}|\\b${name}=class)[\\s{]`, 'g')) !==
        classes.filter((other) => other === name).length,
    );
    assert.deepEqual(renamed, []);
  });

  test('an error from the emulator entry is an instance of the class the library entry exports', async () => {
    const library = await import(pathToFileURL(join(dist, 'index.js')).href);
    const emulatorEntry = await import(pathToFileURL(join(dist, 'emulator', 'index.js')).href);
    const error = await emulatorEntry.startEmulator({ idScope: 'not-a-scope' }).then(
      () => assert.fail('an invalid ID scope is refused'),
      (reason: unknown) => reason,
    );
    assert.ok(error instanceof library.InvalidInputError, String(error));
    assert.ok(error instanceof library.DpsError);
    assert.equal(error.name, 'InvalidInputError');
  });

  test('dps-mqtt --version reads package.json from the bundled CLI', async () => {
    const { stdout } = await run(process.execPath, [join(dist, 'cli', 'main.js'), '--version']);
    assert.equal(stdout.trim(), JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version);
  });

  test('a plain dps-mqtt register loads no certificate, fleet, diagnose or emulator code', async () => {
    const recordFile = join(scratch, 'loaded.txt');
    const recorder = join(scratch, 'record-loads.mjs');
    writeFileSync(recordFile, '');
    writeFileSync(
      recorder,
      `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.startsWith('file:')) appendFileSync(\${JSON.stringify(${JSON.stringify(recordFile)})}, result.url + '\\\\n');
  return result;
}\`));
`,
    );
    const { stdout } = await run(process.execPath, [
      '--import',
      pathToFileURL(recorder).href,
      join(dist, 'cli', 'main.js'),
      'register',
      '--endpoint',
      `127.0.0.1:${emulator.wssPort}`,
      '--ca',
      emulator.pki.caPath,
      '--id-scope',
      emulator.idScope,
      '--registration-id',
      'bundle-register',
      '--group-key',
      DEMO_GROUP_KEY,
      '--json',
    ]);
    assert.match(stdout, /"status":"assigned"/);
    const byOutput = outputInputs();
    const loaded = new Set(
      readFileSync(recordFile, 'utf8')
        .split('\n')
        .filter((url) => url.startsWith('file:'))
        .map((url) => relative(dist, fileURLToPath(url)).split('\\').join('/')),
    );
    assert.ok(loaded.has('cli/main.js'), [...loaded].join(', '));
    const modules = [...loaded].flatMap((output) => byOutput.get(output) ?? []);
    assert.ok(modules.includes('src/client/register.ts'), 'the register path itself is loaded');
    const heavy = modules.filter((module) =>
      /^src\/(fleet\/(?!register-fleet)|emulator\/|mqtt\/server-codec|diagnose\/(?!flag-hints)|cli\/commands\/(?!register\.ts)|client\/certificate-request|protocol\/(csr-builder|certificate-builder|der)\.ts)/.test(
        module,
      ),
    );
    assert.deepEqual(heavy, []);
  });

  test('dps-mqtt fleet --workers 1 finds its worker thread in the bundle', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        join(dist, 'cli', 'main.js'),
        'fleet',
        '--endpoint',
        `127.0.0.1:${emulator.wssPort}`,
        '--ca',
        emulator.pki.caPath,
        '--id-scope',
        emulator.idScope,
        '--group-key',
        DEMO_GROUP_KEY,
        '--count',
        '2',
        '--prefix',
        'bundle-fleet-',
        '--workers',
        '1',
        '--json',
      ],
      { timeout: 60_000 },
    );
    const summary = JSON.parse(stdout.trim().split('\n').pop()!);
    assert.equal(summary.assigned, 2, stdout);
  });
});
