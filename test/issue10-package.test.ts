// Issue 10, item 12: what `npm pack` ships is complete and consistent: no source-map reference to a
// file it lacks, a LICENSE, a repository, the documents the README and `--help` point to, and no
// `prepare` script (npm 11 warns about it on install; `prepack` builds instead).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { before, test } from 'node:test';
import { promisify } from 'node:util';
import ts from 'typescript';
import { esbuildOptions } from '../scripts/build.mjs';

interface PackEntry {
  path: string;
}

let packed: Set<string>;

before(async () => {
  // --ignore-scripts: list what would be packed without building (prepack) in the middle of a test run.
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const [result] = JSON.parse(stdout) as [{ files: PackEntry[] }];
  packed = new Set(result.files.map((entry) => entry.path));
});

/** Relative link targets in markdown (`[text](target)`), without anchors, URLs or mail links. */
function relativeLinks(markdown: string): string[] {
  return [...markdown.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((match) => match[1]!.split('#')[0]!)
    .filter((target) => target !== '' && !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

test('the build emits no source maps, so no shipped .js points at a missing .map', () => {
  // The JavaScript is esbuild's bundle (scripts/build.mjs), the declarations tsc's (tsconfig.types.json).
  assert.equal(esbuildOptions(join(tmpdir(), 'unused')).sourcemap, false);
  const parsed = ts.getParsedCommandLineOfConfigFile(
    'tsconfig.types.json',
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    },
  );
  assert.ok(parsed);
  assert.equal(parsed.options.emitDeclarationOnly, true);
  assert.ok(
    !parsed.options.sourceMap && !parsed.options.inlineSourceMap && !parsed.options.declarationMap,
    'the declarations come without maps',
  );
  assert.ok(![...packed].some((path) => path.endsWith('.map')), 'no map is shipped');
});

test('every shipped .js that names a source map ships that map', (context) => {
  const built = [...packed].filter((path) => path.endsWith('.js'));
  const builtAt = built.length === 0 ? 0 : statSync(built[0]!).mtimeMs;
  if (built.length === 0 || builtAt < statSync('scripts/build.mjs').mtimeMs) {
    // The build options are checked above; dist/ from before them says nothing.
    context.skip('dist/ is absent or older than scripts/build.mjs (npm run build)');
    return;
  }
  for (const path of built) {
    const match = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(path, 'utf8'));
    if (match === null || match[1]!.startsWith('data:')) continue;
    const map = posix.join(posix.dirname(path), match[1]!);
    assert.ok(packed.has(map), `${path} refers to ${map}, which is not in the package`);
  }
});

test('the package has a LICENSE and package.json names the repository, homepage and issue tracker', () => {
  assert.ok(packed.has('LICENSE'));
  assert.match(
    readFileSync('LICENSE', 'utf8'),
    /^MIT License\n\nCopyright \(c\) 2026 dps-mqtt contributors\n/,
  );
  const manifest = JSON.parse(readFileSync('package.json', 'utf8'));
  assert.equal(manifest.license, 'MIT');
  assert.equal(manifest.repository?.type, 'git');
  assert.match(manifest.repository?.url, /^git\+https:\/\/github\.com\/[\w.-]+\/[\w.-]+\.git$/);
  const base = manifest.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
  assert.equal(manifest.homepage, `${base}#readme`);
  assert.equal(manifest.bugs?.url, `${base}/issues`);
});

test('no prepare script (npm 11 warns on install); prepack builds, and npm start builds before it runs', () => {
  const { scripts } = JSON.parse(readFileSync('package.json', 'utf8'));
  assert.equal(scripts.prepare, undefined);
  assert.match(scripts.prepack, /npm run build/);
  assert.match(scripts.start, /^npm run build\b.*&& node dist\/cli\/main\.cjs demo$/);
});

test('the documents the README links to are in the package, and so are their own links to documents', () => {
  const shipped = [...packed].filter((path) => path.endsWith('.md'));
  assert.ok(shipped.includes('README.md'));
  const missing: string[] = [];
  for (const document of shipped) {
    for (const target of relativeLinks(readFileSync(document, 'utf8'))) {
      const path = posix.normalize(posix.join(posix.dirname(document), target));
      // The benchmark chart (an SVG of 100+ KB) stays out of the package on purpose.
      if (!path.endsWith('.md') && document !== 'README.md') continue;
      if (!packed.has(path)) missing.push(`${document} -> ${target}`);
    }
  }
  assert.deepEqual(missing, []);
});

// The package ships no documents (the device install has a 1 MB budget): the README and the CLI help link
// to them by the repository's URL, and each such link names a file the repository has.
const DOCS_BASE = 'https://github.com/dps-mqtt/dps-mqtt/blob/main/';

function repositoryLinks(text: string): string[] {
  return [...text.matchAll(/https:\/\/github\.com\/dps-mqtt\/dps-mqtt\/blob\/main\/([\w./-]+)/g)].map(
    (match) => match[1]!,
  );
}

test('the README and the CLI help link to documents by repository URL, each naming a file that exists', () => {
  const manifest = JSON.parse(readFileSync('package.json', 'utf8'));
  assert.equal(
    `${manifest.repository.url.replace(/^git\+/, '').replace(/\.git$/, '')}/blob/main/`,
    DOCS_BASE,
  );
  const sources = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory()
        ? sources(join(dir, entry.name))
        : entry.name.endsWith('.ts')
          ? [join(dir, entry.name)]
          : [],
    );
  const linked = new Set<string>(repositoryLinks(readFileSync('README.md', 'utf8')));
  const fromHelp = new Set<string>();
  for (const file of [...sources('src/cli'), 'src/emulator/cli.ts']) {
    for (const path of repositoryLinks(readFileSync(file, 'utf8'))) fromHelp.add(path);
  }
  assert.ok(fromHelp.has('docs/cli.md'), 'the main help links docs/cli.md');
  assert.ok(fromHelp.has('docs/emulator.md'), 'the emulator help links docs/emulator.md');
  const missing = [...linked, ...fromHelp].filter((path) => !existsSync(path));
  assert.deepEqual(missing, []);
  assert.ok(![...packed].some((path) => path.startsWith('docs/')), 'no document is shipped');
});
