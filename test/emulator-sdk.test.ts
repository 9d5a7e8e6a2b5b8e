// The official Azure IoT Node SDK registers against the emulator: the emulator speaks the real protocol,
// not merely our own client's idea of it.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { DEMO_GROUP_KEY } from '../src/emulator/enrollments/config.js';
import {
  type CertificateAndKey,
  createRootCa,
  createSelfSignedCertificate,
  issueCertificate,
} from '../src/emulator/pki/pki.js';
import { deriveDeviceKey } from '../src/protocol/sas.js';
import { startTestEmulator, type TestEmulator } from './helpers/emulator.js';

// The SDK packages are CommonJS; createRequire keeps their untyped corners out of the ESM import graph.
const require = createRequire(import.meta.url);
const { ProvisioningDeviceClient } =
  require('azure-iot-provisioning-device') as typeof import('azure-iot-provisioning-device');
const { Mqtt, MqttWs } =
  require('azure-iot-provisioning-device-mqtt') as typeof import('azure-iot-provisioning-device-mqtt');
const { SymmetricKeySecurityClient } =
  require('azure-iot-security-symmetric-key') as typeof import('azure-iot-security-symmetric-key');
const { X509Security } = require('azure-iot-security-x509') as typeof import('azure-iot-security-x509');
// MqttBase is the SDK's own MQTT layer (a dependency of azure-iot-provisioning-device-mqtt). Handing a
// configured one to the transport's constructor is the SDK's way to trust a CA other than the system's.
const { MqttBase } = require('azure-iot-mqtt-base') as typeof import('azure-iot-mqtt-base');

type Transport = InstanceType<typeof Mqtt>;
type SecurityClient = Parameters<typeof ProvisioningDeviceClient.create>[3];
type RegistrationRequest = Parameters<InstanceType<typeof MqttWs>['registrationRequest']>[0];

/**
 * The SDK's MqttWs always dials `wss://{host}:443/$iothub/websocket` (`_getConnectionUri` in
 * azure-iot-provisioning-device-mqtt/dist/mqtt_ws.js). The emulator listens on an ephemeral port, so this
 * subclass overrides that one method to keep the port given in the provisioning host ("localhost:PORT").
 * Everything else, path and subprotocol included, is the SDK's own code.
 */
class MqttWsOnAnyPort extends MqttWs {
  protected override _getConnectionUri(request: RegistrationRequest): string {
    return `wss://${request.provisioningHost}/$iothub/websocket`;
  }
}

function sdkTransport(kind: 'Mqtt' | 'MqttWs', caPem: string): Transport {
  const base = new MqttBase();
  base.setOptions({ ca: caPem });
  // The Mqtt transport dials `mqtts://{provisioningHost}`: a host with a port works as it is.
  return kind === 'Mqtt' ? new Mqtt(base) : new MqttWsOnAnyPort(base);
}

interface SdkResult {
  assignedHub?: string;
  deviceId?: string;
  registrationId?: string;
  status?: string;
  payload?: unknown;
}

function registerWithKey(
  emulator: TestEmulator,
  kind: 'Mqtt' | 'MqttWs',
  registrationId: string,
  key: string,
  payload?: unknown,
): Promise<SdkResult> {
  const port = kind === 'Mqtt' ? emulator.mqttPort : emulator.wssPort;
  const client = ProvisioningDeviceClient.create(
    `localhost:${port}`,
    emulator.idScope,
    sdkTransport(kind, emulator.caCertPem),
    // Two copies of azure-iot-common in the SDK's tree make the nominal types differ; the objects fit.
    new SymmetricKeySecurityClient(registrationId, key) as unknown as SecurityClient,
  );
  if (payload !== undefined)
    client.setProvisioningPayload(payload as Parameters<typeof client.setProvisioningPayload>[0]);
  return client.register() as Promise<SdkResult>;
}

function registerWithCertificate(
  emulator: TestEmulator,
  kind: 'Mqtt' | 'MqttWs',
  registrationId: string,
  certificate: CertificateAndKey,
): Promise<SdkResult> {
  const port = kind === 'Mqtt' ? emulator.mqttPort : emulator.wssPort;
  const client = ProvisioningDeviceClient.create(
    `localhost:${port}`,
    emulator.idScope,
    sdkTransport(kind, emulator.caCertPem),
    new X509Security(registrationId, { cert: certificate.certPem, key: certificate.keyPem }),
  );
  return client.register() as Promise<SdkResult>;
}

/** The SDK reports a refused CONNACK as an error whose message names the refusal. */
async function assertRefused(registration: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(registration, (error: Error) => {
    assert.match(`${error.name}: ${error.message}`, pattern);
    return true;
  });
}

const INDIVIDUAL_KEY = Buffer.from('individual-device-primary-key-32').toString('base64');
const INDIVIDUAL_SECONDARY_KEY = Buffer.from('individual-device-secondary-key!').toString('base64');
const GROUP_KEY = Buffer.from('symmetric-group-key-for-sdk-test').toString('base64');

describe('the official Azure IoT Node SDK against the emulator', () => {
  let emulator: TestEmulator;
  let groupCa: CertificateAndKey;
  let intermediateCa: CertificateAndKey;

  before(async () => {
    groupCa = await createRootCa({ commonName: 'sdk test group CA' });
    intermediateCa = await issueCertificate({
      issuer: groupCa,
      commonName: 'sdk test intermediate',
      usage: 'ca',
    });
    emulator = await startTestEmulator({
      config: {
        idScope: '0ne0000SDK1',
        iotHubs: ['hub-a.azure-devices.net', 'hub-b.azure-devices.net'],
        individualEnrollments: [
          {
            registrationId: 'sdk-individual',
            attestation: {
              type: 'symmetricKey',
              primaryKey: INDIVIDUAL_KEY,
              secondaryKey: INDIVIDUAL_SECONDARY_KEY,
            },
            deviceId: 'sdk-individual-device',
            iotHubs: ['static-hub.azure-devices.net'],
            allocationPolicy: 'static',
          },
        ],
        enrollmentGroups: [
          {
            enrollmentGroupId: 'sdk-symmetric-group',
            attestation: { type: 'symmetricKey', primaryKey: GROUP_KEY },
          },
          {
            enrollmentGroupId: 'sdk-x509-group',
            attestation: { type: 'x509', caCertificate: groupCa.certPem },
          },
        ],
      },
    });
  });

  after(() => emulator.close());

  for (const kind of ['Mqtt', 'MqttWs'] as const) {
    test(`${kind}: an individual symmetric-key enrollment registers with its device id and static hub`, async () => {
      const result = await registerWithKey(emulator, kind, 'sdk-individual', INDIVIDUAL_KEY);
      assert.equal(result.status, 'assigned');
      assert.equal(result.deviceId, 'sdk-individual-device');
      assert.equal(result.assignedHub, 'static-hub.azure-devices.net');
    });

    test(`${kind}: a device of a symmetric-key group registers with its derived key`, async () => {
      const registrationId = `sdk-group-${kind.toLowerCase()}`;
      const result = await registerWithKey(
        emulator,
        kind,
        registrationId,
        deriveDeviceKey(GROUP_KEY, registrationId),
        {
          model: 'thermostat',
        },
      );
      assert.equal(result.status, 'assigned');
      assert.equal(result.deviceId, registrationId);
      assert.ok(['hub-a.azure-devices.net', 'hub-b.azure-devices.net'].includes(result.assignedHub ?? ''));
      // No payload in the enrollment: the device's custom allocation data comes back.
      assert.deepEqual(result.payload, { model: 'thermostat' });
    });

    test(`${kind}: an X.509 device whose chain leads to the group CA registers as its CN`, async () => {
      const registrationId = `sdk-x509-${kind.toLowerCase()}`;
      const leaf = await issueCertificate({
        issuer: intermediateCa,
        commonName: registrationId,
        usage: 'client',
      });
      // The device sends its certificate followed by the intermediate, as devices do.
      const chain = { certPem: leaf.certPem + intermediateCa.certPem, keyPem: leaf.keyPem };
      const result = await registerWithCertificate(emulator, kind, registrationId, chain);
      assert.equal(result.status, 'assigned');
      assert.equal(result.deviceId, registrationId);
    });

    test(`${kind}: a wrong key is refused by CONNACK (not authorized), not by a timeout`, async () => {
      const wrongKey = Buffer.from('this-is-not-the-enrolled-key-!!!').toString('base64');
      await assertRefused(registerWithKey(emulator, kind, 'sdk-individual', wrongKey), /not authori[sz]ed/i);
    });

    test(`${kind}: an untrusted self-signed certificate is refused by CONNACK`, async () => {
      const registrationId = `sdk-untrusted-${kind.toLowerCase()}`;
      const selfSigned = await createSelfSignedCertificate({ commonName: registrationId, usage: 'client' });
      await assertRefused(
        registerWithCertificate(emulator, kind, registrationId, selfSigned),
        /not authori[sz]ed/i,
      );
    });

    test(`${kind}: a certificate whose CN is not the registration id is refused by CONNACK`, async () => {
      const leaf = await issueCertificate({ issuer: groupCa, commonName: 'somebody-else', usage: 'client' });
      await assertRefused(
        registerWithCertificate(emulator, kind, `sdk-cn-mismatch-${kind.toLowerCase()}`, leaf),
        /not authori[sz]ed/i,
      );
    });
  }

  test('the secondary key of an individual enrollment is accepted too', async () => {
    const result = await registerWithKey(emulator, 'Mqtt', 'sdk-individual', INDIVIDUAL_SECONDARY_KEY);
    assert.equal(result.status, 'assigned');
  });

  test('the SDK registers against the demo group key of an emulator without configuration', async () => {
    const demo = await startTestEmulator();
    try {
      const result = await registerWithKey(
        demo,
        'MqttWs',
        'quick-start-device',
        deriveDeviceKey(DEMO_GROUP_KEY, 'quick-start-device'),
      );
      assert.equal(result.status, 'assigned');
      assert.equal(result.deviceId, 'quick-start-device');
    } finally {
      await demo.close();
    }
  });
});

describe('the official SDK against a throttling, slow-to-assign emulator', () => {
  test('throttled requests (429 with retry-after) still end assigned', async () => {
    const emulator = await startTestEmulator({
      throttle: { firstRequests: 2, fraction: 0.5, retryAfterSeconds: 0 },
      pollsBeforeAssignment: 2,
    });
    try {
      const registrationId = 'sdk-throttled';
      const result = await registerWithKey(
        emulator,
        'Mqtt',
        registrationId,
        deriveDeviceKey(DEMO_GROUP_KEY, registrationId),
      );
      assert.equal(result.status, 'assigned');
      assert.equal(emulator.registrations().length, 1);
    } finally {
      await emulator.close();
    }
  });
});
