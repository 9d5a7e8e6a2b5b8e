// dps-mqtt: the Azure IoT Device Provisioning Service over MQTT and MQTT-over-WebSocket.
// Loads the CSR code and the fleet scheduler on first call only: importing dps-mqtt does not pay for them.
export { createCertificateRequest } from './client/certificate-options.js';
export { deviceConnectionString, resolveDeviceKey } from './client/connection-string.js';
export { DEFAULT_ENDPOINT, isRetryable, ProvisioningClient, register } from './client/register.js';
export type * from './client/types.js';
export { registerFleet } from './fleet/register-fleet.js';
export type * from './fleet/types.js';
export type { IoFactory, IoOptions, ProxyOptions } from './io/types.js';
export * from './protocol/errors.js';
export { redact } from './protocol/redact.js';
export type { OperationStatus, RegistrationState, RegistrationStatus } from './protocol/responses.js';
export { createSasToken, deriveDeviceKey } from './protocol/sas.js';
export { CommonMqttTransport, commonMqtt, type MqttTransportHandle } from './transport/common.js';
export { mqttProtocol } from './transport/mqtt-tls.js';
export { mqttWsProtocol } from './transport/mqtt-ws.js';
export type * from './transport/types.js';
