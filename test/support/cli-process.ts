// `dps-mqtt` as a child process (the TypeScript source through tsx), with its output collected and a
// deadline that kills it, for the end-to-end CLI tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD_TIMEOUT_MS = 30_000;

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export type CliChild = ChildProcess & { result: Promise<CliRun>; output(): CliRun };

/** The environment without the variables the CLI reads, so the developer's shell cannot change a test. */
export function cleanCliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HTTPS_PROXY: '', https_proxy: '', NO_PROXY: '', ...extra };
  for (const name of Object.keys(env)) {
    if (name.startsWith('DPS_') && !(name in extra)) delete env[name];
  }
  return env;
}

/** Starts the CLI; `result` settles when it exits, `output()` is what it has printed so far. */
export function startCli(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): CliChild {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: cleanCliEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  const result = (once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>).then(
    ([code, signal]) => {
      clearTimeout(killer);
      return { code, signal, stdout, stderr };
    },
  );
  const output = (): CliRun => ({ code: null, signal: null, stdout, stderr });
  return Object.assign(child, { result, output });
}

/** Runs the CLI to its end. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<CliRun> {
  return startCli(args, options).result;
}
