// Issue 6, emulator input: the emulator runs as a child process (as `dps-mqtt emulator` does) while this
// process attacks both listeners with random and mutated MQTT packets, oversized and truncated packets,
// wrong protocol levels, packets before CONNECT, CONNECT floods, slow clients that never finish TLS, the
// WebSocket upgrade or CONNECT, idle connections past keep-alive and hundreds (long mode: thousands) of
// concurrent connections. Meanwhile well-behaved devices register with register(): every one must succeed.
// The emulator's RSS is sampled from /proc. Default budget ~12 s; HARDENING_LONG=1 runs 60 s and 2,000
// concurrent connections. The figures are printed as a `# attack:` line for docs/reliability.md.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { createWebSocketStream, WebSocket } from 'ws';
import { register } from '../src/client/register.js';
import { DEMO_GROUP_KEY } from '../src/emulator/enrollments/config.js';
import type { EmulatorPki } from '../src/emulator/pki/pki.js';
import { deriveDeviceKey } from '../src/protocol/sas.js';
import { registerTopic } from '../src/protocol/topics.js';
import { publishPacket, sasConnectPacket, subscribePacket, testPki } from './helpers/emulator.js';

mqttPacket.writeToStream.cacheNumbers = false;

const LONG = process.env.HARDENING_LONG === '1';
const BUDGET_MS = LONG ? 60_000 : 12_000;
const CONCURRENT_CONNECTIONS = LONG ? 2000 : 300;
/** Short, so slow clients are cut quickly; the long mode's 2,000 handshakes need more on 2 cores. */
const CONNECT_TIMEOUT_MS = LONG ? 2000 : 500;
/** Time the emulator may take to close a slow client: its limit, plus a loaded 2-core machine's delay. */
const CLOSE_SLACK_MS = 2500;
/** A generous ceiling: the emulator idles at ~70 MB; a leak under this attack would pass it quickly. */
const MAX_PEAK_RSS_MB = LONG ? 600 : 450;
const EMULATOR_ENTRY = fileURLToPath(new URL('../src/emulator/cli-entry.ts', import.meta.url));
const ID_SCOPE = '0ne00000000';

interface Ready {
  mqttPort: number;
  wssPort: number;
}

const figures = {
  attackConnections: 0,
  inputsSent: 0,
  bytesSent: 0,
  slowClientsTimedOut: 0,
  slowestCloseMs: 0,
  concurrentConnections: 0,
  registrations: 0,
  registrationFailures: [] as string[],
  peakRssKb: 0,
  vmHwmKb: 0,
  baselineRssKb: 0,
  baselineFds: 0,
  fdsAfter: 0,
  crashes: 0,
};

function readStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : 0;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resolves with the milliseconds until the socket closed, or undefined if it was still open at `limitMs`. */
function closedWithin(stream: Duplex, limitMs: number): Promise<number | undefined> {
  const startedAt = performance.now();
  return new Promise((resolve) => {
    if (stream.destroyed) {
      resolve(0);
      return;
    }
    const guard = setTimeout(() => {
      stream.off('close', onClose);
      stream.destroy();
      resolve(undefined);
    }, limitMs);
    const onClose = (): void => {
      clearTimeout(guard);
      resolve(performance.now() - startedAt);
    };
    stream.once('close', onClose);
  });
}

describe('the emulator under attack', () => {
  let pki: EmulatorPki;
  let child: ChildProcess;
  let ready: Ready;
  let stderr = '';
  let stopping = false;

  before(async () => {
    pki = await testPki();
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        EMULATOR_ENTRY,
        '--mqtt-port',
        '0',
        '--wss-port',
        '0',
        '--retry-after',
        '0',
        '--connect-timeout',
        String(CONNECT_TIMEOUT_MS),
        '--pki-dir',
        dirname(pki.caPath),
        '--quiet',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 20_000) stderr += chunk.toString();
    });
    child.on('exit', () => {
      if (!stopping) figures.crashes += 1;
    });
    let stdout = '';
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      stdout += chunk.toString();
      if (stdout.includes('\n')) break;
    }
    ready = JSON.parse(stdout.split('\n')[0] ?? '{}') as Ready;
    assert.ok(ready.mqttPort > 0 && ready.wssPort > 0, `no ready line: ${stdout} ${stderr}`);
  });

  after(async () => {
    stopping = true;
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    console.log(
      `# attack: budget ${BUDGET_MS} ms, ${figures.attackConnections} attack connections, ${figures.inputsSent} hostile inputs (${figures.bytesSent} bytes), ` +
        `${figures.slowClientsTimedOut} slow clients timed out (slowest close ${Math.round(figures.slowestCloseMs)} ms), ` +
        `${figures.concurrentConnections} concurrent connections, ${figures.registrations} well-behaved registrations ` +
        `(${figures.registrationFailures.length} failed), emulator RSS baseline ${Math.round(figures.baselineRssKb / 1024)} MB, ` +
        `peak sampled ${Math.round(figures.peakRssKb / 1024)} MB, VmHWM ${Math.round(figures.vmHwmKb / 1024)} MB, ` +
        `fds ${figures.baselineFds} before / ${figures.fdsAfter} after, crashes ${figures.crashes}`,
    );
  });

  // --- ways in ---------------------------------------------------------------------------------

  const tlsOptions = (): tls.ConnectionOptions => ({
    host: '127.0.0.1',
    ca: pki.ca.certPem,
    servername: 'localhost',
  });

  async function openMqtt(): Promise<tls.TLSSocket> {
    const socket = tls.connect({ ...tlsOptions(), port: ready.mqttPort });
    socket.on('error', () => {});
    socket.resume(); // read and discard: a stream nobody reads never reports its close
    await once(socket, 'secureConnect');
    return socket;
  }

  async function openWss(): Promise<Duplex> {
    const webSocket = new WebSocket(
      `wss://127.0.0.1:${ready.wssPort}/$iothub/websocket`,
      ['mqtt'],
      tlsOptions(),
    );
    webSocket.on('error', () => {});
    await once(webSocket, 'open');
    const stream = createWebSocketStream(webSocket);
    stream.on('error', () => {});
    stream.resume();
    webSocket.once('close', () => stream.destroy());
    return stream;
  }

  async function openEither(index: number): Promise<Duplex> {
    figures.attackConnections += 1;
    return index % 2 === 0 ? openMqtt() : openWss();
  }

  function write(stream: Duplex, bytes: Buffer): void {
    figures.inputsSent += 1;
    figures.bytesSent += bytes.length;
    if (!stream.destroyed) stream.write(bytes);
  }

  const validConnect = (registrationId: string, keepalive = 60): Buffer =>
    mqttPacket.generate(
      sasConnectPacket({
        idScope: ID_SCOPE,
        registrationId,
        key: deriveDeviceKey(DEMO_GROUP_KEY, registrationId),
        keepalive,
      }),
    );

  // --- hostile inputs, generated by fast-check (seeded, so a failure can be replayed) ------------

  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
  const basePackets: Buffer[] = [
    validConnect('attack-base', 1),
    mqttPacket.generate(subscribePacket()),
    mqttPacket.generate(publishPacket(registerTopic('r1'), { registrationId: 'attack-base' })),
    mqttPacket.generate({ cmd: 'pingreq' }),
    mqttPacket.generate({
      ...sasConnectPacket({ idScope: ID_SCOPE, registrationId: 'v3', key: DEMO_GROUP_KEY }),
      protocolVersion: 3,
      protocolId: 'MQIsdp',
    }),
  ];
  const mutated = fc.oneof(
    fc
      .uint8Array({ minLength: 1, maxLength: 512 })
      .map((bytes) => ({ connectFirst: false, bytes: Buffer.from(bytes) })),
    fc
      .record({
        base: fc.constantFrom(...basePackets),
        flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        cut: fc.option(fc.nat()),
        tail: fc.uint8Array({ maxLength: 64 }),
        connectFirst: fc.boolean(),
      })
      .map(({ base, flips, cut, tail, connectFirst }) => {
        const bytes = Buffer.from(base);
        for (const [position, value] of flips) bytes[position % bytes.length] = value;
        const body = cut === null ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
        return { connectFirst, bytes: Buffer.concat([body, tail]) };
      }),
  );
  const inputs = fc.sample(mutated, { numRuns: 5000, seed });

  const attacks: Array<(index: number) => Promise<void>> = [
    // Random and mutated packets, before or after a valid CONNECT (keep-alive 1 s, so the session ends).
    async (index) => {
      const stream = await openEither(index);
      const input = inputs[index % inputs.length]!;
      if (input.connectFirst) write(stream, validConnect(`fuzz-${index % 50}`, 1));
      write(stream, input.bytes);
      await closedWithin(stream, 2500);
    },
    // Oversized: a remaining length far past the 64 KiB limit, then the start of the body.
    async (index) => {
      const stream = await openEither(index);
      write(stream, Buffer.concat([Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]), Buffer.alloc(1024, 0x61)]));
      assert.notEqual(
        await closedWithin(stream, 3000),
        undefined,
        'an oversized packet must close the connection',
      );
    },
    // Truncated CONNECT, then silence: the connect timeout closes it.
    async (index) => {
      const stream = await openEither(index);
      const connect = validConnect('truncated');
      write(stream, connect.subarray(0, connect.length - 5));
      const closedAfter = await closedWithin(stream, CONNECT_TIMEOUT_MS + CLOSE_SLACK_MS);
      assert.notEqual(closedAfter, undefined, 'a truncated CONNECT must time out');
    },
    // Wrong protocol levels: CONNACK 1 (unacceptable protocol version) or a close, never a session.
    async (index) => {
      const stream = await openEither(index);
      const packet = sasConnectPacket({ idScope: ID_SCOPE, registrationId: 'level', key: DEMO_GROUP_KEY });
      const level = [3, 5][index % 2] as 3 | 5;
      write(
        stream,
        mqttPacket.generate({
          ...packet,
          protocolVersion: level,
          protocolId: level === 3 ? 'MQIsdp' : 'MQTT',
        } as Packet),
      );
      assert.notEqual(await closedWithin(stream, 3000), undefined);
    },
    // Packets before CONNECT.
    async (index) => {
      const stream = await openEither(index);
      const first = [
        mqttPacket.generate(subscribePacket()),
        mqttPacket.generate(publishPacket(registerTopic('early'), {})),
        mqttPacket.generate({ cmd: 'pingreq' }),
        mqttPacket.generate({ cmd: 'disconnect' }),
      ][index % 4]!;
      write(stream, first);
      assert.notEqual(await closedWithin(stream, 3000), undefined, 'a packet before CONNECT must close');
    },
    // CONNECT floods: a burst of CONNECTs (bad key, then more) on one connection.
    async (index) => {
      const stream = await openEither(index);
      const bad = mqttPacket.generate(
        sasConnectPacket({ idScope: ID_SCOPE, registrationId: `flood-${index % 20}`, key: DEMO_GROUP_KEY }),
      );
      for (let count = 0; count < 50; count++)
        write(stream, index % 3 === 0 ? validConnect('flood-ok') : bad);
      assert.notEqual(await closedWithin(stream, 3000), undefined);
    },
    // Slow clients: TCP without a ClientHello, TLS without CONNECT or without the WebSocket upgrade, and a
    // client trickling a CONNECT one byte at a time: all closed by the emulator within its connect timeout.
    async (index) => {
      const kind = index % 4;
      let stream: Duplex;
      figures.attackConnections += 1;
      if (kind === 0) {
        const socket = net.connect({
          host: '127.0.0.1',
          port: index % 8 === 0 ? ready.mqttPort : ready.wssPort,
        });
        socket.on('error', () => {});
        socket.resume();
        await once(socket, 'connect');
        stream = socket;
      } else if (kind === 1) {
        stream = await openMqtt();
      } else {
        const socket = tls.connect({ ...tlsOptions(), port: kind === 2 ? ready.wssPort : ready.mqttPort });
        socket.on('error', () => {});
        socket.resume();
        await once(socket, 'secureConnect');
        stream = socket;
        if (kind === 3) {
          const connect = validConnect('trickle');
          let position = 0;
          const trickle = setInterval(() => {
            if (position >= connect.length - 1 || socket.destroyed) clearInterval(trickle);
            else write(socket, connect.subarray(position, ++position));
          }, 50);
          socket.once('close', () => clearInterval(trickle));
        }
      }
      const closedAfter = await closedWithin(stream, CONNECT_TIMEOUT_MS * 2 + CLOSE_SLACK_MS);
      assert.notEqual(closedAfter, undefined, `slow client kind ${kind} was not timed out`);
      figures.slowClientsTimedOut += 1;
      figures.slowestCloseMs = Math.max(figures.slowestCloseMs, closedAfter ?? 0);
    },
    // Idle past keep-alive: CONNECT with keep-alive 1 s, then silence; closed after 1.5 s.
    async (index) => {
      const stream = await openEither(index);
      write(stream, validConnect(`idle-${index % 10}`, 1));
      const closedAfter = await closedWithin(stream, 1500 + CLOSE_SLACK_MS);
      assert.notEqual(
        closedAfter,
        undefined,
        'an idle connection must be closed after 1.5 keep-alive intervals',
      );
    },
  ];

  test('the emulator stays up, keeps serving well-behaved devices and bounds its memory', async () => {
    const pid = child.pid!;
    figures.baselineRssKb = readStatusKb(pid, 'VmRSS');
    figures.baselineFds = openFds(pid);
    const sampler = setInterval(() => {
      if (child.exitCode !== null) return;
      figures.peakRssKb = Math.max(figures.peakRssKb, readStatusKb(pid, 'VmRSS'));
    }, 100);
    const endAt = performance.now() + BUDGET_MS;
    try {
      // Concurrent connections: held open (authenticated, keep-alive 0) through the attack.
      const held: Duplex[] = [];
      const opening: Array<Promise<void>> = [];
      for (let index = 0; index < CONCURRENT_CONNECTIONS; index++) {
        opening.push(
          (async () => {
            const stream = index % 2 === 0 ? await openMqtt() : await openWss();
            stream.write(validConnect(`held-${index % 100}`, 0));
            held.push(stream);
          })(),
        );
        if (opening.length >= 25) await Promise.all(opening.splice(0));
      }
      await Promise.all(opening);
      figures.concurrentConnections = held.length;

      const attacker = async (worker: number): Promise<void> => {
        for (let round = 0; performance.now() < endAt; round++) {
          const index = round * 16 + worker;
          await attacks[(round + worker) % attacks.length]!(index);
        }
      };
      const wellBehaved = async (worker: number): Promise<void> => {
        for (let round = 0; performance.now() < endAt; round++) {
          const registrationId = `good-${worker}-${round % 5}`;
          const transport = (round + worker) % 2 === 0 ? 'mqtt' : 'mqtt-ws';
          try {
            const result = await register({
              idScope: ID_SCOPE,
              registrationId,
              security: { groupKey: DEMO_GROUP_KEY },
              endpoint: `127.0.0.1:${transport === 'mqtt' ? ready.mqttPort : ready.wssPort}`,
              transport,
              trustedCa: pki.ca.certPem,
              proxy: false,
              timeoutMs: 15_000,
            });
            assert.equal(result.deviceId, registrationId);
            figures.registrations += 1;
          } catch (error) {
            figures.registrationFailures.push(`${transport}: ${String(error)}`);
          }
        }
      };
      await Promise.all([
        ...Array.from({ length: 8 }, (_, worker) => attacker(worker)),
        ...Array.from({ length: 2 }, (_, worker) => wellBehaved(worker)),
      ]);
      for (const stream of held) stream.destroy();
    } finally {
      clearInterval(sampler);
    }
    figures.vmHwmKb = readStatusKb(pid, 'VmHWM');
    assert.equal(child.exitCode, null, `the emulator exited: ${stderr}`);
    assert.ok(figures.registrations > 0, 'no well-behaved registration completed');
    assert.deepEqual(figures.registrationFailures, [], 'every well-behaved registration must succeed');
    assert.ok(
      figures.peakRssKb / 1024 < MAX_PEAK_RSS_MB,
      `peak RSS ${Math.round(figures.peakRssKb / 1024)} MB exceeds ${MAX_PEAK_RSS_MB} MB`,
    );
    // Every attack connection is released: the emulator's descriptors return to (about) the baseline.
    const deadline = performance.now() + 10_000;
    for (;;) {
      figures.fdsAfter = openFds(pid);
      if (figures.fdsAfter <= figures.baselineFds + 5 || performance.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(
      figures.fdsAfter <= figures.baselineFds + 5,
      `fds: ${figures.baselineFds} -> ${figures.fdsAfter}`,
    );
  });
});
