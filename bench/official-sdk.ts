// The official Azure IoT Node SDK, registering one device with a symmetric key: the same minimal use as
// bench/workers/official-register.cjs, in-process (for the round-trip benchmark).
import { createRequire } from 'node:module';

// The SDK packages are CommonJS; createRequire keeps their untyped corners out of the ESM import graph.
const require = createRequire(import.meta.url);

type ProvisioningModule = typeof import('azure-iot-provisioning-device');
type MqttModule = typeof import('azure-iot-provisioning-device-mqtt');
type SymmetricKeyModule = typeof import('azure-iot-security-symmetric-key');
type MqttBaseModule = typeof import('azure-iot-mqtt-base');
type SecurityClient = Parameters<ProvisioningModule['ProvisioningDeviceClient']['create']>[3];
type RegistrationRequest = Parameters<InstanceType<MqttModule['MqttWs']>['registrationRequest']>[0];

export interface OfficialRegistration {
  /** `host:port` of the DPS endpoint (the emulator, or a proxy in front of it). */
  endpoint: string;
  idScope: string;
  registrationId: string;
  deviceKey: string;
  caPem: string;
  transport: 'mqtt-ws' | 'mqtt';
}

export interface OfficialResult {
  status?: string;
  assignedHub?: string;
  deviceId?: string;
}

export function registerWithOfficialSdk(options: OfficialRegistration): Promise<OfficialResult> {
  const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device') as ProvisioningModule;
  const { Mqtt, MqttWs } = require('azure-iot-provisioning-device-mqtt') as MqttModule;
  const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key') as SymmetricKeyModule;
  // The SDK's own MQTT layer: handing a configured one to the transport is its way to trust another CA.
  const { MqttBase } = require('azure-iot-mqtt-base') as MqttBaseModule;

  /** MqttWs always dials port 443 (`_getConnectionUri`); only the URI changes, to keep the given port. */
  class MqttWsOnAnyPort extends MqttWs {
    protected override _getConnectionUri(request: RegistrationRequest): string {
      return `wss://${request.provisioningHost}/$iothub/websocket`;
    }
  }

  const base = new MqttBase();
  base.setOptions({ ca: options.caPem });
  const client = ProvisioningDeviceClient.create(
    options.endpoint,
    options.idScope,
    options.transport === 'mqtt' ? new Mqtt(base) : new MqttWsOnAnyPort(base),
    // Two copies of azure-iot-common in the SDK's tree make the nominal types differ; the objects fit.
    new SymmetricKeySecurityClient(options.registrationId, options.deviceKey) as unknown as SecurityClient,
  );
  return client.register() as Promise<OfficialResult>;
}
