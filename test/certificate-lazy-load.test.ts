// Issue 11: plain registrations must not pay for certificate issuance. The code that builds CSRs and
// checks chains (certificate-request, csr-builder, csr-reader, der) is reached from the package entry only
// through `await import()`: this walks every static import of the source from src/index.ts and proves it.
import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import {
  code,
  dynamicImports,
  ROOT,
  resolveSource,
  staticClosure,
  staticImports,
} from './support/import-graph.js';

const CERTIFICATE_MODULES = [
  'src/client/certificate-request.ts',
  'src/protocol/csr-builder.ts',
  'src/protocol/csr-reader.ts',
  'src/protocol/der.ts',
];

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
