// The package's JavaScript is one esbuild bundle (scripts/build.mjs) behind small generated entry modules.
// These tests build it into a scratch folder and check what the file-per-module layout gave for free: each
// module exists once (so `instanceof` holds across entry points), the paths the package is loaded by are
// where they were, files found relative to a module (package.json, the fleet's worker thread) are found,
// the lazy parts stay lazy, and no bundling rename touches an error class's name.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Metafile } from 'esbuild';
import { BUNDLE_FILE, bundle, ENTRY_POINTS } from '../scripts/build.mjs';
import { DEMO_GROUP_KEY } from '../src/emulator/index.js';
import { startTestEmulator, type TestEmulator } from './helpers/emulator.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..');

let scratch: string;
let dist: string;
let metafile: Metafile;
let emulator: TestEmulator;

/** The flags that point the CLI at the test emulator, with its demo group key. */
function emulatorFlags(): string[] {
  return [
    '--endpoint',
    `127.0.0.1:${emulator.wssPort}`,
    '--ca',
    emulator.pki.caPath,
    '--id-scope',
    emulator.idScope,
    '--group-key',
    DEMO_GROUP_KEY,
  ];
}

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

  test('keeps every entry point at its path, as a module that loads the one bundle', () => {
    assert.deepEqual([...outputInputs().keys()], [BUNDLE_FILE]);
    const entries = Object.keys(ENTRY_POINTS);
    assert.deepEqual([...entries].sort(), [
      'cli/main.cjs',
      'emulator/cli-entry.js',
      'emulator/index.js',
      'fleet/fleet-worker.js',
      'index.js',
    ]);
    for (const entry of entries) {
      assert.match(
        readFileSync(join(dist, entry), 'utf8'),
        new RegExp(`'(\\./|\\.\\./)?${BUNDLE_FILE}'`),
        entry,
      );
    }
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
    for (const output of [...outputInputs().keys(), ...Object.keys(ENTRY_POINTS)]) {
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
    const { stdout } = await run(process.execPath, [join(dist, 'cli', 'main.cjs'), '--version']);
    assert.equal(stdout.trim(), JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version);
  });

  test('the certificate, fleet, diagnose and emulator code are lazily run parts of the bundle', () => {
    const text = readFileSync(join(dist, BUNDLE_FILE), 'utf8');
    for (const module of [
      'src/emulator/index.ts',
      'src/emulator/network/listeners.ts',
      'src/fleet/fleet-run.ts',
      'src/diagnose/diagnose.ts',
      'src/client/certificate-request.ts',
      'src/cli/commands/fleet.ts',
    ]) {
      // esbuild's lazy initialisation: `var init_x = __esm({ "src/...ts"() { ... } })`, run on first import().
      assert.match(text, new RegExp(`__esm\\(\\{"${module.replaceAll('.', '\\.')}"\\(\\)`), module);
    }
  });

  test('a plain dps-mqtt register loads none of what only the emulator, fleet or proxy need', async () => {
    const recordFile = join(scratch, 'loaded.json');
    const recorder = join(scratch, 'record-loads.cjs');
    writeFileSync(
      recorder,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(recordFile)}, JSON.stringify({
  builtins: process.moduleLoadList.filter((name) => name.startsWith('NativeModule ')).map((name) => name.slice(13)),
  files: Object.keys(require.cache),
})));\n`,
    );
    const { stdout } = await run(process.execPath, [
      '--require',
      recorder,
      join(dist, 'cli', 'main.cjs'),
      'register',
      ...emulatorFlags(),
      '--registration-id',
      'bundle-register',
      '--json',
    ]);
    assert.match(stdout, /"status":"assigned"/);
    const loaded = JSON.parse(readFileSync(recordFile, 'utf8')) as { builtins: string[]; files: string[] };
    // The bin compiles the bundle itself (for its code cache): anything required after that is listed.
    assert.ok(
      loaded.files.some((file) => file.endsWith('main.cjs')),
      loaded.files.join(', '),
    );
    assert.deepEqual(
      loaded.files.filter((file) => /[\\/]node_modules[\\/]/.test(file)),
      [],
      "no package (ws is the emulator's)",
    );
    for (const builtin of ['https', 'http', 'worker_threads', 'readline', 'perf_hooks']) {
      assert.ok(!loaded.builtins.includes(builtin), `node:${builtin} is not loaded`);
    }
  });

  test('dps-mqtt fleet --workers 1 finds its worker thread in the bundle', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        join(dist, 'cli', 'main.cjs'),
        'fleet',
        ...emulatorFlags(),
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

describe("the bin's code cache (Node 20 and 21; Node 22.1+ uses its own)", () => {
  const hasNodeCompileCache =
    typeof (Module as { enableCompileCache?: unknown }).enableCompileCache === 'function';
  const cacheFile = (): string => join(dist, `${BUNDLE_FILE}.v8-cache-${process.version}-${process.arch}`);
  const version = (env: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [join(dist, 'cli', 'main.cjs'), '--version'], { env: { ...process.env, ...env } });

  test('the first run leaves a cache next to the bundle, a later run uses it and leaves it as it is', async (context) => {
    if (hasNodeCompileCache) return context.skip('this Node has its own compile cache');
    rmSync(cacheFile(), { force: true });
    await version();
    const written = statSync(cacheFile());
    assert.ok(written.size > 10_000, `a cache of ${written.size} bytes`);
    const { stdout } = await version();
    assert.equal(stdout.trim(), JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version);
    // Accepted by V8, so not written again.
    assert.equal(statSync(cacheFile()).mtimeMs, written.mtimeMs);
  });

  test('a damaged cache is refused by V8 and replaced; the run is unaffected', async (context) => {
    if (hasNodeCompileCache) return context.skip('this Node has its own compile cache');
    writeFileSync(cacheFile(), Buffer.alloc(4096, 0x5a));
    const { stdout } = await version();
    assert.match(stdout, /^\d+\.\d+\.\d+/);
    assert.notDeepEqual(readFileSync(cacheFile()).subarray(0, 4096), Buffer.alloc(4096, 0x5a));
  });

  test('NODE_DISABLE_COMPILE_CACHE=1 writes no cache', async () => {
    rmSync(cacheFile(), { force: true });
    await version({ NODE_DISABLE_COMPILE_CACHE: '1' });
    assert.equal(existsSync(cacheFile()), false);
  });

  test('packing leaves caches out of the package', () => {
    const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { files: string[] };
    assert.ok(manifest.files.includes('!dist/**/*.v8-cache-*'));
  });
});
