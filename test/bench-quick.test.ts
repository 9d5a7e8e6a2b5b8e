// `npm run bench -- --quick` must keep working: it runs end to end in a child process and writes a report
// with every section and numbers in it, so the benchmark cannot rot between full runs. It writes to
// bench/out/, never over the committed docs/benchmarks.md and its chart (issue 10, item 11).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { test } from 'node:test';

const SECTIONS = [
  '## Machine',
  '## Summary: ours / official against the targets',
  '## 1. Cold process',
  '## 2. Warm latency',
  '## 3. Fleet',
  '## 4. Round trips',
  '## 5. Footprint',
  '## 6. Emulator capacity',
  '## 7. Fleet tool (`dps-mqtt fleet`)',
  '## Where the time goes (cold process profile)',
  '## Where the time goes (fleet client profile)',
];

const COMMITTED = ['docs/benchmarks.md', 'docs/benchmarks-latency.svg'];

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function runQuickBench(): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('bench --quick writes a report with every section, numeric figures and the latency chart to bench/out/, leaving the committed report alone', async () => {
  const before = COMMITTED.map(sha256);
  const out = resolvePath('bench/out/benchmarks.md');
  const chart = resolvePath('bench/out/benchmarks-latency.svg');
  try {
    const { code, stderr } = await runQuickBench();
    assert.equal(code, 0, `bench --quick failed:\n${stderr}`);
    assert.deepEqual(
      COMMITTED.map(sha256),
      before,
      'bench --quick left docs/benchmarks.md and its chart unchanged',
    );
    assert.ok(stderr.includes(`wrote ${out} and ${chart}`), `bench --quick says where it wrote:\n${stderr}`);
    const report = readFileSync(out, 'utf8');
    for (const section of SECTIONS) assert.ok(report.includes(section), `missing section ${section}`);
    // Ratios in the summary, and every client's row with real numbers rather than n/a.
    assert.match(
      report,
      /\| cold process, wall time \(median\) \| \d+\.\d ms \| \d+\.\d ms \| \*\*\d+\.\d\d\*\* \|/,
    );
    assert.match(report, /\| ours \| \d+\.\d\d \| \d+\.\d\d \|/);
    assert.match(report, /\| devices per second \| \d+ \(\d+\) \| \d+ \(\d+\) \| \d+\.\d\d \|/);
    assert.match(report, /\| ours, mqtt-ws \(default\) \| \d+ \| 5 \|/);
    assert.match(report, /\| official SDK, MqttWs \| \d+ \| 5 \|/);
    assert.match(report, /\| size on disk, MB \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|/);
    assert.match(report, /\| MQTT over TLS \| \d+ \| \d+ \| \d+ \|/);
    assert.match(report, /\| 300 \| \d+ \| \d+\.\d\d \| \d+ \/ \d+ \/ \d+ \| \d+/, 'the fleet tool row');
    assert.doesNotMatch(report, /\bNaN\b/);
    assert.ok(existsSync(chart), 'the latency chart is written next to the report');
    assert.match(readFileSync(chart, 'utf8'), /^<svg [^>]*>[\s\S]*<path d="M [\d.]+ [\d.]+ H/);
  } finally {
    rmSync(out, { force: true });
    rmSync(chart, { force: true });
  }
});
