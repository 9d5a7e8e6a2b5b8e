// Re-provisioning (docs/emulator.md, "Re-provisioning"): an assigned device registers again after its
// enrollment's hubs changed through the service API (or a configuration change across a restart), and
// stays or moves as the enrollment's reprovisionPolicy says, with the substatus DPS reports, seen through
// our client. Also: a status query answered 202 carries registrationState { registrationId, status }.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { describeProgress } from '../src/cli/output.js';
import type { ProgressEvent } from '../src/client/types.js';
import { register } from '../src/index.js';
import type { JsonObject } from '../src/protocol/responses.js';
import {
  parseResponse,
  publishPacket,
  RawMqttClient,
  sasConnectPacket,
  startTestEmulator,
  subscribePacket,
  type TestEmulator,
  temporaryDirectory,
} from './helpers/emulator.js';
import { serviceRequest } from './support/service-api.js';

const HUB_A = 'hub-a.azure-devices.net';
const HUB_B = 'hub-b.azure-devices.net';
const KEY = Buffer.from('re-provisioning test device key!').toString('base64');
const API = 'api-version=2021-10-01';

interface Policy {
  updateHubAssignment?: boolean;
  migrateDeviceData?: boolean;
}

/** Creates or replaces the individual enrollment of `registrationId` through the service API. */
async function putEnrollment(
  emulator: TestEmulator,
  registrationId: string,
  fields: { iotHubs: string[]; reprovisionPolicy?: Policy; initialTwin?: JsonObject },
): Promise<void> {
  const response = await serviceRequest(emulator, {
    method: 'PUT',
    path: `/enrollments/${registrationId}?${API}`,
    body: {
      registrationId,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: KEY, secondaryKey: KEY } },
      allocationPolicy: 'hashed',
      ...fields,
    },
  });
  assert.ok(response.statusCode === 200 || response.statusCode === 201, response.text);
}

async function registerDevice(emulator: TestEmulator, registrationId: string, events?: ProgressEvent[]) {
  return register({
    idScope: emulator.idScope,
    registrationId,
    security: { symmetricKey: KEY },
    endpoint: `127.0.0.1:${emulator.mqttPort}`,
    transport: 'mqtt',
    trustedCa: emulator.caCertPem,
    timeoutMs: 20_000,
    ...(events === undefined ? {} : { onProgress: (event: ProgressEvent) => events.push(event) }),
  });
}

function recordOf(emulator: TestEmulator, registrationId: string) {
  const record = emulator.registrations().find((candidate) => candidate.registrationId === registrationId);
  assert.ok(record, `no registration record for ${registrationId}`);
  return record;
}

describe('re-provisioning through the service API', () => {
  let emulator: TestEmulator;
  before(async () => {
    emulator = await startTestEmulator({ iotHubs: [HUB_A, HUB_B] });
  });
  after(() => emulator.close());

  test('first registration: initialAssignment on the linked hub', async () => {
    await putEnrollment(emulator, 'rp-first', { iotHubs: [HUB_A] });
    const result = await registerDevice(emulator, 'rp-first');
    assert.equal(result.assignedHub, HUB_A);
    assert.equal(result.substatus, 'initialAssignment');
  });

  test('registering again with nothing changed: same hub, initialAssignment', async () => {
    await putEnrollment(emulator, 'rp-same', { iotHubs: [HUB_A] });
    const first = await registerDevice(emulator, 'rp-same');
    const again = await registerDevice(emulator, 'rp-same');
    assert.equal(again.assignedHub, first.assignedHub);
    assert.equal(again.substatus, 'initialAssignment');
    assert.equal(again.createdDateTimeUtc, first.createdDateTimeUtc);
  });

  test('stay: updateHubAssignment false keeps the old hub after the hubs changed', async () => {
    await putEnrollment(emulator, 'rp-stay', { iotHubs: [HUB_A] });
    await registerDevice(emulator, 'rp-stay');
    await putEnrollment(emulator, 'rp-stay', {
      iotHubs: [HUB_B],
      reprovisionPolicy: { updateHubAssignment: false, migrateDeviceData: true },
    });
    const again = await registerDevice(emulator, 'rp-stay');
    assert.equal(again.assignedHub, HUB_A);
    assert.equal(again.substatus, 'initialAssignment');
  });

  test('migrate (the default policy): moves with deviceDataMigrated, the twin and device id kept', async () => {
    await putEnrollment(emulator, 'rp-migrate', { iotHubs: [HUB_A], initialTwin: { tags: { version: 1 } } });
    await registerDevice(emulator, 'rp-migrate');
    await putEnrollment(emulator, 'rp-migrate', { iotHubs: [HUB_B], initialTwin: { tags: { version: 2 } } });
    const events: ProgressEvent[] = [];
    const moved = await registerDevice(emulator, 'rp-migrate', events);
    assert.equal(moved.assignedHub, HUB_B);
    assert.equal(moved.substatus, 'deviceDataMigrated');
    assert.equal(moved.deviceId, 'rp-migrate');
    const record = recordOf(emulator, 'rp-migrate');
    assert.deepEqual(record.initialTwin, { tags: { version: 1 } });
    assert.deepEqual(record.hubHistory, [HUB_A, HUB_B]);
    // The client's progress says the device moved, and why, in words.
    const assigned = events.find((event) => event.type === 'assigned');
    assert.ok(assigned?.type === 'assigned');
    assert.equal(assigned.substatus, 'deviceDataMigrated');
    assert.match(describeProgress(assigned), /moved from its previous hub \(deviceDataMigrated: .*migrated/);
  });

  test("reset: migrateDeviceData false moves with deviceDataReset and the enrollment's initial twin", async () => {
    await putEnrollment(emulator, 'rp-reset', { iotHubs: [HUB_A], initialTwin: { tags: { version: 1 } } });
    await registerDevice(emulator, 'rp-reset');
    await putEnrollment(emulator, 'rp-reset', {
      iotHubs: [HUB_B],
      initialTwin: { tags: { version: 2 } },
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
    });
    const moved = await registerDevice(emulator, 'rp-reset');
    assert.equal(moved.assignedHub, HUB_B);
    assert.equal(moved.substatus, 'deviceDataReset');
    assert.deepEqual(recordOf(emulator, 'rp-reset').initialTwin, { tags: { version: 2 } });
  });

  test('back to the first hub: reprovisionedToInitialAssignment', async () => {
    await putEnrollment(emulator, 'rp-back', { iotHubs: [HUB_A] });
    await registerDevice(emulator, 'rp-back');
    await putEnrollment(emulator, 'rp-back', { iotHubs: [HUB_B] });
    assert.equal((await registerDevice(emulator, 'rp-back')).substatus, 'deviceDataMigrated');
    await putEnrollment(emulator, 'rp-back', { iotHubs: [HUB_A] });
    const events: ProgressEvent[] = [];
    const back = await registerDevice(emulator, 'rp-back', events);
    assert.equal(back.assignedHub, HUB_A);
    assert.equal(back.substatus, 'reprovisionedToInitialAssignment');
    assert.deepEqual(recordOf(emulator, 'rp-back').hubHistory, [HUB_A, HUB_B]);
    const assigned = events.find((event) => event.type === 'assigned');
    assert.ok(assigned?.type === 'assigned');
    assert.match(
      describeProgress(assigned),
      /moved from its previous hub \(reprovisionedToInitialAssignment/,
    );
  });

  test('an unchanged registration prints no move', async () => {
    await putEnrollment(emulator, 'rp-quiet', { iotHubs: [HUB_A] });
    const events: ProgressEvent[] = [];
    await registerDevice(emulator, 'rp-quiet', events);
    const assigned = events.find((event) => event.type === 'assigned');
    assert.ok(assigned?.type === 'assigned');
    assert.equal(describeProgress(assigned), `assigned to ${HUB_A} as rp-quiet`);
  });

  test('a status query answered 202 carries registrationState { registrationId, status: "assigning" }', async () => {
    const slow = await startTestEmulator({ pollsBeforeAssignment: 1 });
    try {
      await putEnrollment(slow, 'rp-poll', { iotHubs: [HUB_A] });
      const client = await RawMqttClient.connect({
        port: slow.mqttPort,
        transport: 'mqtt',
        ca: slow.caCertPem,
      });
      try {
        client.send(sasConnectPacket({ idScope: slow.idScope, registrationId: 'rp-poll', key: KEY }));
        assert.equal((await client.expect('connack')).returnCode, 0);
        client.send(subscribePacket());
        await client.expect('suback');
        client.send(
          publishPacket('$dps/registrations/PUT/iotdps-register/?$rid=1', { registrationId: 'rp-poll' }),
        );
        await client.expect('puback');
        const registered = parseResponse(await client.expect('publish'));
        assert.equal(registered.statusCode, 202);
        const operationId = registered.body.operationId as string;
        const poll = (rid: number) =>
          publishPacket(
            `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${operationId}`,
            '',
            { messageId: 10 + rid },
          );
        client.send(poll(2));
        await client.expect('puback');
        const assigning = parseResponse(await client.expect('publish'));
        assert.equal(assigning.statusCode, 202);
        assert.deepEqual(assigning.body, {
          operationId,
          status: 'assigning',
          registrationState: { registrationId: 'rp-poll', status: 'assigning' },
        });
        client.send(poll(3));
        await client.expect('puback');
        const assigned = parseResponse(await client.expect('publish'));
        assert.equal(assigned.statusCode, 200);
        assert.equal(assigned.body.status, 'assigned');
      } finally {
        client.close();
      }
    } finally {
      await slow.close();
    }
  });
});

describe('re-provisioning through a configuration change (restart on the same data directory)', () => {
  test('the hub list changes in the configuration: the device moves with deviceDataMigrated', async (t) => {
    const directory = await temporaryDirectory('dps-mqtt-reprovision-');
    t.after(() => directory.remove());
    const enrollment = (iotHubs: string[]) => ({
      individualEnrollments: [
        {
          registrationId: 'rp-config',
          attestation: { type: 'symmetricKey' as const, primaryKey: KEY },
          iotHubs,
        },
      ],
    });
    const first = await startTestEmulator({ dataDir: directory.path, config: enrollment([HUB_A]) });
    try {
      assert.equal((await registerDevice(first, 'rp-config')).assignedHub, HUB_A);
    } finally {
      await first.close();
    }
    const second = await startTestEmulator({ dataDir: directory.path, config: enrollment([HUB_B]) });
    try {
      const moved = await registerDevice(second, 'rp-config');
      assert.equal(moved.assignedHub, HUB_B);
      assert.equal(moved.substatus, 'deviceDataMigrated');
    } finally {
      await second.close();
    }
  });
});
