// `npm run build`: the package's JavaScript bundled by esbuild into one module, its declarations emitted
// by tsc.
//
// Why one module: a cold `dps-mqtt register` spent ~20 ms loading ~40 ES modules one by one, and with
// esbuild's code splitting still ~27 (each one a resolution, a file read and a module record: about 40 ms
// and 5 MB of a ~120 ms process, measured). One file holds every source module exactly once, so
// `instanceof` on the error classes holds whichever entry point a process came in through; each
// `import()` of the source becomes a lazily run part of it, so a plain register still runs no emulator,
// fleet, diagnose or certificate code. The paths the package is loaded by (its exports, the bin, the
// emulator entry, the fleet's worker thread) are small generated modules that re-export from it.
//
//   node scripts/build.mjs [--outdir <dir>]   (default dist/; the build replaces the folder at the end)
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The one bundled module, in the output folder. */
export const BUNDLE_FILE = 'dps-mqtt.cjs';

/**
 * What the bundle exports: the library eagerly (it is what every entry point uses), the rest behind
 * functions whose import() esbuild turns into lazily run parts of the same file.
 */
const BUNDLE_ENTRY = `
export * as client from './src/index.ts';
export const loadEmulator = () => import('./src/emulator/index.ts');
export const runCliProcess = async () => (await import('./src/cli/run-cli.ts')).runCliProcess();
// What src/emulator/cli-entry.ts does.
export const runEmulatorProcess = async () => {
  const { runEmulatorCli } = await import('./src/emulator/cli.ts');
  process.exitCode = await runEmulatorCli(process.argv.slice(2));
};
export const startFleetWorker = () => import('./src/fleet/fleet-worker.ts');
`;

/**
 * Every file the package is loaded by, at its path of the file-per-module layout (package.json's exports
 * and bin, the benchmark's emulator entry, the fleet's worker thread), and its source counterpart.
 */
export const ENTRY_POINTS = {
  'index.js': 'src/index.ts',
  'emulator/index.js': 'src/emulator/index.ts',
  'cli/main.cjs': 'src/cli/main.ts',
  'emulator/cli-entry.js': 'src/emulator/cli-entry.ts',
  'fleet/fleet-worker.js': 'src/fleet/fleet-worker.ts',
};

/** The public declarations: those two files and whatever they reach. */
const DECLARATION_ROOTS = ['index.d.ts', 'emulator/index.d.ts'];

/** Stands for "the output folder, relative to this output file" until the output files are known. */
const OUTDIR_PLACEHOLDER = '__DPS_MQTT_OUTDIR__/';

/**
 * A module's `import.meta.url` as if it were compiled file per module (dist/fleet/device-executor.js),
 * wherever the bundle puts its code: `new URL('./fleet-worker.js', import.meta.url)` and
 * `new URL('../../package.json', import.meta.url)` then mean in dist/ what they mean in src/ under tsx.
 */
const moduleUrlPlugin = {
  name: 'module-url',
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const compiledPath = relative(join(ROOT, 'src'), args.path)
        .split(sep)
        .join('/')
        .replace(/\.ts$/, '.js');
      const moduleUrl = `new URL(${JSON.stringify(OUTDIR_PLACEHOLDER + compiledPath)}, import.meta.url).href`;
      return { contents: source.replaceAll('import.meta.url', moduleUrl), loader: 'ts' };
    });
  },
};

/** The esbuild options of the package's JavaScript (exported for test/bundle.test.ts). */
export function esbuildOptions(outdir) {
  return {
    absWorkingDir: ROOT,
    stdin: { contents: BUNDLE_ENTRY, resolveDir: ROOT, sourcefile: 'bundle-entry.js', loader: 'js' },
    outfile: join(outdir, BUNDLE_FILE),
    bundle: true,
    splitting: false,
    // CommonJS: an external import then becomes a require() inside the lazily run part that needs it (an
    // ES module bundle hoists every import of every part to its top, and loads them all), and Node's
    // CommonJS loader reads the one file without the ES module machinery.
    format: 'cjs',
    platform: 'node',
    define: { 'import.meta.url': '__moduleUrl', 'import.meta.resolve': '__moduleResolve' },
    // import() of a Node module becomes require(): the bin runs the bundle as a vm.Script (for its code
    // cache), where a real import() would need an experimental loader option.
    supported: { 'dynamic-import': false },
    banner: {
      js:
        'const __moduleUrl=require("node:url").pathToFileURL(__filename).href;' +
        'const __moduleResolve=(specifier)=>require("node:url").pathToFileURL(require.resolve(specifier)).href;',
    },
    target: 'node20',
    // Node's modules and the one production dependency are loaded from where they are installed.
    packages: 'external',
    // Whitespace only: identifiers keep their names, so stack traces stay readable. Bundling renames an
    // identifier only where two modules' top-level names collide; no error class may be one of them
    // (`this.name = new.target.name` in errors.ts; test/bundle.test.ts checks). keepNames would pin
    // every name but measured ~5 ms slower to load the register path, and 26 KiB larger.
    minifyWhitespace: true,
    minifySyntax: false,
    minifyIdentifiers: false,
    keepNames: false,
    legalComments: 'none',
    sourcemap: false,
    metafile: true,
    write: false,
    logLevel: 'warning',
    plugins: [moduleUrlPlugin],
  };
}

/** Bundles src/ into `outdir`: returns esbuild's metafile (inputs and outputs, paths relative to ROOT). */
export async function bundle(outdir) {
  const result = await build(esbuildOptions(outdir));
  for (const file of result.outputFiles) {
    const toOutdir = posix.relative(dirname(file.path).split(sep).join('/'), outdir.split(sep).join('/'));
    const text = file.text.replaceAll(OUTDIR_PLACEHOLDER, toOutdir === '' ? './' : `${toOutdir}/`);
    if (text.includes(OUTDIR_PLACEHOLDER)) throw new Error(`${file.path}: unresolved module URL`);
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, text);
  }
  await writeEntryModules(outdir);
  return result.metafile;
}

/** The names a module exports, from esbuild's analysis of it (nothing is run). */
async function exportNames(entry) {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    outdir: 'export-names',
    bundle: true,
    format: 'esm',
    platform: 'node',
    packages: 'external',
    metafile: true,
    write: false,
    logLevel: 'error',
  });
  const [output] = Object.values(result.metafile.outputs).filter(
    (candidate) => candidate.entryPoint === entry,
  );
  if (output === undefined) throw new Error(`${entry}: esbuild reported no exports`);
  return output.exports.join(', ');
}

/** The generated modules at the package's entry paths; each re-exports from (or runs) the bundle. */
async function writeEntryModules(outdir) {
  // createRequire, not `import ... from './dps-mqtt.cjs'`: Node would scan the whole file for export names.
  const load = (up) =>
    `import { createRequire } from 'node:module';\nconst bundle = createRequire(import.meta.url)('${up}${BUNDLE_FILE}');\n`;
  const files = {
    'index.js': `${load('./')}export const { ${await exportNames('src/index.ts')} } = bundle.client;\n`,
    'emulator/index.js': `${load('../')}const emulator = await bundle.loadEmulator();\nexport const { ${await exportNames('src/emulator/index.ts')} } = emulator;\n`,
    // The bin: CommonJS, with a code cache (scripts/templates/cli-main.cjs says why).
    'cli/main.cjs': readFileSync(join(ROOT, 'scripts', 'templates', 'cli-main.cjs'), 'utf8'),
    'emulator/cli-entry.js': `#!/usr/bin/env node\n${load('../')}await bundle.runEmulatorProcess();\n`,
    'fleet/fleet-worker.js': `${load('../')}await bundle.startFleetWorker();\n`,
  };
  for (const [path, text] of Object.entries(files)) {
    const file = join(outdir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    if (text.startsWith('#!')) chmodSync(file, 0o755);
  }
}

/** Removes every declaration file that the public roots do not reach (internal modules' types). */
export function pruneDeclarations(outdir) {
  const reached = new Set();
  const visit = (path) => {
    if (reached.has(path)) return;
    if (!existsSync(path)) throw new Error(`${path}: a declaration reached from the public types is missing`);
    reached.add(path);
    const { importedFiles, referencedFiles } = ts.preProcessFile(readFileSync(path, 'utf8'), true, true);
    for (const { fileName } of [...importedFiles, ...referencedFiles]) {
      if (!fileName.startsWith('.')) continue; // node:*, ws
      visit(resolve(dirname(path), fileName.replace(/\.js$/, '.d.ts')));
    }
  };
  for (const root of DECLARATION_ROOTS) visit(join(outdir, root));
  const removed = [];
  const sweep = (dir) => {
    for (const entry of ts.sys.readDirectory(dir, ['.d.ts'])) {
      const path = resolve(entry);
      if (!reached.has(path)) {
        unlinkSync(path);
        removed.push(path);
      }
    }
  };
  sweep(outdir);
  removeEmptyDirectories(outdir);
  return { kept: reached.size, removed: removed.length };
}

function removeEmptyDirectories(dir) {
  for (const name of ts.sys.getDirectories(dir)) {
    const child = join(dir, name);
    removeEmptyDirectories(child);
    if (ts.sys.readDirectory(child).length === 0 && ts.sys.getDirectories(child).length === 0) {
      rmSync(child, { recursive: true });
    }
  }
}

/** The declarations, with their doc comments for editors, from tsconfig.types.json. */
function emitDeclarations(outdir) {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    // tsc prints its diagnostics on stdout; here they go to stderr, as this script's own output does.
    execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.types.json'), '--outDir', outdir], {
      cwd: ROOT,
      stdio: ['ignore', 2, 2],
    });
  } catch {
    throw new Error('tsc -p tsconfig.types.json failed: its errors are above');
  }
}

/**
 * Builds into a fresh sibling folder and swaps it in at the end, so the output holds one build's files
 * only (none left over from a removed module) and other processes using dist/ see it missing only for
 * the moment between two renames.
 */
export async function buildPackage(outdir) {
  const target = resolve(outdir);
  const staging = `${target}.building-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    const metafile = await bundle(staging);
    emitDeclarations(staging);
    const declarations = pruneDeclarations(staging);
    const previous = `${target}.previous-${process.pid}`;
    if (existsSync(target)) renameSync(target, previous);
    renameSync(staging, target);
    rmSync(previous, { recursive: true, force: true });
    return { metafile, declarations };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { outdir: { type: 'string' } }, strict: true });
  const outdir = resolve(values.outdir ?? join(ROOT, 'dist'));
  const built = await buildPackage(outdir).catch((error) => {
    process.stderr.write(`build failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
  const { metafile, declarations } = built;
  const outputs = Object.entries(metafile.outputs);
  const bytes = outputs.reduce((total, [, output]) => total + output.bytes, 0);
  // On stderr: `npm pack --json` runs this through prepack, and its stdout must stay JSON.
  process.stderr.write(
    `built ${relative(process.cwd(), outdir) || '.'}: ${BUNDLE_FILE} (${(bytes / 1024).toFixed(0)} KiB) and ${Object.keys(ENTRY_POINTS).length} entry modules, ` +
      `${declarations.kept} declaration files (${declarations.removed} internal ones removed)\n`,
  );
}
