// 3. Fleet: many devices at a fixed concurrency from one client process (the emulator runs in its own),
// so the process's CPU time is the client's alone. Ours and the official SDK alternate run by run.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { type ClientName, runWorker, type WorkerJob } from './processes.js';
import { type CpuProfileSummary, summarizeCpuProfile } from './profile.js';

export interface FleetRun {
  client: ClientName;
  devices: number;
  concurrency: number;
  wallMs: number;
  devicesPerSecond: number;
  cpuMsPerRegistration: number;
  /** Registrations per second of client CPU time. */
  devicesPerCpuSecond: number;
  peakRssMb: number;
  latencyMs: number[];
  failures: number;
}

export interface FleetResult {
  /** Both clients, same size; repeated and alternated. */
  compared: FleetRun[];
  /** Ours alone, ten times larger. */
  large: FleetRun | undefined;
  /** One extra, unmeasured fleet per client under --cpu-prof: where the client's CPU goes. */
  profiles: { devices: number; ours: CpuProfileSummary; official: CpuProfileSummary };
}

async function profiledFleet(
  context: BenchContext,
  client: ClientName,
  devices: number,
  concurrency: number,
) {
  const dir = mkdtempSync(join(tmpdir(), `dps-mqtt-bench-fleet-profile-${client}-`));
  try {
    await fleetRun(context, client, devices, concurrency, `profile`, ['--cpu-prof', '--cpu-prof-dir', dir]);
    const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error(`the ${client} fleet profile was not written`);
    return summarizeCpuProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fleetRun(
  context: BenchContext,
  client: ClientName,
  devices: number,
  concurrency: number,
  label: string,
  nodeArgs: string[] = [],
): Promise<FleetRun> {
  const { emulator } = context;
  const job: WorkerJob = {
    mode: 'fleet',
    clients: [client],
    transport: 'mqtt-ws',
    count: devices,
    concurrency,
    warmup: 0,
    prefix: `fleet-${label}`,
    idScope: emulator.idScope,
    groupKey: context.groupKey,
    mqttPort: emulator.mqttPort,
    wssPort: emulator.wssPort,
    caPath: emulator.caPath,
  };
  const result = await runWorker(job, 400_000, nodeArgs);
  if (result.failures > 0) {
    context.log(
      `  ${client}: ${result.failures} of ${devices} registrations failed (first: ${result.firstError})`,
    );
  }
  const succeeded = devices - result.failures;
  return {
    client,
    devices,
    concurrency,
    wallMs: result.wallMs,
    devicesPerSecond: (succeeded * 1000) / result.wallMs,
    cpuMsPerRegistration: result.cpuMs / Math.max(1, succeeded),
    devicesPerCpuSecond: (succeeded * 1000) / result.cpuMs,
    peakRssMb: result.maxRssKb / 1024,
    latencyMs: result.latenciesMs[client] ?? [],
    failures: result.failures,
  };
}

export async function benchFleet(context: BenchContext): Promise<FleetResult> {
  const devices = context.quick ? 60 : 1000;
  const concurrency = context.quick ? 20 : 100;
  // Five runs each: the official SDK's CPU per registration moves by a quarter from run to run on a
  // shared machine, and a median of three still followed it.
  const repeats = context.quick ? 1 : 5;
  const compared: FleetRun[] = [];
  for (let round = 0; round < repeats; round += 1) {
    const order: ClientName[] = round % 2 === 0 ? ['ours', 'official'] : ['official', 'ours'];
    for (const client of order) {
      context.log(`  fleet round ${round + 1}/${repeats}: ${client}, ${devices} devices`);
      compared.push(await fleetRun(context, client, devices, concurrency, `${round}`));
    }
  }
  const largeDevices = context.quick ? 200 : 10_000;
  context.log(`  fleet: ours, ${largeDevices} devices`);
  const large = await fleetRun(context, 'ours', largeDevices, concurrency, 'large');
  const profileDevices = context.quick ? 60 : 500;
  context.log(`  fleet: one profiled run per client, ${profileDevices} devices`);
  const profiles = {
    devices: profileDevices,
    ours: await profiledFleet(context, 'ours', profileDevices, concurrency),
    official: await profiledFleet(context, 'official', profileDevices, concurrency),
  };
  return { compared, large, profiles };
}
