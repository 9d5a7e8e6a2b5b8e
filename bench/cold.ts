// 1. Cold process: one whole process registers one device and exits. Ours is the compiled CLI, theirs a
// minimal script on the official SDK; the runs alternate, and /usr/bin/time reports each peak RSS.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { OFFICIAL_SCRIPT, OUR_CLI, runProcess } from './processes.js';
import { type CpuProfileSummary, summarizeCpuProfile } from './profile.js';

const TIME = '/usr/bin/time';

export interface ColdResult {
  runs: number;
  wallMs: { ours: number[]; official: number[] };
  peakRssMb: { ours: number[]; official: number[] };
  bareNode: { wallMs: number[]; peakRssMb: number[] };
  profiles: { ours: CpuProfileSummary; official: CpuProfileSummary };
}

type Side = 'ours' | 'official' | 'bare';

function commandFor(side: Side, context: BenchContext, registrationId: string): string[] {
  const { emulator } = context;
  const key = context.deviceKey(registrationId);
  if (side === 'bare') return ['-e', '0'];
  if (side === 'ours') {
    return [
      OUR_CLI,
      'register',
      '--endpoint',
      `localhost:${emulator.wssPort}`,
      '--transport',
      'mqtt-ws',
      '--ca',
      emulator.caPath,
      '--id-scope',
      emulator.idScope,
      '--registration-id',
      registrationId,
      '--symmetric-key',
      key,
      '--json',
    ];
  }
  return [
    OFFICIAL_SCRIPT,
    `localhost:${emulator.wssPort}`,
    emulator.idScope,
    registrationId,
    key,
    emulator.caPath,
    'MqttWs',
  ];
}

async function runOnce(
  side: Side,
  context: BenchContext,
  registrationId: string,
  scratch: string,
): Promise<{ wallMs: number; peakRssMb: number }> {
  const rssFile = join(scratch, `${registrationId}.rss`);
  const nodeArgs = commandFor(side, context, registrationId);
  const run = await runProcess(TIME, ['-f', '%M', '-o', rssFile, process.execPath, ...nodeArgs], {
    timeoutMs: 30_000,
  });
  if (run.code !== 0)
    throw new Error(`${side} cold run failed (exit ${run.code}): ${run.stderr.slice(-1000)}`);
  if (side !== 'bare' && !/"status":"assigned"/.test(run.stdout)) {
    throw new Error(`${side} cold run did not print an assignment: ${run.stdout.slice(0, 500)}`);
  }
  const kilobytes = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  return { wallMs: run.wallMs, peakRssMb: kilobytes / 1024 };
}

/** A --cpu-prof run of each side with a fine sampling interval, summarised by self time. */
async function profile(side: 'ours' | 'official', context: BenchContext, scratch: string) {
  const dir = join(scratch, `profile-${side}`);
  const registrationId = `cold-profile-${side}`;
  const run = await runProcess(
    process.execPath,
    [
      '--cpu-prof',
      '--cpu-prof-interval',
      '100',
      '--cpu-prof-dir',
      dir,
      ...commandFor(side, context, registrationId),
    ],
    { timeoutMs: 30_000 },
  );
  if (run.code !== 0) throw new Error(`${side} profile run failed: ${run.stderr.slice(-1000)}`);
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`${side} profile run wrote no profile`);
  return summarizeCpuProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')));
}

export async function benchCold(context: BenchContext): Promise<ColdResult> {
  if (!existsSync(TIME)) {
    throw new Error(`${TIME} is missing: install GNU time (apt-get install time) to measure peak RSS`);
  }
  const runs = context.quick ? 3 : 20;
  const scratch = mkdtempSync(join(tmpdir(), 'dps-mqtt-bench-cold-'));
  try {
    const result: ColdResult = {
      runs,
      wallMs: { ours: [], official: [] },
      peakRssMb: { ours: [], official: [] },
      bareNode: { wallMs: [], peakRssMb: [] },
      profiles: {
        ours: await profile('ours', context, scratch),
        official: await profile('official', context, scratch),
      },
    };
    // One unmeasured run each warms the file cache and the emulator.
    await runOnce('ours', context, 'cold-warmup-ours', scratch);
    await runOnce('official', context, 'cold-warmup-official', scratch);
    for (let index = 0; index < runs; index += 1) {
      // Alternate which side goes first so that neither always follows the other.
      const order: Array<'ours' | 'official'> = index % 2 === 0 ? ['ours', 'official'] : ['official', 'ours'];
      for (const side of order) {
        const measured = await runOnce(side, context, `cold-${side}-${index}`, scratch);
        result.wallMs[side].push(measured.wallMs);
        result.peakRssMb[side].push(measured.peakRssMb);
      }
      if (index < Math.min(runs, 5)) {
        const bare = await runOnce('bare', context, `cold-bare-${index}`, scratch);
        result.bareNode.wallMs.push(bare.wallMs);
        result.bareNode.peakRssMb.push(bare.peakRssMb);
      }
    }
    return result;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
