// Issue 15: `dps-mqtt fleet`. The results file is complete after Ctrl+C (a child process, SIGINT while
// devices are in flight): one whole JSON line per started device, the summary printed, exit 130; a second
// Ctrl+C aborts the devices in flight, which are reported. A progress line on a terminal, nothing on a
// pipe; --include-keys makes the file owner-only; bad flags are usage errors naming the flag.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runFleet } from '../src/cli/commands/fleet.js';
import type { CliIo } from '../src/cli/output.js';
import { DEMO_GROUP_KEY } from '../src/emulator/index.js';
import type { FleetDeviceResult } from '../src/fleet/types.js';
import { deriveDeviceKey } from '../src/protocol/sas.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');

function fakeIo(options: { tty: boolean }): CliIo & { out: () => string; err: () => string } {
  let stdout = '';
  let stderr = '';
  return {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    stderrIsTTY: options.tty,
    env: {},
    signals: { on: () => process, once: () => process, off: () => process } as unknown as CliIo['signals'],
    out: () => stdout,
    err: () => stderr,
  };
}

function readResults(path: string): FleetDeviceResult[] {
  const text = readFileSync(path, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'the file ends with a whole line');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as FleetDeviceResult);
}

describe('dps-mqtt fleet', () => {
  let emulator: TestEmulator;
  let requests = 0;
  let onRequest: (() => void) | undefined;
  let dir: { path: string; remove(): Promise<void> };
  before(async () => {
    dir = await temporaryDirectory('dps-mqtt-fleet-cli-');
    emulator = await startTestEmulator({
      // Every answer held back, so devices are in flight when the signal comes.
      faults: { responseDelayMs: 150 },
      logger: (entry) => {
        if (entry.event !== 'request') return;
        requests += 1;
        onRequest?.();
      },
    });
  });
  after(async () => {
    await emulator.close();
    await dir.remove();
  });

  const connection = (): string[] => [
    '--endpoint',
    `127.0.0.1:${emulator.wssPort}`,
    '--ca',
    emulator.pki.caPath,
    '--id-scope',
    emulator.idScope,
    '--group-key',
    DEMO_GROUP_KEY,
  ];

  /** Runs the CLI in a child; sends SIGINT (`signals`: once or twice) once `afterRequests` requests reached the emulator. */
  async function interruptedRun(out: string, signals: number, afterRequests: number) {
    requests = 0;
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        CLI,
        'fleet',
        ...connection(),
        '--count',
        '2000',
        '--prefix',
        `sigint-${signals}-`,
        '--concurrency',
        '10',
        '--workers',
        '0',
        '--out',
        out,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const exited = once(child, 'exit');
    await new Promise<void>((resolve) => {
      onRequest = () => {
        if (requests < afterRequests) return;
        onRequest = undefined;
        resolve();
      };
    });
    child.kill('SIGINT');
    if (signals === 2) {
      // Signals of one kind coalesce: the second is sent once the first has been seen.
      while (!stderr.includes('interrupted: starting no more devices')) await once(child.stderr, 'data');
      child.kill('SIGINT');
    }
    const [code] = (await exited) as [number | null];
    return { code, stdout, stderr };
  }

  test('Ctrl+C: no new device starts, those in flight finish, the results file holds one whole line per started device, the summary is printed, exit 130', async () => {
    const out = join(dir.path, 'sigint.jsonl');
    const { code, stdout, stderr } = await interruptedRun(out, 1, 30);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted: starting no more devices/);
    const results = readResults(out);
    const summaryLine = /(\d+) of 2000 devices assigned, (\d+) failed, (\d+) not started/.exec(stdout);
    assert.ok(summaryLine, stdout);
    assert.equal(
      results.length,
      Number(summaryLine[1]) + Number(summaryLine[2]),
      'a line per started device',
    );
    assert.equal(Number(summaryLine[3]), 2000 - results.length);
    assert.ok(results.length >= 10 && results.length < 2000);
    assert.ok(
      results.every((result) => result.status === 'assigned'),
      'those in flight finished',
    );
    assert.equal(new Set(results.map((result) => result.index)).size, results.length, 'none twice');
    assert.match(stdout, /results: +.*sigint\.jsonl \(\d+ lines\)/);
  });

  test('a second Ctrl+C aborts the devices in flight: they are in the file as ERR_ABORTED, and the file is whole', async () => {
    const out = join(dir.path, 'sigint-twice.jsonl');
    const { code, stdout, stderr } = await interruptedRun(out, 2, 30);
    assert.equal(code, 130, stderr);
    const results = readResults(out);
    assert.ok(results.length >= 10, `${results.length} lines`);
    const aborted = results.filter(
      (result) => result.status === 'failed' && result.error.code === 'ERR_ABORTED',
    );
    assert.ok(aborted.length > 0, 'in-flight devices were aborted and reported');
    assert.match(stdout, /Failures by phase:\n +\d+ {2}\w+: ERR_ABORTED/);
  });

  test('on a terminal: a progress line (done, failed, rate, p50/p95, ETA); on a pipe: none; the summary either way', async () => {
    const tty = fakeIo({ tty: true });
    const args = [
      ...connection(),
      '--count',
      '30',
      '--prefix',
      'progress-',
      '--workers',
      '0',
      '--concurrency',
      '10',
    ];
    assert.equal(await runFleet(args, tty), 0, tty.err());
    assert.ok(tty.err().includes('\r\x1b[K30/30 done, 0 failed, '), 'the line is rewritten in place');
    assert.match(tty.err(), /30\/30 done, 0 failed, \d+\/s, p50 \d+ ms, p95 \d+ ms, ETA /);
    assert.match(tty.out(), /^30 of 30 devices assigned, 0 failed in /);
    assert.match(tty.out(), /latency: +p50 \d+ ms, p95 \d+ ms, p99 \d+ ms, max \d+ ms/);

    const pipe = fakeIo({ tty: false });
    assert.equal(await runFleet([...args, '--json'], pipe), 0);
    assert.equal(pipe.err(), '');
    const summary = JSON.parse(pipe.out());
    assert.equal(summary.assigned, 30);
    assert.equal(typeof summary.client.cpuMsPerDevice, 'number');
    assert.equal(typeof summary.latencyMs.p95, 'number');
  });

  test('--include-keys puts each device key in the results file, created 0600; without it no key is written', async () => {
    const withKeys = join(dir.path, 'keys.jsonl');
    const io = fakeIo({ tty: false });
    const args = [...connection(), '--count', '5', '--prefix', 'keys-', '--workers', '0'];
    assert.equal(await runFleet([...args, '--out', withKeys, '--include-keys'], io), 0, io.err());
    assert.equal(statSync(withKeys).mode & 0o777, 0o600);
    assert.ok(readResults(withKeys).every((result) => typeof result.deviceKey === 'string'));

    const withoutKeys = join(dir.path, 'no-keys.jsonl');
    assert.equal(await runFleet([...args, '--out', withoutKeys], fakeIo({ tty: false })), 0);
    const text = readFileSync(withoutKeys, 'utf8');
    assert.doesNotMatch(text, /deviceKey|privateKey/);
    assert.ok(!text.includes(DEMO_GROUP_KEY));
  });

  test('--devices FILE: a CSV list, each device with its own key or the group key, all registered', async () => {
    const csv = join(dir.path, 'devices.csv');
    const ownKey = deriveDeviceKey(DEMO_GROUP_KEY, 'listed-1');
    writeFileSync(csv, `registrationId,symmetricKey\nlisted-1,${ownKey}\nlisted-2,\nlisted-3,\n`);
    const out = join(dir.path, 'listed.jsonl');
    const io = fakeIo({ tty: false });
    assert.equal(
      await runFleet([...connection(), '--devices', csv, '--workers', '0', '--out', out], io),
      0,
      io.err(),
    );
    const results = readResults(out);
    assert.deepEqual(results.map((result) => result.registrationId).sort(), [
      'listed-1',
      'listed-2',
      'listed-3',
    ]);
    assert.ok(results.every((result) => result.status === 'assigned'));
  });

  test('a devices file or a group CA that cannot be used is bad input: exit 2, no results file', async () => {
    const csv = join(dir.path, 'twice.csv');
    writeFileSync(csv, 'registrationId\ndev-1\ndev-1\n');
    const out = join(dir.path, 'never.jsonl');
    const io = fakeIo({ tty: false });
    assert.equal(await runFleet([...connection(), '--devices', csv, '--out', out], io), 2);
    assert.match(io.err(), /registration id "dev-1" appears twice/);
    const wrongKey = join(dir.path, 'other.key');
    writeFileSync(wrongKey, emulator.pki.server.keyPem);
    const certificateIo = fakeIo({ tty: false });
    const args = [
      '--endpoint',
      `127.0.0.1:${emulator.mqttPort}`,
      '--id-scope',
      emulator.idScope,
      '--count',
      '2',
    ];
    const caArgs = [
      '--issue-certs',
      '--group-ca-cert',
      emulator.pki.caPath,
      '--group-ca-key',
      wrongKey,
      '--out',
      out,
    ];
    assert.equal(await runFleet([...args, ...caArgs], certificateIo), 2);
    assert.match(
      certificateIo.err(),
      /--group-ca-key: the group CA private key does not belong to the group CA certificate/,
    );
    assert.ok(!existsSync(out), 'no results file');
    assert.ok(!certificateIo.err().includes('PRIVATE KEY'));
  });

  test('usage errors name the flag and exit 2 before anything starts', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--id-scope', emulator.idScope, '--count', '3'], /--count needs --group-key/],
      [[...connection(), '--count', '3', '--shard', '4/4'], /--shard: shard "4\/4" is invalid/],
      [[...connection(), '--count', '3', '--rate', 'fast'], /--rate must be registrations per second/],
      [[...connection(), '--count', '3', '--include-keys'], /--include-keys needs --out FILE/],
      [
        [...connection(), '--count', '3', '--issue-certs'],
        /--group-key and --issue-certs cannot be used together/,
      ],
      [
        [...connection(), '--count', '3', '--devices', 'x.csv'],
        /--count and --devices cannot be used together/,
      ],
      [[...connection(), '--count', '3', '--concurency', '3'], /unknown option --concurency/],
    ];
    for (const [args, expected] of cases) {
      const io = fakeIo({ tty: false });
      assert.equal(await runFleet(args, io), 2, args.join(' '));
      assert.match(io.err(), expected);
      assert.ok(!io.err().includes(DEMO_GROUP_KEY), 'the group key is never printed');
    }
  });
});
