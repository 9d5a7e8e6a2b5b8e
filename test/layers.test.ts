// The layers of docs/design.md, checked on the source: which folder may import which, the emulator's rooms
// (the registrar and the enrollments know no sockets), and no import cycles. Type-only imports count too:
// a layer that names another's types depends on it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file (static, type-only and dynamic), as src-relative paths. */
function importsOf(file: string): { target: string; typeOnly: boolean }[] {
  const source = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const found: { target: string; typeOnly: boolean }[] = [];
  const pattern =
    /(?:^|[;\n])\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
  for (const match of source.matchAll(pattern)) {
    const specifier = match[2] ?? match[3];
    if (specifier === undefined) continue;
    const target = relative(SRC, resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
    found.push({ target, typeOnly: match[1] !== undefined });
  }
  return found;
}

const files = sourceFiles(SRC).map((file) => relative(SRC, file));
const graph = new Map(files.map((file) => [file, importsOf(join(SRC, file))]));

/** The folder of a src-relative path: `client`, `emulator/registrar`, or `.` for src/index.ts. */
function layerOf(file: string, depth = 1): string {
  const parts = file.split('/');
  return parts.length > depth ? parts.slice(0, depth).join('/') : parts.slice(0, -1).join('/') || '.';
}

// Which top-level folders each folder may import (besides itself).
const ALLOWED: Record<string, string[]> = {
  protocol: [],
  mqtt: ['protocol'],
  io: ['protocol'],
  transport: ['protocol', 'mqtt', 'io'],
  client: ['protocol', 'mqtt', 'io', 'transport'],
  emulator: ['protocol', 'mqtt'],
  diagnose: ['protocol', 'mqtt', 'io', 'transport', 'client'],
  cli: ['protocol', 'mqtt', 'io', 'transport', 'client', 'emulator', 'diagnose', 'fleet'],
  fleet: ['protocol', 'mqtt', 'io', 'transport', 'client'],
  '.': ['protocol', 'mqtt', 'io', 'transport', 'client', 'fleet'],
};

// Inside the emulator: rooms that must stay free of sockets and of the listeners.
const EMULATOR_FORBIDDEN: Record<string, string[]> = {
  'emulator/registrar': ['emulator/network', 'emulator/mqtt', 'emulator/device-api', 'emulator/service-api'],
  'emulator/enrollments': [
    'emulator/network',
    'emulator/mqtt',
    'emulator/device-api',
    'emulator/service-api',
    'emulator/registrar',
  ],
  'emulator/pki': [
    'emulator/network',
    'emulator/mqtt',
    'emulator/device-api',
    'emulator/service-api',
    'emulator/registrar',
    'emulator/enrollments',
  ],
};

describe('layers (docs/design.md)', () => {
  test('every folder imports only the layers beneath it', () => {
    const violations: string[] = [];
    for (const [file, imports] of graph) {
      const from = layerOf(file);
      const allowed = ALLOWED[from];
      assert.ok(allowed, `src/${file}: folder "${from}" has no rule in test/layers.test.ts: add one`);
      for (const { target } of imports) {
        const to = layerOf(target);
        if (to !== from && !allowed.includes(to)) violations.push(`src/${file} -> src/${target}`);
      }
    }
    assert.deepEqual(violations, []);
  });

  test("the emulator's registrar, enrollments and PKI know no sockets and no listeners", () => {
    const violations: string[] = [];
    for (const [file, imports] of graph) {
      const room = layerOf(file, 2);
      for (const { target } of imports) {
        if ((EMULATOR_FORBIDDEN[room] ?? []).includes(layerOf(target, 2))) {
          violations.push(`src/${file} -> src/${target}`);
        }
      }
    }
    assert.deepEqual(violations, []);
  });

  test('no import cycles between source files (runtime imports)', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'visiting');
      for (const { target, typeOnly } of graph.get(file) ?? []) {
        if (!typeOnly && graph.has(target)) visit(target, [...path, file]);
      }
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    assert.deepEqual(cycles, []);
  });
});
