// Custom allocation (docs/emulator.md, "Custom allocation"): an enrollment with allocationPolicy "custom"
// makes the emulator POST the DPS AllocationRequest to a webhook the test serves (a real HTTP server on
// loopback) and apply its answer; a webhook that refuses, times out, answers garbage or names an unlinked
// hub ends the registration as `failed`, which our client (and the official device SDK) report as such,
// and the device can register again later.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { runEmulatorCli } from '../src/emulator/cli.js';
import { CUSTOM_ALLOCATION_ERROR_CODES } from '../src/emulator/index.js';
import { isDpsError, RegistrationFailedError, register } from '../src/index.js';
import type { JsonValue } from '../src/protocol/responses.js';
import { startTestEmulator, type TestEmulator } from './helpers/emulator.js';
import { serviceRequest } from './support/service-api.js';

const HUB_A = 'hub-a.azure-devices.net';
const HUB_B = 'hub-b.azure-devices.net';
const HUB_C = 'hub-c.azure-devices.net';
const KEY = Buffer.from('custom allocation test device k!').toString('base64');
const API = 'api-version=2021-10-01';
/** A secret in the webhook's query string, as Azure Functions keys are: it must never reach the device. */
const FUNCTION_KEY = 'function-key-that-must-stay-secret';

type Responder = (request: { body: Record<string, unknown> }, response: ServerResponse) => void;

/** A webhook the test scripts: each request takes the next responder (the last one repeats). */
class Webhook {
  readonly requests: Array<Record<string, unknown>> = [];
  private responders: Responder[] = [];
  private constructor(readonly server: Server) {
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        this.requests.push(body);
        const responder = this.responders.length > 1 ? this.responders.shift() : this.responders[0];
        if (responder === undefined) {
          response.writeHead(500).end();
          return;
        }
        responder({ body }, response);
      });
    });
  }

  static async start(server: Server = createHttpServer()): Promise<Webhook> {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new Webhook(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(scheme = 'http', host = '127.0.0.1'): string {
    return `${scheme}://${host}:${this.port}/api/allocate?code=${FUNCTION_KEY}`;
  }

  script(...responders: Responder[]): void {
    this.responders = responders;
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }
}

const answer =
  (body: unknown, statusCode = 200): Responder =>
  (_request, response) => {
    response.writeHead(statusCode, { 'content-type': 'application/json' });
    response.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
/** Never answers: the emulator's timeout ends the call. */
const silence: Responder = () => {};

async function putCustomEnrollment(
  emulator: TestEmulator,
  registrationId: string,
  webhookUrl: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const response = await serviceRequest(emulator, {
    method: 'PUT',
    path: `/enrollments/${registrationId}?${API}`,
    body: {
      registrationId,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: KEY, secondaryKey: KEY } },
      iotHubs: [HUB_A, HUB_B],
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl, apiVersion: '2021-10-01' },
      ...extra,
    },
  });
  assert.ok(response.statusCode === 200 || response.statusCode === 201, response.text);
}

function registerDevice(emulator: TestEmulator, registrationId: string, payload?: JsonValue) {
  return register({
    idScope: emulator.idScope,
    registrationId,
    security: { symmetricKey: KEY },
    endpoint: `127.0.0.1:${emulator.mqttPort}`,
    transport: 'mqtt',
    trustedCa: emulator.caCertPem,
    timeoutMs: 20_000,
    ...(payload === undefined ? {} : { payload }),
  });
}

async function registrationFailure(promise: Promise<unknown>): Promise<RegistrationFailedError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(
      error instanceof RegistrationFailedError,
      `expected a RegistrationFailedError, got ${String(error)}`,
    );
    assert.ok(isDpsError(error) && error.code === 'ERR_REGISTRATION_FAILED');
    return error;
  }
  assert.fail('the registration succeeded');
}

describe('custom allocation webhook', () => {
  let webhook: Webhook;
  let emulator: TestEmulator;
  before(async () => {
    webhook = await Webhook.start();
    emulator = await startTestEmulator({ allocationWebhook: { timeoutMs: 300 } });
  });
  after(async () => {
    await emulator.close();
    await webhook.close();
  });
  beforeEach(() => webhook.script());

  test("accept: the device's payload reaches the webhook, the webhook's hub, twin and payload are applied", async () => {
    await putCustomEnrollment(emulator, 'ca-accept', webhook.url(), {
      initialTwin: { tags: { from: 'enrollment' } },
    });
    webhook.script(
      answer({
        iotHubHostName: HUB_B,
        initialTwin: { tags: { from: 'webhook' } },
        payload: { welcome: 'from the webhook', slot: 7 },
      }),
    );
    const result = await registerDevice(emulator, 'ca-accept', { model: 'toaster', firmware: '1.2' });
    assert.equal(result.assignedHub, HUB_B);
    assert.equal(result.substatus, 'initialAssignment');
    assert.deepEqual(result.payload, { welcome: 'from the webhook', slot: 7 });

    assert.equal(webhook.requests.length, 1);
    const request = webhook.requests[0] as Record<string, Record<string, unknown>>;
    assert.deepEqual(request.deviceRuntimeContext, {
      registrationId: 'ca-accept',
      symmetricKey: {},
      payload: { model: 'toaster', firmware: '1.2' },
    });
    assert.deepEqual(request.linkedHubs, [HUB_A, HUB_B]);
    const enrollment = request.individualEnrollment as Record<string, unknown>;
    assert.equal(enrollment.registrationId, 'ca-accept');
    assert.equal(enrollment.allocationPolicy, 'custom');
    assert.deepEqual(enrollment.attestation, { type: 'symmetricKey' }, 'no keys are sent to the webhook');
    assert.deepEqual(enrollment.reprovisionPolicy, { updateHubAssignment: true, migrateDeviceData: true });
    assert.ok(!JSON.stringify(request).includes(KEY));

    const record = emulator.registrations().find((candidate) => candidate.registrationId === 'ca-accept');
    assert.deepEqual(record?.initialTwin, { tags: { from: 'webhook' } });
  });

  test('refuse, then accept: the first registration fails (400207), the next one is assigned', async () => {
    await putCustomEnrollment(emulator, 'ca-later', webhook.url());
    webhook.script(answer({ message: 'not yet' }, 400), answer({ iotHubHostName: HUB_A }));
    const failure = await registrationFailure(registerDevice(emulator, 'ca-later'));
    assert.equal(failure.status, 'failed');
    assert.equal(failure.errorCode, CUSTOM_ALLOCATION_ERROR_CODES.failed);
    assert.match(failure.errorMessage ?? '', /answered 400/);
    assert.equal(
      emulator.registrations().find((r) => r.registrationId === 'ca-later'),
      undefined,
    );

    const result = await registerDevice(emulator, 'ca-later');
    assert.equal(result.assignedHub, HUB_A);
    assert.equal(result.substatus, 'initialAssignment');
    assert.equal(webhook.requests.length, 2);
  });

  test('a webhook that answers 401: CustomAllocationUnauthorizedAccess (400209)', async () => {
    await putCustomEnrollment(emulator, 'ca-unauthorized', webhook.url());
    webhook.script(answer('', 401));
    const failure = await registrationFailure(registerDevice(emulator, 'ca-unauthorized'));
    assert.equal(failure.errorCode, CUSTOM_ALLOCATION_ERROR_CODES.unauthorized);
  });

  test('time out: no answer within allocationWebhook.timeoutMs fails the registration (400207)', async () => {
    await putCustomEnrollment(emulator, 'ca-timeout', webhook.url());
    webhook.script(silence);
    const failure = await registrationFailure(registerDevice(emulator, 'ca-timeout'));
    assert.equal(failure.errorCode, CUSTOM_ALLOCATION_ERROR_CODES.failed);
    assert.match(failure.errorMessage ?? '', /did not answer within 300 ms/);
  });

  const malformed: Array<[string, Responder, number, RegExp]> = [
    ['a body that is not JSON', answer('<html>oops</html>'), 400207, /not JSON/],
    ['JSON that is not an object', answer([HUB_A]), 400207, /not an object/],
    ['no iotHubHostName', answer({ payload: {} }), 400208, /no iotHubHostName/],
    ['an empty iotHubHostName', answer({ iotHubHostName: '' }), 400208, /no iotHubHostName/],
    ['an iotHubHostName that is not a host name', answer({ iotHubHostName: 42 }), 400207, /not a host name/],
    [
      'an initialTwin that is not an object',
      answer({ iotHubHostName: HUB_A, initialTwin: 'x' }),
      400207,
      /initialTwin/,
    ],
  ];
  for (const [name, responder, errorCode, message] of malformed) {
    test(`malformed answer (${name}): failed with ${errorCode}`, async () => {
      const registrationId = `ca-malformed-${malformed.findIndex(([other]) => other === name)}`;
      await putCustomEnrollment(emulator, registrationId, webhook.url());
      webhook.script(responder);
      const failure = await registrationFailure(registerDevice(emulator, registrationId));
      assert.equal(failure.errorCode, errorCode);
      assert.match(failure.errorMessage ?? '', message);
    });
  }

  test('a hub not linked to the enrollment: failed (400207), naming the linked hubs', async () => {
    await putCustomEnrollment(emulator, 'ca-unlinked', webhook.url());
    webhook.script(answer({ iotHubHostName: HUB_C }));
    const failure = await registrationFailure(registerDevice(emulator, 'ca-unlinked'));
    assert.equal(failure.errorCode, CUSTOM_ALLOCATION_ERROR_CODES.failed);
    assert.match(failure.errorMessage ?? '', new RegExp(`chose ${HUB_C}.*not linked.*${HUB_A}, ${HUB_B}`));
  });

  test("an unreachable webhook: failed (400207); the webhook's query string (a key) is never shown", async () => {
    const closed = await Webhook.start();
    const url = closed.url();
    await closed.close();
    await putCustomEnrollment(emulator, 'ca-unreachable', url);
    const failure = await registrationFailure(registerDevice(emulator, 'ca-unreachable'));
    assert.equal(failure.errorCode, CUSTOM_ALLOCATION_ERROR_CODES.failed);
    assert.match(failure.errorMessage ?? '', /could not be reached/);
    assert.ok(!failure.message.includes(FUNCTION_KEY));
    assert.ok(!(failure.errorMessage ?? '').includes(FUNCTION_KEY));
  });

  test('re-registration: the webhook sees the current hub and device id, and may move the device', async () => {
    await putCustomEnrollment(emulator, 'ca-again', webhook.url());
    webhook.script(
      answer({ iotHubHostName: HUB_A }),
      answer({ iotHubHostName: HUB_B, payload: { moved: true } }),
    );
    await registerDevice(emulator, 'ca-again');
    const moved = await registerDevice(emulator, 'ca-again');
    assert.equal(moved.assignedHub, HUB_B);
    assert.equal(moved.substatus, 'deviceDataMigrated');
    assert.deepEqual(moved.payload, { moved: true });
    const context = (webhook.requests[1] as Record<string, Record<string, unknown>>).deviceRuntimeContext;
    assert.equal(context?.currentIotHubHostName, HUB_A);
    assert.equal(context?.currentDeviceId, 'ca-again');
  });

  test('a device that may not move (updateHubAssignment false) is offered only its current hub', async () => {
    await putCustomEnrollment(emulator, 'ca-pinned', webhook.url(), {
      reprovisionPolicy: { updateHubAssignment: false, migrateDeviceData: true },
    });
    webhook.script(answer({ iotHubHostName: HUB_B }));
    await registerDevice(emulator, 'ca-pinned');
    const again = await registerDevice(emulator, 'ca-pinned');
    assert.equal(again.assignedHub, HUB_B);
    assert.deepEqual(webhook.requests[1]?.linkedHubs, [HUB_B]);
  });

  test('the official device SDK reports the failed registration with its status and error', async () => {
    const require = createRequire(import.meta.url);
    const { ProvisioningDeviceClient } =
      require('azure-iot-provisioning-device') as typeof import('azure-iot-provisioning-device');
    const { Mqtt } =
      require('azure-iot-provisioning-device-mqtt') as typeof import('azure-iot-provisioning-device-mqtt');
    const { SymmetricKeySecurityClient } =
      require('azure-iot-security-symmetric-key') as typeof import('azure-iot-security-symmetric-key');
    const { MqttBase } = require('azure-iot-mqtt-base') as typeof import('azure-iot-mqtt-base');
    await putCustomEnrollment(emulator, 'ca-sdk', webhook.url());
    webhook.script(answer('', 500));
    const base = new MqttBase();
    base.setOptions({ ca: emulator.caCertPem });
    const security = new SymmetricKeySecurityClient('ca-sdk', KEY);
    const client = ProvisioningDeviceClient.create(
      `localhost:${emulator.mqttPort}`,
      emulator.idScope,
      new Mqtt(base),
      security as unknown as Parameters<typeof ProvisioningDeviceClient.create>[3],
    );
    let caught: unknown;
    try {
      await client.register();
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof Error, 'the SDK rejects the registration');
    // The SDK's error carries the operation status it was given: status failed, the service's reason.
    const result = (caught as { result?: { status?: string; registrationState?: Record<string, unknown> } })
      .result;
    assert.equal(caught.message, 'registration failed');
    assert.equal(result?.status, 'failed');
    assert.equal(result?.registrationState?.errorCode, CUSTOM_ALLOCATION_ERROR_CODES.failed);
    assert.match(String(result?.registrationState?.errorMessage), /answered 500/);
  });
});

describe('custom allocation from the configuration file, and https webhooks', () => {
  test('a configured enrollment group with allocationPolicy "custom" calls its webhook', async (t) => {
    const webhook = await Webhook.start();
    t.after(() => webhook.close());
    webhook.script(answer({ iotHubHostName: HUB_B, payload: { group: true } }));
    const groupKey = Buffer.from('custom allocation test group key').toString('base64');
    const emulator = await startTestEmulator({
      config: {
        iotHubs: [HUB_A, HUB_B],
        enrollmentGroups: [
          {
            enrollmentGroupId: 'custom-group',
            attestation: { type: 'symmetricKey', primaryKey: groupKey },
            allocationPolicy: 'custom',
            customAllocationDefinition: { webhookUrl: webhook.url() },
          },
        ],
      },
    });
    t.after(() => emulator.close());
    const { deriveDeviceKey } = await import('../src/protocol/sas.js');
    const result = await register({
      idScope: emulator.idScope,
      registrationId: 'group-device-1',
      security: { symmetricKey: deriveDeviceKey(groupKey, 'group-device-1') },
      endpoint: `127.0.0.1:${emulator.mqttPort}`,
      transport: 'mqtt',
      trustedCa: emulator.caCertPem,
      timeoutMs: 20_000,
    });
    assert.equal(result.assignedHub, HUB_B);
    assert.deepEqual(result.payload, { group: true });
    const request = webhook.requests[0] as Record<string, Record<string, unknown>>;
    assert.equal(request.enrollmentGroup?.enrollmentGroupId, 'custom-group');
    assert.deepEqual(request.enrollmentGroup?.customAllocationDefinition, {
      webhookUrl: webhook.url(),
      apiVersion: '2021-10-01',
    });
  });

  test('an https webhook is trusted with allocationWebhook.ca', async (t) => {
    const emulatorForPki = await startTestEmulator();
    const { pki } = emulatorForPki;
    await emulatorForPki.close();
    const webhook = await Webhook.start(
      createHttpsServer({ cert: pki.server.certPem, key: pki.server.keyPem }),
    );
    t.after(() => webhook.close());
    webhook.script(answer({ iotHubHostName: HUB_A }));
    const trusted = await startTestEmulator({ allocationWebhook: { ca: pki.ca.certPem } });
    t.after(() => trusted.close());
    await putCustomEnrollment(trusted, 'ca-https', webhook.url('https', 'localhost'));
    assert.equal((await registerDevice(trusted, 'ca-https')).assignedHub, HUB_A);

    // Without the CA, Node's defaults do not trust the test CA: the registration fails.
    const untrusting = await startTestEmulator();
    t.after(() => untrusting.close());
    await putCustomEnrollment(untrusting, 'ca-https', webhook.url('https', 'localhost'));
    const failure = await registrationFailure(registerDevice(untrusting, 'ca-https'));
    assert.match(failure.errorMessage ?? '', /could not be reached/);
  });

  test('allocationPolicy "custom" without customAllocationDefinition is refused at start', async () => {
    await assert.rejects(
      startTestEmulator({
        config: {
          individualEnrollments: [
            {
              registrationId: 'no-webhook',
              attestation: { type: 'symmetricKey', primaryKey: KEY },
              allocationPolicy: 'custom',
            },
          ],
        },
      }),
      /customAllocationDefinition: is required with allocationPolicy "custom"/,
    );
  });

  test('allocationWebhook options are checked', async () => {
    await assert.rejects(startTestEmulator({ allocationWebhook: { timeoutMs: 0 } }), /timeoutMs/);
    await assert.rejects(
      startTestEmulator({ allocationWebhook: { ca: 'not a certificate' } }),
      /allocationWebhook\.ca/,
    );
    await assert.rejects(
      startTestEmulator({ allocationWebhook: { timeout: 5 } as never }),
      /allocationWebhook\.timeout/,
    );
  });
});

describe('the emulator CLI: --webhook-timeout and --webhook-ca', () => {
  const run = async (argv: string[]) => {
    let stderr = '';
    const code = await runEmulatorCli(argv, {
      stdout: { write: () => true },
      stderr: { write: (text: string) => (stderr += text) },
      signals: new EventEmitter() as unknown as NodeJS.Process,
    });
    return { code, stderr };
  };

  test('--webhook-timeout must be a positive whole number of milliseconds (usage error, exit 2)', async () => {
    const { code, stderr } = await run(['--webhook-timeout', 'soon']);
    assert.equal(code, 2);
    assert.match(stderr, /--webhook-timeout/);
  });

  test('--webhook-ca must be a readable file (usage error, exit 2)', async () => {
    const { code, stderr } = await run(['--webhook-ca', '/nonexistent/webhook-ca.pem']);
    assert.equal(code, 2);
    assert.match(stderr, /--webhook-ca: cannot read/);
  });

  test('--help lists both flags', async () => {
    let stdout = '';
    const code = await runEmulatorCli(['--help'], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: () => true },
      signals: new EventEmitter() as unknown as NodeJS.Process,
    });
    assert.equal(code, 0);
    assert.match(stdout, /--webhook-timeout MS/);
    assert.match(stdout, /--webhook-ca FILE/);
  });
});
