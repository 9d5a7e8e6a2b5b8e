// Issue 11: plain registrations must not pay for certificate issuance. The code that builds CSRs and
// checks chains (certificate-request, csr-builder, csr-reader, der) is reached from the package entry only
// through `await import()`: this walks every static import of the source from src/index.ts and proves it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..');
const CERTIFICATE_MODULES = [
  'src/client/certificate-request.ts',
  'src/protocol/csr-builder.ts',
  'src/protocol/csr-reader.ts',
  'src/protocol/der.ts',
];

/** Comments removed (roughly), so an import named in a comment does not count. */
function code(file: string): string {
  return readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/**
 * Relative specifiers a module loads when it is evaluated: `import ... from`, `export ... from` and bare
 * `import '...'`, but not `import type` / `export type` (erased). With verbatimModuleSyntax an import of
 * only inline `type` names still loads the module, so those count.
 */
function staticImports(source: string): string[] {
  const pattern =
    /(?:^|[;\n])\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/g;
  return [...source.matchAll(pattern)]
    .filter((match) => match[2] === undefined)
    .map((match) => match[3] as string);
}

function dynamicImports(source: string): string[] {
  return [...source.matchAll(/\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)].map(
    (match) => match[1] as string,
  );
}

function resolveSource(from: string, specifier: string): string {
  return resolve(dirname(from), specifier.replace(/\.js$/, '.ts'));
}

/** Every source file evaluated by importing `entry`, statically, with the chain that reached it. */
function staticClosure(entry: string): Map<string, string[]> {
  const reached = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift() as string;
    for (const specifier of staticImports(code(file))) {
      const target = resolveSource(file, specifier);
      if (reached.has(target)) continue;
      reached.set(target, [...(reached.get(file) ?? []), target]);
      queue.push(target);
    }
  }
  return reached;
}

describe('certificate issuance loads lazily', () => {
  test('importing dps-mqtt (src/index.ts) statically reaches none of the CSR and chain modules', () => {
    const closure = staticClosure(join(ROOT, 'src/index.ts'));
    assert.ok(closure.has(join(ROOT, 'src/client/register.ts')), 'the walk follows the entry point');
    assert.ok(
      closure.has(join(ROOT, 'src/client/certificate-options.ts')),
      'the light option checks are static',
    );
    for (const module of CERTIFICATE_MODULES) {
      const chain = closure.get(join(ROOT, module));
      assert.equal(
        chain,
        undefined,
        `${module} is imported statically: ${chain?.map((file) => relative(ROOT, file)).join(' -> ')}`,
      );
    }
  });

  test('the certificate code is reached through a dynamic import() from the client', () => {
    const file = join(ROOT, 'src/client/certificate-options.ts');
    const targets = dynamicImports(code(file)).map((specifier) => resolveSource(file, specifier));
    assert.ok(targets.includes(join(ROOT, 'src/client/certificate-request.ts')));
    const closure = staticClosure(join(ROOT, 'src/client/certificate-request.ts'));
    for (const module of CERTIFICATE_MODULES) assert.ok(closure.has(join(ROOT, module)), module);
  });

  test('the import walker sees value imports and skips type-only ones', () => {
    const source = [
      "import type { A } from './a.js';",
      "import { type B, c } from './b.js';",
      "import { type D } from './d.js';",
      "export type { E } from './e.js';",
      "export { f } from './f.js';",
      "import './g.js';",
      'import {\n  h,\n  i,\n} from "./h.js";',
    ].join('\n');
    assert.deepEqual(staticImports(source), ['./b.js', './d.js', './f.js', './g.js', './h.js']);
  });
});
