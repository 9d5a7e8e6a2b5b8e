// `npm run bench`: the benchmarks of issue 5, side by side with the official Azure IoT Node SDK, written
// to docs/benchmarks.md (and its chart) from scratch. Flags:
//   --quick              small samples, offline footprint estimate: seconds, for the test suite; written
//                        to bench/out/ (git-ignored) so that a quick check never replaces the committed report
//   --out FILE           where the markdown goes (default docs/benchmarks.md, or bench/out/benchmarks.md
//                        with --quick); the SVG goes next to it
//   --only a,b           run only these sections: cold, warm, fleet, round-trips, footprint, capacity,
//                        fleet-tool
//   --raw FILE           also write the raw measurements as JSON
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DEMO_GROUP_KEY } from '../src/emulator/enrollments/config.js';
import { benchCold } from './cold.js';
import { type BenchContext, deviceKeyFor } from './context.js';
import { benchEmulatorCapacity } from './emulator-capacity.js';
import { benchFleet } from './fleet.js';
import { benchFleetTool } from './fleet-tool.js';
import { benchFootprint } from './footprint.js';
import { distIsStale, REPO_ROOT, runProcess, startEmulatorProcess } from './processes.js';
import { type BenchResults, type MachineInfo, machineInfo, renderReport } from './report.js';
import { benchRoundTrips } from './round-trips.js';
import { benchWarm } from './warm.js';

/** The committed report: only a full run writes it. */
const FULL_REPORT = join(REPO_ROOT, 'docs', 'benchmarks.md');
/** Where --quick runs go unless --out says otherwise (git-ignored). */
const QUICK_REPORT = join(REPO_ROOT, 'bench', 'out', 'benchmarks.md');

const SECTIONS = ['cold', 'warm', 'fleet', 'round-trips', 'footprint', 'capacity', 'fleet-tool'] as const;
type Section = (typeof SECTIONS)[number];

function parseCommandLine(): { quick: boolean; out: string; only: Set<Section>; raw: string | undefined } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      only: { type: 'string' },
      raw: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const only = new Set<Section>();
  for (const name of (values.only ?? SECTIONS.join(',')).split(',').map((part) => part.trim())) {
    if (!(SECTIONS as readonly string[]).includes(name)) {
      throw new Error(`--only: unknown section "${name}": use ${SECTIONS.join(', ')}`);
    }
    only.add(name as Section);
  }
  const quick = values.quick ?? false;
  const out = values.out ?? (quick ? QUICK_REPORT : FULL_REPORT);
  return { quick, out: resolve(out), only, raw: values.raw };
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function ensureBuilt(): Promise<void> {
  if (!distIsStale()) return;
  log('dist/ is missing or older than src/: npm run build');
  const build = await runProcess('npm', ['run', 'build'], { timeoutMs: 180_000 });
  if (build.code !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
}

/**
 * Takes NODE_EXTRA_CA_CERTS out of the environment every benchmark process inherits: Node parses that
 * file in every process before any code runs (some machines point it at the whole system bundle), a fixed
 * cost that belongs to the machine, not to either client. Returns what was removed, for the report.
 */
function removeExtraCaCertificates(): MachineInfo['extraCaCertificates'] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (file === undefined || file === '') return undefined;
  delete process.env.NODE_EXTRA_CA_CERTS;
  let count = 0;
  try {
    count = readFileSync(file, 'utf8').split('-----BEGIN CERTIFICATE-----').length - 1;
  } catch {
    // An unreadable file still costs Node a failed read and a warning: removed all the same.
  }
  return { file, count };
}

async function main(): Promise<void> {
  const options = parseCommandLine();
  const extraCaCertificates = removeExtraCaCertificates();
  const startedAt = performance.now();
  await ensureBuilt();
  const pkiDir = mkdtempSync(join(tmpdir(), 'dps-mqtt-bench-pki-'));
  const emulator = await startEmulatorProcess({ pkiDir });
  const context: BenchContext = {
    quick: options.quick,
    emulator,
    pkiDir,
    groupKey: DEMO_GROUP_KEY,
    deviceKey: deviceKeyFor(DEMO_GROUP_KEY),
    log,
  };
  const results: BenchResults = {
    quick: options.quick,
    startedAt: new Date().toISOString(),
    durationMs: 0,
    machine: { ...machineInfo(), ...(extraCaCertificates === undefined ? {} : { extraCaCertificates }) },
  };
  const timed = async <T>(section: Section, run: () => Promise<T>): Promise<T | undefined> => {
    if (!options.only.has(section)) return undefined;
    const sectionStart = performance.now();
    log(`${section}...`);
    const value = await run();
    log(`${section} done in ${((performance.now() - sectionStart) / 1000).toFixed(1)} s`);
    return value;
  };
  try {
    results.cold = await timed('cold', () => benchCold(context));
    results.warm = await timed('warm', () => benchWarm(context));
    results.fleet = await timed('fleet', () => benchFleet(context));
    results.roundTrips = await timed('round-trips', () => benchRoundTrips(context));
  } finally {
    await emulator.stop();
  }
  try {
    results.footprint = await timed('footprint', () => benchFootprint(context));
    results.capacity = await timed('capacity', () => benchEmulatorCapacity(context));
    results.fleetTool = await timed('fleet-tool', () => benchFleetTool(context));
  } finally {
    rmSync(pkiDir, { recursive: true, force: true });
  }
  results.durationMs = performance.now() - startedAt;

  const chartPath = join(dirname(options.out), `${basename(options.out, '.md')}-latency.svg`);
  const { markdown, svg } = renderReport(results, basename(chartPath));
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, markdown);
  writeFileSync(chartPath, svg);
  if (options.raw !== undefined) writeFileSync(resolve(options.raw), `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${options.out} and ${chartPath} in ${(results.durationMs / 1000).toFixed(1)} s`);
}

main().then(
  () => {
    // The official SDK can leave timers behind in this process (round trips); the results are written.
    process.exit(0);
  },
  (error: unknown) => {
    process.stderr.write(
      `[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
