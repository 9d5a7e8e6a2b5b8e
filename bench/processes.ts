// Child processes of the benchmark: the emulator (so the client's CPU time is its own), client workers,
// and whole-process registrations timed from outside.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CLIENT_WORKER = join(REPO_ROOT, 'bench', 'workers', 'client-worker.mjs');
export const OFFICIAL_SCRIPT = join(REPO_ROOT, 'bench', 'workers', 'official-register.cjs');
export const OUR_CLI = join(REPO_ROOT, 'dist', 'cli', 'main.cjs');
const EMULATOR_ENTRY = join(REPO_ROOT, 'dist', 'emulator', 'cli-entry.js');
const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcessRun {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
}

/** Runs a command to its end (killed after timeoutMs) and times it from spawn to exit. */
export function runProcess(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, wallMs: performance.now() - startedAt });
    });
  });
}

/** CPU time (user + system) a running process has used so far, from /proc; NaN where there is no /proc. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

export interface EmulatorProcess {
  pid: number;
  mqttPort: number;
  wssPort: number;
  idScope: string;
  caPath: string;
  cpuMs(): number;
  stop(): Promise<void>;
}

/**
 * The compiled emulator CLI in its own process, on ephemeral loopback ports, retry-after 0; registrations
 * in memory, or kept in `dataDir` (journal and snapshot, as a persistent emulator runs).
 */
export async function startEmulatorProcess(options: {
  pkiDir: string;
  pollsBeforeAssignment?: number;
  dataDir?: string;
}): Promise<EmulatorProcess> {
  const args = [
    EMULATOR_ENTRY,
    '--host',
    '127.0.0.1',
    '--mqtt-port',
    '0',
    '--wss-port',
    '0',
    '--retry-after',
    '0',
    '--polls-before-assignment',
    String(options.pollsBeforeAssignment ?? 0),
    ...(options.dataDir === undefined ? ['--pki-dir', options.pkiDir] : ['--data-dir', options.dataDir]),
    '--quiet',
  ];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const ready = await new Promise<{ mqttPort: number; wssPort: number; idScope: string; ca: string }>(
    (resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => reject(new Error(`the emulator did not start: ${stderr}`)), 30_000);
      child.stdout?.setEncoding('utf8').on('data', (text: string) => {
        buffered += text;
        const newline = buffered.indexOf('\n');
        if (newline < 0) return;
        clearTimeout(timer);
        resolve(JSON.parse(buffered.slice(0, newline)));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the emulator exited (${code}) before it was ready: ${stderr}`));
      });
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid!;
  return {
    pid,
    mqttPort: ready.mqttPort,
    wssPort: ready.wssPort,
    idScope: ready.idScope,
    caPath: ready.ca,
    cpuMs: () => processCpuMs(pid),
    async stop() {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

export type ClientName = 'ours' | 'official';
export type TransportName = 'mqtt-ws' | 'mqtt';

/** What bench/workers/client-worker.mjs is asked to do. */
export interface WorkerJob {
  mode: 'sequential' | 'fleet';
  clients: ClientName[];
  transport: TransportName;
  count: number;
  concurrency: number;
  warmup: number;
  prefix: string;
  pipeline?: boolean;
  idScope: string;
  groupKey: string;
  mqttPort: number;
  wssPort: number;
  caPath: string;
}

export interface WorkerResult {
  latenciesMs: Partial<Record<ClientName, number[]>>;
  wallMs: number;
  cpuMs: number;
  maxRssKb: number;
  failures: number;
  firstError?: string;
}

export async function runWorker(
  job: WorkerJob,
  timeoutMs = 300_000,
  nodeArgs: string[] = [],
): Promise<WorkerResult> {
  const run = await runProcess(process.execPath, [...nodeArgs, CLIENT_WORKER, JSON.stringify(job)], {
    timeoutMs,
  });
  const line = run.stdout.trim().split('\n').pop() ?? '';
  if (run.code !== 0 || !line.startsWith('{')) {
    throw new Error(`client worker failed (exit ${run.code}): ${run.stderr.slice(-2000)}`);
  }
  return JSON.parse(line) as WorkerResult;
}

/** Whether dist/ is missing or older than a source file; the compiled CLI is what the cold run measures. */
export function distIsStale(): boolean {
  if (!existsSync(OUR_CLI) || !existsSync(EMULATOR_ENTRY)) return true;
  const builtAt = statSync(OUR_CLI).mtimeMs;
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((entry) => {
        const path = join(dir, entry.name);
        return entry.isDirectory() ? newest(path) : statSync(path).mtimeMs;
      }),
    );
  return newest(join(REPO_ROOT, 'src')) > builtAt;
}
