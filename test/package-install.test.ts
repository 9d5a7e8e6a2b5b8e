// Issue 12, packaging: the packed tarball, installed into an empty project with nothing else, runs the
// emulator both ways (`import { startEmulator } from 'dps-mqtt/emulator'` and `npx dps-mqtt emulator`),
// and the install stays within the device budget (at most 3 packages and 1 MB).
//
// Offline and beside the other tests: the build goes to a staging folder (the repository's dist/ is
// left alone, other tests run it), `npm pack --ignore-scripts` packs that folder, and the scratch project
// installs with `npm ci --offline` from a lockfile naming the tarball and `ws` as the repository's
// lockfile pins it: npm 11 resolves a bare `npm install <tarball>` through the registry's full metadata,
// which `npm ci` never caches, so that would need the network.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  cpSync,
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
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..');
const MAX_PACKAGES = 3;
const MAX_INSTALL_BYTES = 1024 * 1024;

let scratch: string;
let project: string;
let pkiDir: string;

interface LockEntry {
  version: string;
  resolved?: string;
  integrity?: string;
  [field: string]: unknown;
}

function directoryBytes(path: string): number {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) total += directoryBytes(child);
    else if (entry.isFile()) total += statSync(child).size;
  }
  return total;
}

/** Installed package folders under node_modules, nested and scoped ones included. */
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

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'dps-mqtt-package-'));
  pkiDir = join(scratch, 'pki');
  // 1. Build and pack from a staging copy of what `files` ships.
  const stage = join(scratch, 'stage');
  mkdirSync(join(stage, 'docs'), { recursive: true });
  for (const file of ['package.json', 'README.md', 'LICENSE']) cpSync(join(REPO, file), join(stage, file));
  for (const file of readdirSync(join(REPO, 'docs')).filter((name) => name.endsWith('.md')))
    cpSync(join(REPO, 'docs', file), join(stage, 'docs', file));
  // `npm run build` into the stage: the esbuild bundle and the public declarations.
  await run(process.execPath, [join(REPO, 'scripts', 'build.mjs'), '--outdir', join(stage, 'dist')]);
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], {
    cwd: stage,
    maxBuffer: 16 * 1024 * 1024,
  });
  const [packed] = JSON.parse(stdout) as [{ filename: string; name: string; version: string }];
  const tarball = join(scratch, packed.filename);

  // 2. A scratch project whose only dependency is the tarball, installed offline from the npm cache.
  project = join(scratch, 'project');
  mkdirSync(project);
  const manifest = JSON.parse(readFileSync(join(stage, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    bin?: Record<string, string>;
    engines?: Record<string, string>;
    license?: string;
  };
  const repoLock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const { stdout: registryOut } = await run('npm', ['config', 'get', 'registry']);
  const registry = registryOut.trim().replace(/\/$/, '');
  const spec = `file:../${packed.filename}`;
  const packages: Record<string, unknown> = {
    '': { name: 'scratch', dependencies: { [packed.name]: spec } },
    [`node_modules/${packed.name}`]: {
      version: packed.version,
      resolved: spec,
      integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
      license: manifest.license,
      dependencies: manifest.dependencies,
      bin: manifest.bin,
      engines: manifest.engines,
    },
  };
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    const pinned = repoLock.packages[`node_modules/${name}`];
    assert.ok(pinned, `package-lock.json pins the production dependency ${name}`);
    const { dev: _dev, ...entry } = pinned;
    entry.resolved ??= `${registry}/${name}/-/${name}-${pinned.version}.tgz`;
    packages[`node_modules/${name}`] = entry;
  }
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'scratch', private: true, dependencies: { [packed.name]: spec } }, null, 2)}\n`,
  );
  writeFileSync(
    join(project, 'package-lock.json'),
    `${JSON.stringify({ name: 'scratch', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`,
  );
  await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--omit=dev'], { cwd: project });
});

after(() => {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

test('the install is at most 3 packages and 1 MB, and carries no mqtt-packet', () => {
  const nodeModules = join(project, 'node_modules');
  const packages = installedPackages(nodeModules);
  const bytes = directoryBytes(nodeModules);
  process.stdout.write(
    `# install: ${packages.length} packages (${packages.join(', ')}), ${(bytes / 1024).toFixed(0)} KiB\n`,
  );
  assert.ok(packages.length <= MAX_PACKAGES, `${packages.length} packages: ${packages.join(', ')}`);
  assert.ok(bytes <= MAX_INSTALL_BYTES, `${bytes} bytes installed`);
  assert.ok(packages.includes('dps-mqtt'));
  assert.ok(!packages.includes('mqtt-packet'));
});

test("import { startEmulator } from 'dps-mqtt/emulator' starts and stops an emulator", async () => {
  const script = `
    const { startEmulator } = await import('dps-mqtt/emulator');
    const emulator = await startEmulator({ host: '127.0.0.1', mqttPort: 0, wssPort: 0, pkiDir: ${JSON.stringify(pkiDir)} });
    console.log(JSON.stringify({ mqttPort: emulator.mqttPort, wssPort: emulator.wssPort }));
    await emulator.close();
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: project,
    timeout: 30_000,
  });
  const ports = JSON.parse(stdout.trim()) as { mqttPort: number; wssPort: number };
  assert.ok(ports.mqttPort > 0 && ports.wssPort > 0, stdout);
});

test('npx dps-mqtt emulator prints its ready line, and SIGTERM stops it', async (t) => {
  const child: ChildProcess = spawn(
    'npx',
    [
      '--offline',
      'dps-mqtt',
      'emulator',
      '--host',
      '127.0.0.1',
      '--mqtt-port',
      '0',
      '--wss-port',
      '0',
      '--pki-dir',
      pkiDir,
      '--quiet',
    ],
    { cwd: project, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  t.after(() => {
    // Whatever happened, nothing outlives the test: the whole process group goes.
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const readyLine = await new Promise<string>((resolveLine, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`no ready line within 30 s: ${stderr}`)), 30_000);
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      buffered += text;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      resolveLine(buffered.slice(0, newline));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the emulator exited with ${code} before its ready line: ${stderr}`));
    });
  });
  const ready = JSON.parse(readyLine) as { mqttPort: number; wssPort: number };
  assert.ok(ready.mqttPort > 0 && ready.wssPort > 0, readyLine);
  // SIGTERM to the process group, as a shell or a supervisor stops a job: npx runs the bin through
  // `sh -c`, which does not pass a signal on to its child. 'close' waits for every process holding the
  // output pipes, the emulator included.
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  process.kill(-(child.pid as number), 'SIGTERM');
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error('still running 15 s after SIGTERM')), 15_000).unref(),
  );
  const [code, signal] = await Promise.race([closed, timeout]);
  assert.ok(code === 0 || signal === 'SIGTERM', `exit code ${code}, signal ${signal}: ${stderr}`);
});

test('a TypeScript consumer type-checks against the shipped declarations (tsc --noEmit)', async () => {
  // The package ships only the declarations its two entry points reach (scripts/build.mjs): a consumer
  // using both, with the types its signatures name (errors, options, results), must still compile.
  const consumer = join(project, 'consumer.mts'); // .mts: an ES module whatever package.json says
  writeFileSync(
    consumer,
    `import { type AnyDpsError, isDpsError, ProvisioningServiceError, register, type RegistrationResult } from 'dps-mqtt';
import { type EmulatorOptions, startEmulator } from 'dps-mqtt/emulator';
const options: EmulatorOptions = { host: '127.0.0.1', mqttPort: 0 };
export async function main(): Promise<string> {
  const emulator = await startEmulator(options);
  try {
    const result: RegistrationResult = await register({
      idScope: emulator.idScope,
      registrationId: 'consumer',
      security: { symmetricKey: 'a2V5' },
      endpoint: \`127.0.0.1:\${emulator.mqttPort}\`,
    });
    return result.assignedHub;
  } catch (error) {
    if (isDpsError(error)) {
      const typed: AnyDpsError = error;
      if (typed instanceof ProvisioningServiceError) return String(typed.statusCode);
      return typed.code;
    }
    throw error;
  } finally {
    await emulator.close();
  }
}
`,
  );
  writeFileSync(
    join(project, 'tsconfig.json'),
    `${JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [join(REPO, 'node_modules', '@types')],
      },
      files: ['consumer.mts'],
    })}\n`,
  );
  const result = await run(
    process.execPath,
    [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project],
    {
      cwd: project,
    },
  ).then(
    () => '',
    (error: { stdout?: string }) => error.stdout ?? String(error),
  );
  assert.equal(result, '');
});
