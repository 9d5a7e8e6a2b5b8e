// The registrar without a network: custom allocation with an injected webhook caller (status queries
// answer `assigning` until the decision is in), and the re-provisioning rules as a table.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseEmulatorConfig } from '../src/emulator/enrollments/config.js';
import { type Attested, EnrollmentBook } from '../src/emulator/enrollments/enrollment-book.js';
import type { CustomAllocationRequest, WebhookReply } from '../src/emulator/registrar/custom-allocation.js';
import { Registrar } from '../src/emulator/registrar/registrar.js';
import { RegistrationStore } from '../src/emulator/registrar/registration-store.js';
import { placeRegistration } from '../src/emulator/registrar/reprovisioning.js';
import type { OperationStatus } from '../src/protocol/responses.js';
import { createSasToken } from '../src/protocol/sas.js';

const KEY = Buffer.from('registrar allocation test key!!!').toString('base64');
const HUB_A = 'hub-a.azure-devices.net';
const HUB_B = 'hub-b.azure-devices.net';

describe('the registrar with an injected custom allocation caller', () => {
  test('status queries answer assigning until the webhook answers, then the chosen hub', async () => {
    const config = await parseEmulatorConfig({
      iotHubs: [HUB_A, HUB_B],
      individualEnrollments: [
        {
          registrationId: 'offline-device',
          attestation: { type: 'symmetricKey', primaryKey: KEY },
          allocationPolicy: 'custom',
          customAllocationDefinition: { webhookUrl: 'http://webhook.invalid/allocate' },
        },
      ],
    });
    const book = new EnrollmentBook(config);
    const nowSeconds = Math.floor(Date.now() / 1000);
    const token = createSasToken({
      idScope: config.idScope,
      registrationId: 'offline-device',
      key: KEY,
      expiresAtSeconds: nowSeconds + 3600,
    });
    const attested = book.attestSasToken('offline-device', token, nowSeconds);
    assert.ok(attested.ok);
    const calls: Array<{ url: string; request: CustomAllocationRequest }> = [];
    let answer: (reply: WebhookReply) => void = () => {};
    const registrar = new Registrar({
      book,
      store: await RegistrationStore.open(undefined),
      retryAfterSeconds: 1,
      pollsBeforeAssignment: 0,
      assignmentDelayMs: 0,
      callAllocationWebhook: (url, request) => {
        calls.push({ url, request });
        return new Promise((resolve) => {
          answer = resolve;
        });
      },
    });
    const device = {
      registrationId: 'offline-device',
      attested: attested as Attested,
      apiVersion: '2021-06-01',
    };
    const registered = registrar.register(device, Buffer.from(JSON.stringify({ payload: { a: 1 } })));
    assert.equal(registered.statusCode, 202);
    const { operationId } = registered.body as OperationStatus;
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.url, 'http://webhook.invalid/allocate');
    assert.deepEqual(calls[0]?.request.deviceRuntimeContext.payload, { a: 1 });

    const waiting = registrar.operationStatus(device, operationId);
    assert.equal(waiting.statusCode, 202);
    assert.deepEqual(waiting.body, {
      operationId,
      status: 'assigning',
      registrationState: { registrationId: 'offline-device', status: 'assigning' },
    });

    answer({ kind: 'answered', statusCode: 200, body: JSON.stringify({ iotHubHostName: HUB_B }) });
    await new Promise((resolve) => setImmediate(resolve));
    const done = registrar.operationStatus(device, operationId);
    assert.equal(done.statusCode, 200);
    const status = done.body as OperationStatus;
    assert.equal(status.status, 'assigned');
    assert.equal(status.registrationState?.assignedHub, HUB_B);
  });
});

describe('re-provisioning rules (placeRegistration)', () => {
  const migrate = { updateHubAssignment: true, migrateDeviceData: true };
  const reset = { updateHubAssignment: true, migrateDeviceData: false };
  const stay = { updateHubAssignment: false, migrateDeviceData: true };
  const current = { assignedHub: HUB_A, deviceId: 'old-id', initialTwin: { tags: { old: true } } };
  const toB = { assignedHub: HUB_B, deviceId: 'new-id', initialTwin: { tags: { new: true } } };
  const cases: Array<[string, Parameters<typeof placeRegistration>, Record<string, unknown>]> = [
    [
      'first registration',
      [undefined, toB, migrate],
      { assignedHub: HUB_B, deviceId: 'new-id', substatus: 'initialAssignment', hubHistory: [HUB_B] },
    ],
    [
      'same hub',
      [current, { ...toB, assignedHub: HUB_A }, migrate],
      { assignedHub: HUB_A, deviceId: 'old-id', substatus: 'initialAssignment', moved: false },
    ],
    [
      'stay (updateHubAssignment false)',
      [current, toB, stay],
      { assignedHub: HUB_A, substatus: 'initialAssignment', initialTwin: { tags: { old: true } } },
    ],
    [
      'migrate',
      [current, toB, migrate],
      {
        assignedHub: HUB_B,
        deviceId: 'old-id',
        initialTwin: { tags: { old: true } },
        substatus: 'deviceDataMigrated',
        hubHistory: [HUB_A, HUB_B],
        moved: true,
      },
    ],
    [
      'reset',
      [current, toB, reset],
      {
        assignedHub: HUB_B,
        deviceId: 'new-id',
        initialTwin: { tags: { new: true } },
        substatus: 'deviceDataReset',
      },
    ],
    [
      'back to a hub it had',
      [{ ...current, assignedHub: HUB_B, hubHistory: [HUB_A, HUB_B] }, { ...toB, assignedHub: HUB_A }, reset],
      { assignedHub: HUB_A, substatus: 'reprovisionedToInitialAssignment', hubHistory: [HUB_A, HUB_B] },
    ],
  ];
  for (const [name, args, expected] of cases) {
    test(name, () => {
      const placement = placeRegistration(...args) as unknown as Record<string, unknown>;
      for (const [field, value] of Object.entries(expected)) assert.deepEqual(placement[field], value, field);
    });
  }
});
