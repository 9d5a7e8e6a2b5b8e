// 5. Footprint: what a device installs. Ours: `npm pack`, then the tarball installed into an empty folder
// with production dependencies only; theirs: the official SDK's three packages installed the same way.
// The quick mode stays offline and walks the repository's node_modules instead (marked as an estimate).
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { BenchContext } from './context.js';
import { REPO_ROOT, runProcess } from './processes.js';

export const OFFICIAL_PACKAGES = [
  'azure-iot-provisioning-device',
  'azure-iot-provisioning-device-mqtt',
  'azure-iot-security-symmetric-key',
];

export interface InstallFootprint {
  bytes: number;
  packages: number;
  packageNames: string[];
}

export interface FootprintResult {
  method: 'npm install' | 'estimate from the local node_modules';
  ours: InstallFootprint;
  official: InstallFootprint;
  tarballBytes: number | undefined;
}

function directoryBytes(path: string, skipNodeModules: boolean): number {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) {
      if (skipNodeModules && entry.name === 'node_modules') continue;
      total += directoryBytes(child, skipNodeModules);
    } else if (entry.isFile()) {
      total += statSync(child).size;
    }
  }
  return total;
}

/** Every installed package under a node_modules folder, nested ones included. */
function installedPackages(nodeModules: string): string[] {
  const names: string[] = [];
  const visit = (folder: string): void => {
    if (!existsSync(folder)) return;
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const path = join(folder, entry.name);
      if (entry.name.startsWith('@')) {
        for (const scoped of readdirSync(path, { withFileTypes: true })) {
          if (!scoped.isDirectory()) continue;
          names.push(`${entry.name}/${scoped.name}`);
          visit(join(path, scoped.name, 'node_modules'));
        }
      } else if (existsSync(join(path, 'package.json'))) {
        names.push(entry.name);
        visit(join(path, 'node_modules'));
      }
    }
  };
  visit(nodeModules);
  return names.sort();
}

async function npm(args: string[], cwd: string): Promise<string> {
  const run = await runProcess('npm', args, { cwd, timeoutMs: 240_000 });
  if (run.code !== 0) throw new Error(`npm ${args.join(' ')} failed: ${run.stderr.slice(-1500)}`);
  return run.stdout;
}

async function installInto(folder: string, specs: string[]): Promise<InstallFootprint> {
  writeFileSync(join(folder, 'package.json'), '{ "name": "footprint-probe", "private": true }\n');
  await npm(['install', '--omit=dev', '--no-audit', '--no-fund', '--no-package-lock', ...specs], folder);
  const nodeModules = join(folder, 'node_modules');
  const packageNames = installedPackages(nodeModules);
  return { bytes: directoryBytes(nodeModules, false), packages: packageNames.length, packageNames };
}

async function measureWithNpm(context: BenchContext): Promise<FootprintResult> {
  const scratch = mkdtempSync(join(tmpdir(), 'dps-mqtt-bench-footprint-'));
  try {
    context.log('  npm pack (runs the build through `prepare`)');
    const packed = JSON.parse(
      await npm(['pack', '--json', '--pack-destination', scratch], REPO_ROOT),
    ) as Array<{
      filename: string;
    }>;
    const tarball = join(scratch, packed[0]!.filename);
    const oursDir = join(scratch, 'ours');
    const officialDir = join(scratch, 'official');
    for (const dir of [oursDir, officialDir]) mkdirSync(dir);
    context.log('  npm install <tarball> and the official SDK into empty folders');
    const ours = await installInto(oursDir, [tarball]);
    const official = await installInto(officialDir, OFFICIAL_PACKAGES);
    return { method: 'npm install', ours, official, tarballBytes: statSync(tarball).size };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Offline: the production dependency closure of each side, as it sits in the repository's node_modules. */
function estimateFromNodeModules(): FootprintResult {
  const closure = (roots: string[]): InstallFootprint => {
    const seen = new Map<string, string>();
    const visit = (name: string, from: string): void => {
      let folder = from;
      for (;;) {
        const candidate = join(folder, 'node_modules', name);
        if (existsSync(join(candidate, 'package.json'))) {
          if (seen.has(candidate)) return;
          seen.set(candidate, name);
          const manifest = JSON.parse(readFileSync(join(candidate, 'package.json'), 'utf8')) as {
            dependencies?: Record<string, string>;
          };
          for (const dependency of Object.keys(manifest.dependencies ?? {})) visit(dependency, candidate);
          return;
        }
        const parent = dirname(folder);
        if (parent === folder) return;
        folder = parent;
      }
    };
    for (const root of roots) visit(root, REPO_ROOT);
    const bytes = [...seen.keys()].reduce((sum, folder) => sum + directoryBytes(folder, true), 0);
    return { bytes, packages: seen.size, packageNames: [...new Set(seen.values())].sort() };
  };
  const ourDependencies = closure(['ws']);
  const distBytes = filesBytes(join(REPO_ROOT, 'dist'), (name) => !name.endsWith('.map'));
  const ownBytes =
    distBytes +
    statSync(join(REPO_ROOT, 'package.json')).size +
    (existsSync(join(REPO_ROOT, 'README.md')) ? statSync(join(REPO_ROOT, 'README.md')).size : 0);
  return {
    method: 'estimate from the local node_modules',
    ours: {
      bytes: ownBytes + ourDependencies.bytes,
      packages: ourDependencies.packages + 1,
      packageNames: ['dps-mqtt', ...ourDependencies.packageNames],
    },
    official: closure(OFFICIAL_PACKAGES),
    tarballBytes: undefined,
  };
}

function filesBytes(path: string, keep: (name: string) => boolean): number {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) total += filesBytes(child, keep);
    else if (entry.isFile() && keep(entry.name)) total += statSync(child).size;
  }
  return total;
}

export function benchFootprint(context: BenchContext): Promise<FootprintResult> {
  return context.quick ? Promise.resolve(estimateFromNodeModules()) : measureWithNpm(context);
}
