// The minimal official-SDK device: what a user writes to register one device with a symmetric key.
// Used by the cold-process benchmark as a whole process, so it is plain CommonJS, run by plain `node`.
// Usage: node official-register.cjs HOST:PORT ID_SCOPE REGISTRATION_ID DEVICE_KEY CA_PATH Mqtt|MqttWs
const { readFileSync } = require('node:fs');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Mqtt, MqttWs } = require('azure-iot-provisioning-device-mqtt');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
// The SDK's own MQTT layer: handing a configured one to the transport is its way to trust another CA.
const { MqttBase } = require('azure-iot-mqtt-base');

const [endpoint, idScope, registrationId, deviceKey, caPath, kind] = process.argv.slice(2);

// MqttWs always dials port 443; the emulator listens on an ephemeral port. Only the URI changes.
class MqttWsOnAnyPort extends MqttWs {
  _getConnectionUri(request) {
    return `wss://${request.provisioningHost}/$iothub/websocket`;
  }
}

const base = new MqttBase();
base.setOptions({ ca: readFileSync(caPath, 'utf8') });
const transport = kind === 'Mqtt' ? new Mqtt(base) : new MqttWsOnAnyPort(base);
const client = ProvisioningDeviceClient.create(
  endpoint,
  idScope,
  transport,
  new SymmetricKeySecurityClient(registrationId, deviceKey),
);
client.register().then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  },
  (error) => {
    process.stderr.write(`${error.name}: ${error.message}\n`);
    process.exitCode = 1;
  },
);
