// Issue 6, client parsing end to end: register() against a hostile server that completes TLS (or the
// WebSocket upgrade), CONNACK and SUBACK properly, then answers the first request with fast-check-generated
// response topics and bodies, or raw garbage bytes. Every run must end in a RegistrationResult or a typed
// DpsError within the deadline, and leave no connection open. FUZZ_RUNS raises the runs (default 80 each).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { register } from '../src/client/register.js';
import type { ProvisioningClientOptions, RegistrationResult } from '../src/client/types.js';
import type { EmulatorPki } from '../src/emulator/pki/pki.js';
import { DpsError } from '../src/protocol/errors.js';
import { MAX_RESPONSE_BYTES } from '../src/protocol/limits.js';
import { REGISTRATION_STATUSES } from '../src/protocol/responses.js';
import { testPki } from './helpers/emulator.js';

mqttPacket.writeToStream.cacheNumbers = false;

// Capped so the long mode stays inside the runner's 120 s per file (~75 ms per registration).
const RUNS = Math.min(500, Math.max(1, Math.round(Number(process.env.FUZZ_RUNS ?? 2000) / 25)));
const TIMEOUT_MS = 1500;
/** The deadline plus the time a loaded CI machine may need to tear down. */
const SETTLE_MS = TIMEOUT_MS + 1500;

/** What the hostile server does with the first request of a run; later requests get a valid answer. */
type Hostility =
  | { kind: 'response'; topic: (requestId: string) => string; body: Buffer }
  | { kind: 'bytes'; bytes: Buffer }
  | { kind: 'close' };

const statusText = fc.oneof(
  fc.constantFrom('200', '202', '400', '401', '404', '429', '500', '503', '099', '999'),
  fc.string({ maxLength: 4 }),
);
const retryAfterText = fc.oneof(
  fc.constantFrom('0', '0.01', '-1', '1e9', 'NaN', '86400', '', 'x'),
  fc.string({ maxLength: 8 }),
);
const assignedBody = (registrationId: string) => ({
  operationId: '4.fuzz.op',
  status: 'assigned',
  registrationState: {
    registrationId,
    assignedHub: 'hub.example.net',
    deviceId: registrationId,
    status: 'assigned',
  },
});
const bodyArbitrary: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.jsonValue({ maxDepth: 4 }).map((value) => Buffer.from(JSON.stringify(value))),
  fc
    .record({
      operationId: fc.option(fc.oneof(fc.string(), fc.jsonValue())),
      status: fc.oneof(fc.constantFrom(...REGISTRATION_STATUSES), fc.string()),
      registrationState: fc.option(
        fc.record(
          {
            assignedHub: fc.oneof(fc.string(), fc.jsonValue()),
            deviceId: fc.oneof(fc.string(), fc.jsonValue()),
            errorCode: fc.jsonValue(),
            payload: fc.jsonValue(),
          },
          { requiredKeys: [] },
        ),
      ),
    })
    .map((body) => Buffer.from(JSON.stringify(body))),
  fc.constantFrom(
    Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`),
    Buffer.from(JSON.stringify({ status: 'assigned', pad: 'x'.repeat(MAX_RESPONSE_BYTES) })),
  ),
);
const hostility: fc.Arbitrary<Hostility> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        status: statusText,
        rid: fc.constantFrom('same', 'other', 'missing'),
        retryAfter: fc.option(retryAfterText),
        extra: fc.oneof(fc.constant(''), fc.string({ maxLength: 20 })),
        body: bodyArbitrary,
      })
      .map(
        ({ status, rid, retryAfter, extra, body }): Hostility => ({
          kind: 'response',
          topic: (requestId) =>
            `$dps/registrations/res/${status}/?${rid === 'missing' ? '' : `$rid=${rid === 'same' ? requestId : 'not-yours'}`}${retryAfter === null ? '' : `&retry-after=${retryAfter}`}${extra}`,
          body,
        }),
      ),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ topic: fc.string({ unit: 'binary', minLength: 1 }), body: bodyArbitrary })
      .map(({ topic, body }): Hostility => ({ kind: 'response', topic: () => topic, body })),
  },
  {
    weight: 2,
    arbitrary: fc
      .uint8Array({ minLength: 1, maxLength: 100 })
      .map((bytes): Hostility => ({ kind: 'bytes', bytes: Buffer.from(bytes) })),
  },
  { weight: 1, arbitrary: fc.constant<Hostility>({ kind: 'close' }) },
);

/** Plays a DPS that behaves until the first request, then does what the current run says. */
class HostileDps {
  hostility: Hostility = { kind: 'close' };
  private hostileSent = false;
  readonly openSockets = new Set<Socket>();

  startRun(hostility: Hostility): void {
    this.hostility = hostility;
    this.hostileSent = false;
  }

  track(server: Server): void {
    server.on('connection', (socket: Socket) => {
      this.openSockets.add(socket);
      socket.once('close', () => this.openSockets.delete(socket));
    });
  }

  serve(stream: Duplex): void {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const send = (packet: Packet): void => {
      if (!stream.destroyed) stream.write(mqttPacket.generate(packet));
    };
    stream.on('error', () => {});
    stream.on('data', (chunk: Buffer) => parser.parse(chunk));
    parser.on('error', () => stream.destroy());
    parser.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connect') send({ cmd: 'connack', returnCode: 0, sessionPresent: false });
      else if (packet.cmd === 'subscribe')
        send({ cmd: 'suback', messageId: packet.messageId ?? 1, granted: [1] });
      else if (packet.cmd === 'pingreq') send({ cmd: 'pingresp' });
      else if (packet.cmd === 'publish') {
        if (packet.qos === 1) send({ cmd: 'puback', messageId: packet.messageId ?? 1 });
        const requestId = new URLSearchParams(packet.topic.split('?')[1] ?? '').get('$rid') ?? '';
        const registrationId = 'fuzz-device';
        const valid = (): void =>
          send({
            cmd: 'publish',
            topic: `$dps/registrations/res/200/?$rid=${requestId}`,
            payload: Buffer.from(JSON.stringify(assignedBody(registrationId))),
            qos: 0,
            retain: false,
            dup: false,
          });
        if (this.hostileSent) {
          valid();
          return;
        }
        this.hostileSent = true;
        const hostility = this.hostility;
        if (hostility.kind === 'close') stream.destroy();
        else if (hostility.kind === 'bytes') stream.write(hostility.bytes);
        else {
          let bytes: Buffer;
          try {
            bytes = mqttPacket.generate({
              cmd: 'publish',
              topic: hostility.topic(requestId),
              payload: hostility.body,
              qos: 1,
              messageId: 7,
              retain: false,
              dup: false,
            });
          } catch {
            bytes = Buffer.from([0x30, 0x00]); // mqtt-packet refused the topic: a zero-length PUBLISH instead
          }
          stream.write(bytes);
          // A foreign or ignored answer must not leave the client waiting for its deadline every run.
          valid();
        }
      }
    });
  }
}

function clientOptions(
  pki: EmulatorPki,
  port: number,
  transport: 'mqtt' | 'mqtt-ws',
): ProvisioningClientOptions {
  return {
    idScope: '0ne00000000',
    registrationId: 'fuzz-device',
    security: { symmetricKey: Buffer.from('hostile-server-fuzz-key').toString('base64') },
    endpoint: `127.0.0.1:${port}`,
    transport,
    trustedCa: pki.ca.certPem,
    proxy: false,
    timeoutMs: TIMEOUT_MS,
    retry: { initialDelayMs: 10, maxDelayMs: 50 },
  };
}

/** Waits (bounded) until the server sees every client connection closed. */
async function allClosed(dps: HostileDps): Promise<boolean> {
  const deadline = performance.now() + 2000;
  while (dps.openSockets.size > 0 && performance.now() < deadline) {
    await Promise.race([...dps.openSockets].map((socket) => once(socket, 'close')));
  }
  return dps.openSockets.size === 0;
}

const figures = { runs: 0, successes: 0, typedErrors: 0, codes: new Map<string, number>() };

describe('register() against a hostile DPS', () => {
  let pki: EmulatorPki;
  const dps = new HostileDps();
  let mqttPort = 0;
  let wssPort = 0;
  const servers: Server[] = [];

  before(async () => {
    pki = await testPki();
    const tlsOptions = { cert: pki.server.certPem, key: pki.server.keyPem, minVersion: 'TLSv1.2' as const };
    const mqttServer = createTlsServer(tlsOptions, (socket) => dps.serve(socket));
    const httpsServer = createHttpsServer(tlsOptions);
    const webSockets = new WebSocketServer({ server: httpsServer });
    webSockets.on('connection', (webSocket) => dps.serve(createWebSocketStream(webSocket)));
    for (const server of [mqttServer, httpsServer]) {
      dps.track(server);
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    }
    mqttPort = (mqttServer.address() as AddressInfo).port;
    wssPort = (httpsServer.address() as AddressInfo).port;
  });

  after(async () => {
    for (const socket of dps.openSockets) socket.destroy();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    const codes = [...figures.codes].map(([code, count]) => `${code} ${count}`).join(', ');
    console.log(
      `# hostile DPS: ${figures.runs} registrations, ${figures.successes} succeeded, ${figures.typedErrors} typed errors (${codes}), 0 other outcomes`,
    );
  });

  for (const transport of ['mqtt', 'mqtt-ws'] as const) {
    test(`${transport}: every hostile answer ends in a result or a typed DpsError within the deadline, with no connection left open`, async () => {
      await fc.assert(
        fc.asyncProperty(hostility, async (scenario) => {
          dps.startRun(scenario);
          const startedAt = performance.now();
          let outcome: RegistrationResult | unknown;
          try {
            outcome = await register(
              clientOptions(pki, transport === 'mqtt' ? mqttPort : wssPort, transport),
            );
          } catch (error) {
            outcome = error;
          }
          const elapsedMs = performance.now() - startedAt;
          figures.runs += 1;
          assert.ok(elapsedMs < SETTLE_MS, `took ${Math.round(elapsedMs)} ms`);
          if (outcome instanceof Error) {
            assert.ok(outcome instanceof DpsError, `not a DpsError: ${String(outcome)}`);
            figures.typedErrors += 1;
            figures.codes.set(outcome.code, (figures.codes.get(outcome.code) ?? 0) + 1);
          } else {
            const result = outcome as RegistrationResult;
            assert.ok(result.assignedHub.length > 0 && result.deviceId.length > 0);
            figures.successes += 1;
          }
          assert.ok(await allClosed(dps), 'the client left a connection open');
        }),
        { numRuns: RUNS },
      );
    });
  }
});
