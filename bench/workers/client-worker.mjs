// A client process for the warm and fleet benchmarks: registers devices with our client (compiled, from
// dist/), the official SDK, or both in turn, and prints one JSON line of measurements. Plain JavaScript
// run by plain `node`, so neither the figures nor the peak RSS include a TypeScript loader.
// Usage: node client-worker.mjs '<json job>' (the job's shape: bench/worker-job.ts)
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const job = JSON.parse(process.argv[2] ?? '{}');
const caPem = readFileSync(job.caPath, 'utf8');
const require = createRequire(import.meta.url);

const deviceKey = (registrationId) =>
  createHmac('sha256', Buffer.from(job.groupKey, 'base64')).update(registrationId).digest('base64');

/** Each client is loaded only when the job uses it, so a one-client process carries no other code. */
async function loadOurs() {
  const { register } = await import(new URL('../../dist/index.js', import.meta.url).href);
  return (registrationId) =>
    register({
      idScope: job.idScope,
      registrationId,
      security: { symmetricKey: deviceKey(registrationId) },
      endpoint: `localhost:${job.transport === 'mqtt' ? job.mqttPort : job.wssPort}`,
      transport: job.transport,
      trustedCa: caPem,
      ...(job.pipeline ? { pipeline: true } : {}),
    });
}

function loadOfficial() {
  const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
  const { Mqtt, MqttWs } = require('azure-iot-provisioning-device-mqtt');
  const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
  const { MqttBase } = require('azure-iot-mqtt-base');
  // MqttWs always dials port 443; only its URI changes, to keep the emulator's ephemeral port.
  class MqttWsOnAnyPort extends MqttWs {
    _getConnectionUri(request) {
      return `wss://${request.provisioningHost}/$iothub/websocket`;
    }
  }
  return (registrationId) => {
    const base = new MqttBase();
    base.setOptions({ ca: caPem });
    const mqtt = job.transport === 'mqtt';
    const client = ProvisioningDeviceClient.create(
      `localhost:${mqtt ? job.mqttPort : job.wssPort}`,
      job.idScope,
      mqtt ? new Mqtt(base) : new MqttWsOnAnyPort(base),
      new SymmetricKeySecurityClient(registrationId, deviceKey(registrationId)),
    );
    return client.register();
  };
}

const clients = {};
for (const name of job.clients) clients[name] = name === 'ours' ? await loadOurs() : loadOfficial();

async function timed(name, registrationId) {
  const startedAt = performance.now();
  const result = await clients[name](registrationId);
  if (result?.status !== 'assigned') throw new Error(`${name}: ${registrationId} ended ${result?.status}`);
  return performance.now() - startedAt;
}

// Warm-up: the first registrations pay for loading code and JIT; they are not measured.
for (let index = 0; index < (job.warmup ?? 0); index += 1) {
  for (const name of job.clients) await timed(name, `${job.prefix}-${name}-warmup-${index}`);
}

const latenciesMs = Object.fromEntries(job.clients.map((name) => [name, []]));
const cpuBefore = process.cpuUsage();
const startedAt = performance.now();
let failures = 0;
let firstError;
if (job.mode === 'sequential') {
  // Interleaved run by run: ours, official, ours, official...
  for (let index = 0; index < job.count; index += 1) {
    for (const name of job.clients)
      latenciesMs[name].push(await timed(name, `${job.prefix}-${name}-${index}`));
  }
} else {
  // A fleet: `concurrency` registrations in flight at any time until `count` are done.
  const [name] = job.clients;
  let next = 0;
  const lane = async () => {
    while (next < job.count) {
      const index = next;
      next += 1;
      try {
        latenciesMs[name].push(await timed(name, `${job.prefix}-${name}-${index}`));
      } catch (error) {
        failures += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.concurrency, job.count) }, lane));
}
const wallMs = performance.now() - startedAt;
const cpu = process.cpuUsage(cpuBefore);
process.stdout.write(
  `${JSON.stringify({
    latenciesMs,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxRssKb: process.resourceUsage().maxRSS,
    failures,
    firstError,
  })}\n`,
);
// The official SDK may keep timers alive after its last registration; the figures are out.
process.exit(0);
