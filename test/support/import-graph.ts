// The project's own import graph, read from the source: what a module loads when it is evaluated (static
// imports) and what it loads on demand (import()). Used by the lazy-loading tests.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');

/** Comments removed (roughly), so an import named in a comment does not count. */
export function code(file: string): string {
  return readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/**
 * Relative specifiers a module loads when it is evaluated: `import ... from`, `export ... from` and bare
 * `import '...'`, but not `import type` / `export type` (erased). With verbatimModuleSyntax an import of
 * only inline `type` names still loads the module, so those count.
 */
export function staticImports(source: string): string[] {
  const pattern =
    /(?:^|[;\n])\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/g;
  return [...source.matchAll(pattern)]
    .filter((match) => match[2] === undefined)
    .map((match) => match[3] as string);
}

export function dynamicImports(source: string): string[] {
  return [...source.matchAll(/\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)].map(
    (match) => match[1] as string,
  );
}

export function resolveSource(from: string, specifier: string): string {
  return resolve(dirname(from), specifier.replace(/\.js$/, '.ts'));
}

/** Every source file evaluated by importing `entry`, statically, with the chain that reached it. */
export function staticClosure(entry: string): Map<string, string[]> {
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
