// Issue 15: registerFleet() against the emulator. A few hundred devices with throttling and dropped
// connections on: every device ends assigned or with a reported error, none lost, none counted twice,
// and a 429 is back-pressure, not a failure. --rate holds within 10%, measured from the results' own
// start times over the run. --issue-certs devices register with certificates made for the group CA.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DEMO_GROUP_KEY } from '../src/emulator/index.js';
import type { FleetDeviceResult } from '../src/fleet/types.js';
import { registerFleet } from '../src/index.js';
import { startTestEmulator, type TestEmulator } from './helpers/emulator.js';

async function collect(run: AsyncIterable<FleetDeviceResult>): Promise<FleetDeviceResult[]> {
  const results: FleetDeviceResult[] = [];
  for await (const result of run) results.push(result);
  return results;
}

describe('registerFleet() on the emulator', () => {
  let emulator: TestEmulator;
  before(async () => {
    emulator = await startTestEmulator({
      // 1 request in 8 answered 429; connections dropped before CONNACK, before and after requests.
      throttle: { fraction: 0.125 },
      faults: {
        dropBeforeConnack: [3, 40, 41, 200],
        dropBeforeRequest: [5, 77, 300, 301],
        dropAfterResponse: [9, 150, 420],
        dropAfterSuback: [12, 250],
      },
    });
  });
  after(() => emulator.close());

  test('300 devices on 2 worker threads with throttling and drops: each ends exactly once, assigned or with its error; 429 slows the run and fails no device', async () => {
    const count = 300;
    const run = registerFleet({
      idScope: emulator.idScope,
      endpoint: `127.0.0.1:${emulator.wssPort}`,
      trustedCa: emulator.pki.caPath,
      devices: { count, prefix: 'fleet-drops-', groupKey: DEMO_GROUP_KEY },
      concurrency: 40,
      workers: 2,
      timeoutMs: 30_000,
    });
    const results = await collect(run);
    const indices = results.map((result) => result.index).sort((a, b) => a - b);
    assert.deepEqual(
      indices,
      Array.from({ length: count }, (_, index) => index),
      'every device once',
    );
    assert.equal(new Set(results.map((result) => result.registrationId)).size, count);
    for (const result of results) {
      assert.equal(result.registrationId, `fleet-drops-${result.index}`);
      if (result.status === 'failed') {
        assert.ok(result.error.code.startsWith('ERR_'), JSON.stringify(result.error));
        assert.notEqual(result.error.statusCode, 429, 'a 429 is back-pressure, not a failure');
      } else {
        assert.equal(result.status, 'assigned');
        assert.equal(result.deviceId, result.registrationId);
        assert.equal(result.deviceKey, undefined, 'no key without includeKeys');
      }
    }
    const summary = run.summary();
    assert.equal(summary.assigned + summary.failed, count);
    assert.equal(summary.started, count);
    assert.equal(summary.notStarted, 0);
    assert.ok(summary.throttled > 0, 'the emulator throttled some requests');
    assert.equal(summary.assigned, count, JSON.stringify(summary.failures));
    assert.ok(
      results.some((result) => result.status === 'assigned' && result.retries > 0),
      'drops were retried',
    );
  });
});

describe('registerFleet() pace and certificates', () => {
  let emulator: TestEmulator;
  before(async () => {
    emulator = await startTestEmulator();
  });
  after(() => emulator.close());

  test('rate: 80 registrations per second holds within 10%, measured from the start times over the run', async () => {
    const rate = 80;
    const run = registerFleet({
      idScope: emulator.idScope,
      endpoint: `127.0.0.1:${emulator.wssPort}`,
      trustedCa: emulator.pki.caPath,
      devices: { count: 121, prefix: 'fleet-rate-', groupKey: DEMO_GROUP_KEY },
      concurrency: 50,
      rate,
    });
    const results = await collect(run);
    assert.equal(results.length, 121);
    assert.ok(results.every((result) => result.status === 'assigned'));
    const starts = results.map((result) => result.startedAt).sort((a, b) => a - b);
    const spanMs = (starts.at(-1) as number) - (starts[0] as number);
    const measured = ((starts.length - 1) * 1000) / spanMs;
    assert.ok(Math.abs(measured - rate) / rate <= 0.1, `measured ${measured.toFixed(1)}/s for ${rate}/s`);
  });

  test('group CA: each device gets a certificate (CN = registration id) signed by the group CA, and registers with it', async () => {
    const run = registerFleet({
      idScope: emulator.idScope,
      endpoint: `127.0.0.1:${emulator.mqttPort}`,
      transport: 'mqtt',
      trustedCa: emulator.pki.caPath,
      // The demo X.509 group trusts the emulator's CA.
      devices: {
        count: 12,
        prefix: 'fleet-x509-',
        groupCa: { certificate: emulator.pki.ca.certPem, privateKey: emulator.pki.ca.keyPem },
      },
      includeKeys: true,
    });
    const results = await collect(run);
    assert.equal(results.length, 12);
    const ca = new X509Certificate(emulator.pki.ca.certPem);
    for (const result of results) {
      assert.equal(result.status, 'assigned', JSON.stringify(result));
      assert.ok(result.certificatePem && result.privateKeyPem, 'includeKeys returns the certificate and key');
      const leaf = new X509Certificate(result.certificatePem);
      assert.equal(leaf.subject, `CN=${result.registrationId}`);
      assert.ok(leaf.verify(ca.publicKey), 'signed by the group CA');
      assert.ok(leaf.checkIssued(ca));
    }
  });

  test('stop(): no device starts after it, those in flight finish, and the summary counts the rest as not started', async () => {
    const run = registerFleet({
      idScope: emulator.idScope,
      endpoint: `127.0.0.1:${emulator.wssPort}`,
      trustedCa: emulator.pki.caPath,
      devices: { count: 500, prefix: 'fleet-stop-', groupKey: DEMO_GROUP_KEY },
      concurrency: 5,
    });
    const results: FleetDeviceResult[] = [];
    for await (const result of run) {
      results.push(result);
      if (results.length === 10) run.stop();
    }
    const summary = run.summary();
    assert.ok(results.length >= 10 && results.length <= 15, `${results.length} results`);
    assert.equal(summary.started, results.length);
    assert.equal(summary.notStarted, 500 - results.length);
    assert.ok(
      results.every((result) => result.status === 'assigned'),
      'in-flight devices finished',
    );
  });

  test('options are checked at once, with the option named', () => {
    assert.throws(
      () =>
        registerFleet({
          idScope: emulator.idScope,
          devices: { count: 1, groupKey: DEMO_GROUP_KEY },
          concurency: 3,
        } as never),
      /option "concurency" is unknown \(did you mean "concurrency"\?\)/,
    );
    assert.throws(
      () =>
        registerFleet({
          idScope: emulator.idScope,
          devices: { count: 1, groupKey: DEMO_GROUP_KEY },
          shard: { index: 2, count: 2 },
        }),
      /shard.index 2 is invalid/,
    );
  });
});
