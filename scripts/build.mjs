// `npm run build`: the package's JavaScript bundled by esbuild, its declarations emitted by tsc.
//
// Why a bundle: a cold `dps-mqtt register` spent ~20 ms loading ~40 ES modules one by one; a few chunks
// load faster and weigh less (docs/design-notes.md, "Cold start"). Code splitting puts every module in
// exactly one output file, so `instanceof` on the error classes holds whichever entry point a process
// came in through, and each `import()` of the source stays a lazily loaded chunk.
//
//   node scripts/build.mjs [--outdir <dir>]   (default dist/; the build replaces the folder at the end)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Every file the package loads by path: the two exports, the bin, the emulator's own entry (the
 * benchmark and `node dist/emulator/cli-entry.js`) and the fleet's worker thread. Each keeps its path of
 * the file-per-module layout; everything else goes into dist/chunks/.
 */
export const ENTRY_POINTS = [
  'src/index.ts',
  'src/emulator/index.ts',
  'src/cli/main.ts',
  'src/emulator/cli-entry.ts',
  'src/fleet/fleet-worker.ts',
];

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
    entryPoints: ENTRY_POINTS,
    outdir,
    outbase: 'src',
    entryNames: '[dir]/[name]',
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
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
  return result.metafile;
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
    `built ${relative(process.cwd(), outdir) || '.'}: ${outputs.length} JavaScript files (${(bytes / 1024).toFixed(0)} KiB), ` +
      `${declarations.kept} declaration files (${declarations.removed} internal ones removed)\n`,
  );
}
