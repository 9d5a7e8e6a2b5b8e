// docs/benchmarks.md and its chart, written from one run's results and nothing else.
import { cpus, release, totalmem } from 'node:os';
import { distributionChartSvg } from './chart.js';
import type { ColdResult } from './cold.js';
import type { CapacityRun } from './emulator-capacity.js';
import type { FleetResult, FleetRun } from './fleet.js';
import { type FleetToolResult, renderFleetTool } from './fleet-tool.js';
import type { FootprintResult } from './footprint.js';
import { BASELINE, FIGURE_CHANGES } from './history.js';
import type { CpuProfileSummary } from './profile.js';
import { ONE_WAY_DELAY_MS, type RoundTripCase } from './round-trips.js';
import { median, summarize } from './stats.js';
import type { WarmResult } from './warm.js';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  node: string;
  os: string;
  /**
   * NODE_EXTRA_CA_CERTS as the benchmark found it (removed for every process it starts): the file and
   * how many certificates it holds. Undefined when it was not set.
   */
  extraCaCertificates?: { file: string; count: number };
}

export interface BenchResults {
  quick: boolean;
  startedAt: string;
  durationMs: number;
  machine: MachineInfo;
  cold?: ColdResult;
  warm?: WarmResult;
  fleet?: FleetResult;
  roundTrips?: RoundTripCase[];
  footprint?: FootprintResult;
  capacity?: CapacityRun[];
  fleetTool?: FleetToolResult;
}

export function machineInfo(): MachineInfo {
  const processors = cpus();
  return {
    cpuModel: processors[0]?.model.trim() ?? 'unknown',
    cores: processors.length,
    memoryGb: totalmem() / 1024 ** 3,
    node: process.version,
    os: `${process.platform} ${release()}`,
  };
}

const OURS_COLOR = '#1f77b4';
const OFFICIAL_COLOR = '#d62728';

function fixed(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

function ratio(ours: number, official: number): string {
  return Number.isFinite(ours) && Number.isFinite(official) && official !== 0
    ? (ours / official).toFixed(2)
    : 'n/a';
}

function megabytes(bytes: number): string {
  return (bytes / 1024 ** 2).toFixed(2);
}

interface Target {
  figure: string;
  ours: string;
  official: string;
  ratio: number;
  target: string;
  met: boolean;
}

function targetRow(
  figure: string,
  ours: number,
  official: number,
  unit: string,
  target: string,
  met: (r: number) => boolean,
  digits = 1,
): Target {
  const value = ours / official;
  return {
    figure,
    ours: `${fixed(ours, digits)} ${unit}`,
    official: `${fixed(official, digits)} ${unit}`,
    ratio: value,
    target,
    met: Number.isFinite(value) && met(value),
  };
}

function fleetSummary(runs: FleetRun[], client: 'ours' | 'official') {
  const mine = runs.filter((run) => run.client === client);
  return {
    runs: mine.length,
    devicesPerSecond: median(mine.map((run) => run.devicesPerSecond)),
    cpuMsPerRegistration: median(mine.map((run) => run.cpuMsPerRegistration)),
    devicesPerCpuSecond: median(mine.map((run) => run.devicesPerCpuSecond)),
    peakRssMb: median(mine.map((run) => run.peakRssMb)),
    worst: {
      devicesPerSecond: Math.min(...mine.map((run) => run.devicesPerSecond)),
      cpuMsPerRegistration: Math.max(...mine.map((run) => run.cpuMsPerRegistration)),
      peakRssMb: Math.max(...mine.map((run) => run.peakRssMb)),
    },
    latency: summarize(mine.flatMap((run) => run.latencyMs)),
    failures: mine.reduce((sum, run) => sum + run.failures, 0),
  };
}

function targets(results: BenchResults): Target[] {
  const rows: Target[] = [];
  const { cold, warm, fleet, footprint } = results;
  if (cold) {
    rows.push(
      targetRow(
        'cold process, wall time (median)',
        median(cold.wallMs.ours),
        median(cold.wallMs.official),
        'ms',
        '<= 0.5',
        (r) => r <= 0.5,
      ),
      targetRow(
        'cold process, peak RSS (median)',
        median(cold.peakRssMb.ours),
        median(cold.peakRssMb.official),
        'MB',
        '<= 0.7',
        (r) => r <= 0.7,
      ),
    );
  }
  if (warm) {
    rows.push(
      targetRow(
        'warm registration latency (median)',
        median(warm.latencyMs.ours),
        median(warm.latencyMs.official),
        'ms',
        '<= 0.5',
        (r) => r <= 0.5,
        2,
      ),
    );
  }
  if (fleet) {
    const ours = fleetSummary(fleet.compared, 'ours');
    const official = fleetSummary(fleet.compared, 'official');
    rows.push(
      targetRow(
        'fleet, devices per client CPU second (median)',
        ours.devicesPerCpuSecond,
        official.devicesPerCpuSecond,
        '/s',
        '>= 3',
        (r) => r >= 3,
        0,
      ),
      targetRow(
        'fleet, peak RSS (median)',
        ours.peakRssMb,
        official.peakRssMb,
        'MB',
        '<= 0.7',
        (r) => r <= 0.7,
      ),
    );
  }
  if (footprint) {
    rows.push(
      targetRow(
        'production install size',
        footprint.ours.bytes / 1024 ** 2,
        footprint.official.bytes / 1024 ** 2,
        'MB',
        '<= 0.1',
        (r) => r <= 0.1,
        2,
      ),
    );
  }
  return rows;
}

function profileTable(summary: CpuProfileSummary): string[] {
  return [
    `Profile span ${fixed(summary.durationMs)} ms (after Node's own bootstrap), of which ${fixed(summary.busyMs)} ms on the CPU.`,
    '',
    '| by origin | self ms |',
    '| --- | ---: |',
    ...summary.byOrigin.map((entry) => `| ${entry.name} | ${fixed(entry.ms)} |`),
    '',
    '| top functions by self time | self ms |',
    '| --- | ---: |',
    ...summary.topFunctions.map(
      (entry) => `| \`${entry.name.replace(/\|/g, '\\|')}\` | ${fixed(entry.ms)} |`,
    ),
  ];
}

export function renderReport(
  results: BenchResults,
  chartFileName: string,
): { markdown: string; svg: string } {
  const { machine, cold, warm, fleet, roundTrips, footprint, capacity } = results;
  const lines: string[] = [];
  const push = (...more: string[]): void => {
    lines.push(...more);
  };
  push(
    '# Benchmarks: dps-mqtt against the official Azure IoT Node SDK',
    '',
    `Generated by \`npm run bench\`${results.quick ? ' **in --quick mode (small samples: not for quoting)**' : ''} on ${results.startedAt}; the whole run took ${fixed(results.durationMs / 1000, 0)} s. Every figure below comes from that one run: do not edit this file, run the benchmark again.`,
    '',
    '## Machine',
    '',
    '| | |',
    '| --- | --- |',
    `| CPU | ${machine.cpuModel} |`,
    `| cores | ${machine.cores} |`,
    `| memory | ${fixed(machine.memoryGb)} GB |`,
    `| Node.js | ${machine.node} |`,
    `| OS | ${machine.os} |`,
    '',
    '## Set-up',
    '',
    "- Server: the project's emulator (`dist/emulator/cli-entry.js`) in its own process on 127.0.0.1, ephemeral ports, its own CA, retry-after 0, the first status query answered `assigned` (one poll per registration: register 202, poll 200).",
    "- Both clients: symmetric key (the emulator's demo group key, device key derived per registration id), MQTT over WebSocket over TLS unless a table says otherwise, the emulator CA as the only trusted CA (ours: `--ca` / `trustedCa`; the official SDK: `MqttBase.setOptions({ ca })`, its own way to trust a CA). The official SDK's `MqttWs` dials port 443 only; a one-method subclass keeps the emulator's port (as in `test/emulator-sdk.test.ts`).",
    '- Ours is the compiled package (`dist/`); the official SDK is `azure-iot-provisioning-device` + `-mqtt` + `azure-iot-security-symmetric-key` from devDependencies. Client processes are plain `node` (no TypeScript loader). The two clients alternate run by run.',
    '- Medians and p95 are nearest-rank over the measured runs; warm-up runs are not counted.',
    ...(machine.extraCaCertificates === undefined
      ? []
      : [
          `- This machine sets \`NODE_EXTRA_CA_CERTS\` (\`${machine.extraCaCertificates.file}\`, ${machine.extraCaCertificates.count} certificates), which every Node.js process parses at start-up, before any of its code runs. Neither client needs it (each trusts only the emulator's CA), a device does not have it, and it would add the same fixed cost to every process of both clients: the benchmark removes it from the environment of every process it starts.`,
        ]),
    '',
  );

  const targetRows = targets(results);
  push('## Summary: ours / official against the targets', '');
  if (targetRows.length > 0) {
    push(
      '| figure | ours | official | ours / official | target | |',
      '| --- | ---: | ---: | ---: | ---: | --- |',
    );
    for (const row of targetRows) {
      push(
        `| ${row.figure} | ${row.ours} | ${row.official} | **${fixed(row.ratio, 2)}** | ${row.target} | ${row.met ? 'met' : '**missed**'} |`,
      );
    }
  }
  if (roundTrips) {
    const defaults = roundTrips.filter((testCase) => testCase.client === 'ours' && !testCase.pipeline);
    const piped = roundTrips.filter((testCase) => testCase.client === 'ours' && testCase.pipeline);
    for (const testCase of [...defaults, ...piped]) {
      push(
        `| flights, ${testCase.label} | ${fixed(median(testCase.flights), 0)} | ${fixed(median(roundTrips.find((other) => other.client === 'official' && other.transport === testCase.transport)?.flights ?? []), 0)} | | minimum ${testCase.minimumRoundTrips} | ${median(testCase.flights) <= testCase.minimumRoundTrips ? 'at the minimum' : `${fixed(median(testCase.flights) - testCase.minimumRoundTrips, 0)} above${testCase.pipeline ? '' : ' (by default; see round trips for why)'}`} |`,
      );
    }
  }
  const missed = targetRows.filter((row) => !row.met);
  push('');
  if (missed.length > 0) {
    push(
      `Missed: ${missed.map((row) => `${row.figure} (${fixed(row.ratio, 2)}, target ${row.target})`).join('; ')}. Where the time goes is below: the [cold process profile](#where-the-time-goes-cold-process-profile) and the [fleet client profile](#where-the-time-goes-fleet-client-profile). Both clients spend most of a registration in Node itself (module loading at start-up; TLS handshakes, certificate checks and socket writes in a fleet), which bounds what any client on Node can save.`,
      '',
    );
  }
  push(
    '## Which change moved which figure',
    '',
    `Before issue 15's speed work the summary read: ${BASELINE}. What each change was measured to do when it was made (records from \`bench/history.ts\`, not this run):`,
    '',
    '| change | effect | measured by |',
    '| --- | --- | --- |',
    ...FIGURE_CHANGES.map((entry) => `| ${entry.change} | ${entry.effect} | ${entry.measuredBy} |`),
    '',
  );
  push(`![Latency distributions](${chartFileName})`, '');

  if (cold) {
    const wall = { ours: summarize(cold.wallMs.ours), official: summarize(cold.wallMs.official) };
    const rss = { ours: summarize(cold.peakRssMb.ours), official: summarize(cold.peakRssMb.official) };
    const bare = { wall: summarize(cold.bareNode.wallMs), rss: summarize(cold.bareNode.peakRssMb) };
    push(
      '## 1. Cold process',
      '',
      `One whole process registers one device and exits: ours is \`node dist/cli/main.cjs register ... --json\`, the official SDK a minimal script (\`bench/workers/official-register.cjs\`). Wall time is from spawn to exit as the benchmark sees it; peak RSS is \`/usr/bin/time -f %M\`. ${cold.runs} runs each, alternating, after one unmeasured run each (ours keeps a V8 code cache of its bundle from that first run, as a device's next run would: \`scripts/templates/cli-main.cjs\`).`,
      '',
      '| figure | ours median | ours p95 | official median | official p95 | ours / official (median) |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      `| wall time, ms | ${fixed(wall.ours.median)} | ${fixed(wall.ours.p95)} | ${fixed(wall.official.median)} | ${fixed(wall.official.p95)} | ${ratio(wall.ours.median, wall.official.median)} |`,
      `| peak RSS, MB | ${fixed(rss.ours.median)} | ${fixed(rss.ours.p95)} | ${fixed(rss.official.median)} | ${fixed(rss.official.p95)} | ${ratio(rss.ours.median, rss.official.median)} |`,
      '',
      `For scale, a bare \`node -e 0\` on this machine: ${fixed(bare.wall.median)} ms and ${fixed(bare.rss.median)} MB (median of ${bare.wall.count}). Above bare Node, ours costs ${fixed(wall.ours.median - bare.wall.median)} ms and ${fixed(rss.ours.median - bare.rss.median)} MB; the official SDK ${fixed(wall.official.median - bare.wall.median)} ms and ${fixed(rss.official.median - bare.rss.median)} MB (ratio ${ratio(wall.ours.median - bare.wall.median, wall.official.median - bare.wall.median)} for time, ${ratio(rss.ours.median - bare.rss.median, rss.official.median - bare.rss.median)} for memory).`,
      '',
    );
  }

  if (warm) {
    const ours = summarize(warm.latencyMs.ours);
    const official = summarize(warm.latencyMs.official);
    push(
      '## 2. Warm latency',
      '',
      `${warm.count} sequential registrations per client in one client process (both clients loaded, alternating registration by registration), after a warm-up; each registration opens its own connection (TCP, TLS, WebSocket, MQTT) as a device would.`,
      '',
      '| client | median ms | p95 ms | min ms | max ms |',
      '| --- | ---: | ---: | ---: | ---: |',
      `| ours | ${fixed(ours.median, 2)} | ${fixed(ours.p95, 2)} | ${fixed(ours.min, 2)} | ${fixed(ours.max, 2)} |`,
      `| official SDK | ${fixed(official.median, 2)} | ${fixed(official.p95, 2)} | ${fixed(official.min, 2)} | ${fixed(official.max, 2)} |`,
      `| ours / official | ${ratio(ours.median, official.median)} | ${ratio(ours.p95, official.p95)} | | |`,
      '',
    );
    if (warm.overMqtt) {
      const oursMqtt = summarize(warm.overMqtt.ours);
      const officialMqtt = summarize(warm.overMqtt.official);
      push(
        'The same over MQTT over TLS (port 8883, no WebSocket):',
        '',
        '| client | median ms | p95 ms | min ms | max ms |',
        '| --- | ---: | ---: | ---: | ---: |',
        `| ours | ${fixed(oursMqtt.median, 2)} | ${fixed(oursMqtt.p95, 2)} | ${fixed(oursMqtt.min, 2)} | ${fixed(oursMqtt.max, 2)} |`,
        `| official SDK | ${fixed(officialMqtt.median, 2)} | ${fixed(officialMqtt.p95, 2)} | ${fixed(officialMqtt.min, 2)} | ${fixed(officialMqtt.max, 2)} |`,
        `| ours / official | ${ratio(oursMqtt.median, officialMqtt.median)} | ${ratio(oursMqtt.p95, officialMqtt.p95)} | | |`,
        '',
      );
    }
  }

  if (fleet) {
    const ours = fleetSummary(fleet.compared, 'ours');
    const official = fleetSummary(fleet.compared, 'official');
    const size = fleet.compared[0];
    push(
      '## 3. Fleet',
      '',
      `${size?.devices ?? 0} devices at concurrency ${size?.concurrency ?? 0} from one client process, ${ours.runs} runs per client, alternating (ours, official, official, ours, ...). CPU is the client process's user + system time over the fleet (\`process.cpuUsage()\`), not wall time; the emulator runs in its own process. Per-run figures are the median over runs (worst run in brackets); latency is over every registration of every run.`,
      '',
      '| figure | ours | official SDK | ours / official |',
      '| --- | ---: | ---: | ---: |',
      `| devices per second | ${fixed(ours.devicesPerSecond, 0)} (${fixed(ours.worst.devicesPerSecond, 0)}) | ${fixed(official.devicesPerSecond, 0)} (${fixed(official.worst.devicesPerSecond, 0)}) | ${ratio(ours.devicesPerSecond, official.devicesPerSecond)} |`,
      `| client CPU ms per registration | ${fixed(ours.cpuMsPerRegistration, 2)} (${fixed(ours.worst.cpuMsPerRegistration, 2)}) | ${fixed(official.cpuMsPerRegistration, 2)} (${fixed(official.worst.cpuMsPerRegistration, 2)}) | ${ratio(ours.cpuMsPerRegistration, official.cpuMsPerRegistration)} |`,
      `| devices per client CPU second | ${fixed(ours.devicesPerCpuSecond, 0)} | ${fixed(official.devicesPerCpuSecond, 0)} | ${ratio(ours.devicesPerCpuSecond, official.devicesPerCpuSecond)} |`,
      `| peak RSS, MB | ${fixed(ours.peakRssMb)} (${fixed(ours.worst.peakRssMb)}) | ${fixed(official.peakRssMb)} (${fixed(official.worst.peakRssMb)}) | ${ratio(ours.peakRssMb, official.peakRssMb)} |`,
      `| registration latency median / p95, ms | ${fixed(ours.latency.median)} / ${fixed(ours.latency.p95)} | ${fixed(official.latency.median)} / ${fixed(official.latency.p95)} | ${ratio(ours.latency.median, official.latency.median)} / ${ratio(ours.latency.p95, official.latency.p95)} |`,
      `| failed registrations | ${ours.failures} | ${official.failures} | |`,
      '',
      'With two cores, the client and the emulator each have about one: devices per second is bounded by whichever saturates first (see section 6 for the emulator alone), which is why CPU per registration is the figure that compares the clients.',
      '',
    );
    if (fleet.large) {
      const large = fleet.large;
      const latency = summarize(large.latencyMs);
      push(
        `Ours alone, ${large.devices} devices at concurrency ${large.concurrency}: ${fixed(large.devicesPerSecond, 0)} devices per second, ${fixed(large.cpuMsPerRegistration, 2)} client CPU ms per registration (${fixed(large.devicesPerCpuSecond, 0)} devices per CPU second), peak RSS ${fixed(large.peakRssMb)} MB, latency median ${fixed(latency.median)} ms / p95 ${fixed(latency.p95)} ms, ${large.failures} failed, ${fixed(large.wallMs / 1000)} s in all.`,
        '',
      );
    }
  }

  if (roundTrips) {
    push(
      '## 4. Round trips',
      '',
      `A TCP proxy inside the benchmark (\`bench/delay-proxy.ts\`) sits between client and emulator and delays every chunk ${ONE_WAY_DELAY_MS} ms in each direction (one round trip = ${2 * ONE_WAY_DELAY_MS} ms). The loopback TCP handshake completes in the kernel, so the proxy holds the client's first bytes until three one-way delays after the accept, as a real SYN / SYN-ACK would. A *flight* is a burst of client bytes that had to wait for the server: the SYN, then every burst that follows bytes from the server; flights after the registration resolved (DISCONNECT, close) are not counted. Wall time is \`register()\` to its result, in-process. ${median(roundTrips.map((testCase) => testCase.wallMs.length))} runs per row, interleaved.`,
      '',
      '| client and transport | flights (median) | physical minimum | wall ms median | wall ms p95 | minimum wall ms | connections |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const testCase of roundTrips) {
      const wall = summarize(testCase.wallMs);
      push(
        `| ${testCase.label} | ${fixed(median(testCase.flights), 0)} | ${testCase.minimumRoundTrips} | ${fixed(wall.median)} | ${fixed(wall.p95)} | ${testCase.minimumRoundTrips * 2 * ONE_WAY_DELAY_MS} | ${fixed(median(testCase.connections), 0)} |`,
      );
    }
    const ratioRows = ['mqtt-ws', 'mqtt'].map((transport) => {
      const oursDefault = roundTrips.find(
        (c) => c.client === 'ours' && c.transport === transport && !c.pipeline,
      );
      const official = roundTrips.find((c) => c.client === 'official' && c.transport === transport);
      return `${transport}: ours (default) / official wall time ${ratio(median(oursDefault?.wallMs ?? []), median(official?.wallMs ?? []))}`;
    });
    push('', `Ratios of medians: ${ratioRows.join('; ')}.`, '');
    push(...ROUND_TRIP_NOTES, '');
  }

  if (footprint) {
    push(
      '## 5. Footprint',
      '',
      footprint.method === 'npm install'
        ? `Ours: \`npm pack\` (tarball ${footprint.tarballBytes === undefined ? 'n/a' : `${(footprint.tarballBytes / 1024).toFixed(1)} KB`}), then \`npm install --omit=dev <tarball>\` into an empty folder. The official SDK: \`npm install --omit=dev ${['azure-iot-provisioning-device', 'azure-iot-provisioning-device-mqtt', 'azure-iot-security-symmetric-key'].join(' ')}\` into another. Size is the sum of file sizes under \`node_modules\`; packages are the installed package folders, nested ones included.`
        : "Quick mode stays offline: this is an **estimate** from the repository's own `node_modules` (each side's production dependency closure, file sizes summed; ours = `dist/` without source maps + README + package.json + `ws`). The full run installs both with npm.",
      '',
      '| | ours | official SDK | ours / official |',
      '| --- | ---: | ---: | ---: |',
      `| size on disk, MB | ${megabytes(footprint.ours.bytes)} | ${megabytes(footprint.official.bytes)} | ${ratio(footprint.ours.bytes, footprint.official.bytes)} |`,
      `| packages | ${footprint.ours.packages} | ${footprint.official.packages} | ${ratio(footprint.ours.packages, footprint.official.packages)} |`,
      '',
      `Ours installs: ${footprint.ours.packageNames.join(', ')}. The emulator ships in the same package and needs nothing more.`,
      '',
    );
  }

  if (capacity) {
    push(
      '## 6. Emulator capacity',
      '',
      "A fresh emulator process per transport, loaded by our client (one client process, fleet mode). The emulator's CPU time comes from `/proc/<pid>/stat`. With two cores the client process takes one: the emulator's core utilisation says whether it, or the client, was the bottleneck; CPU ms per registration gives what one emulator core sustains. The `--data-dir` row keeps the registrations on disk: each assignment is appended to the journal before the device is answered (and fsynced in batches), so the difference to the first row is the cost of durability.",
      '',
      '| transport | registrations | concurrency | registrations / s | emulator CPU ms / registration | emulator core utilisation | registrations per emulator core second | latency median / p95 ms | failed |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const run of capacity) {
      const latency = summarize(run.latencyMs);
      push(
        `| ${run.transport === 'mqtt' ? 'MQTT over TLS' : 'MQTT over WebSocket over TLS'}${run.persistent ? ', `--data-dir` (journalled)' : ''} | ${run.registrations} | ${run.concurrency} | ${fixed(run.registrationsPerSecond, 0)} | ${fixed(run.emulatorCpuMsPerRegistration, 2)} | ${fixed(run.emulatorCoreUtilisation * 100, 0)}% | ${fixed(run.registrationsPerEmulatorCoreSecond, 0)} | ${fixed(latency.median)} / ${fixed(latency.p95)} | ${run.failures} |`,
      );
    }
    push('');
  }

  if (results.fleetTool) push(...renderFleetTool(results.fleetTool));

  if (cold) {
    push(
      '## Where the time goes (cold process profile)',
      '',
      'One extra cold run of each client under `node --cpu-prof --cpu-prof-interval 100` (100 µs sampling; not one of the measured runs), reduced to self time by origin and by function (`bench/profile.ts`). "Idle" is time spent waiting on the network (here, the emulator on loopback).',
      '',
      '### Ours (`dist/cli/main.cjs register`)',
      '',
      ...profileTable(cold.profiles.ours),
      '',
      '### Official SDK (`bench/workers/official-register.cjs`)',
      '',
      ...profileTable(cold.profiles.official),
      '',
    );
  }

  if (fleet) {
    push(
      '## Where the time goes (fleet client profile)',
      '',
      `One extra fleet run per client (${fleet.profiles.devices} devices, not one of the measured runs) under \`node --cpu-prof\` (1 ms sampling), reduced the same way. The figures are the client process only; "idle" is waiting on the emulator.`,
      '',
      '### Ours',
      '',
      ...profileTable(fleet.profiles.ours),
      '',
      '### Official SDK',
      '',
      ...profileTable(fleet.profiles.official),
      '',
    );
  }

  push(
    '## Reproduce',
    '',
    '```',
    'npm run bench                 # everything, about 3 to 5 minutes on 2 cores; rewrites this file',
    'npm run bench -- --quick      # seconds; small samples, written to bench/out/ (the test suite runs it)',
    'npm run bench -- --only cold,round-trips --out /tmp/bench.md',
    '```',
    '',
    'Needs GNU time at `/usr/bin/time` (peak RSS of child processes) and, for the footprint, the npm registry. Sources: `bench/run.ts` and one module per section under `bench/`.',
    '',
  );

  const panels = [];
  if (cold) {
    panels.push({
      title: 'Cold process (spawn to exit)',
      unit: 'wall time, ms',
      series: [
        { label: 'ours (CLI)', color: OURS_COLOR, values: cold.wallMs.ours },
        { label: 'official SDK', color: OFFICIAL_COLOR, values: cold.wallMs.official },
      ],
    });
  }
  if (warm) {
    panels.push({
      title: 'Warm registration latency',
      unit: 'ms per registration (one process)',
      series: [
        { label: 'ours', color: OURS_COLOR, values: warm.latencyMs.ours },
        { label: 'official SDK', color: OFFICIAL_COLOR, values: warm.latencyMs.official },
      ],
    });
  }
  if (fleet) {
    panels.push({
      title: `Fleet latency (concurrency ${fleet.compared[0]?.concurrency ?? 0})`,
      unit: 'ms per registration',
      series: [
        {
          label: 'ours',
          color: OURS_COLOR,
          values: fleet.compared.filter((run) => run.client === 'ours').flatMap((run) => run.latencyMs),
        },
        {
          label: 'official SDK',
          color: OFFICIAL_COLOR,
          values: fleet.compared.filter((run) => run.client === 'official').flatMap((run) => run.latencyMs),
        },
      ],
    });
  }
  const svg = distributionChartSvg(
    panels,
    `Share of registrations at or below a time (empirical CDF); MQTT over WebSocket, emulator on loopback; ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}`,
  );
  return { markdown: lines.join('\n'), svg };
}

/** Why each saved round trip is safe, or why it is opt-in. Prose, not figures: the figures are above. */
const ROUND_TRIP_NOTES = [
  '### Which round trips can be saved, and which are safe',
  '',
  'The physical minimum with one status poll, over MQTT over WebSocket: TCP 1 + TLS 1.3 1 + WebSocket upgrade 1 + one MQTT exchange 1 + the poll 1 = **5**; over MQTT on 8883 (no upgrade) **4**.',
  '',
  '- **TCP (1, unavoidable).** TCP Fast Open would carry the ClientHello in the SYN, but it needs a cookie from an earlier connection and server support, Node has no client API for it, and nothing says the DPS front end accepts it. Not used.',
  "- **TLS 1.3 (1).** A full TLS 1.3 handshake is one round trip, and the client's Finished travels with its first application bytes (RFC 8446 §2), so the WebSocket upgrade request leaves in the same flight. Both clients negotiate TLS 1.3 with the emulator. 0-RTT early data would save this round trip on a resumed session, but early data is replayable (RFC 8446 §8) and Node's TLS client does not send it: not used. Session resumption saves CPU (no certificate chain to verify), not a round trip. *Unknown for the real service:* if an endpoint negotiates TLS 1.2, the full handshake costs 2 round trips whatever the client does (TLS False Start is not offered by Node).",
  "- **WebSocket upgrade (1, unavoidable).** It cannot be merged with TLS (it is application data: it needs the handshake keys), and RFC 6455 §4.1 says the client MUST wait for the server's handshake response before sending any further data, so MQTT CONNECT cannot ride with the upgrade request. MQTT over TLS on 8883 does not pay this round trip.",
  '- **MQTT CONNECT → CONNACK (saved only with `pipeline: true`).** MQTT 3.1.1 §3.1.4 lets a client send further packets right after CONNECT without waiting for CONNACK, and a server that refuses the CONNECT MUST NOT process what follows it [MQTT-3.1.4-5], so a refused device leaks nothing and still sees its CONNACK return code. This is safe under the standard. *Unknown for the real service:* DPS is not a general broker and documents no behaviour for packets that arrive before CONNACK; a front end that drops them would leave the client waiting for a response that never comes (it then times out and retries, so a wrong guess costs time, not correctness).',
  "- **SUBSCRIBE → SUBACK before the request (saved only with `pipeline: true`).** A response is delivered only if the subscription to `$dps/registrations/res/#` is in place when the service publishes it. MQTT 3.1.1 lets the server send matching PUBLISH packets before SUBACK (§3.8.4), and a server that handles one connection's packets in order has the subscription before it reads the request; the standard does not, however, require the service to answer in that order, and DPS does not document it. Hence opt-in.",
  '- **The status poll (1, driven by the service).** The service answers the register request 202 with a retry-after (about 3 s on the real service, 0 here); the client cannot know the assignment before it asks. Asking earlier than retry-after would be throttled (429). Both clients honour retry-after.',
  '',
  'The default is therefore the conservative exchange (wait for CONNACK, then for SUBACK, then send the request), measured first in the table; `pipeline: true` (CLI: not exposed) reaches the physical minimum, and is what to turn on for a device on a slow link once it has been tried against the real service.',
];
