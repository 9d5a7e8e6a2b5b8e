// The MQTT-over-TLS provider (port 8883): the same common transport, only the IO differs.
import { mqttTlsIo } from '../io/mqtt-tls-io.js';
import { DEFAULT_TLS_PORT } from '../io/types.js';
import { commonMqtt, type MqttTransportHandle } from './common.js';
import type { TransportIoBinding, TransportProvider } from './types.js';

const tlsBinding: TransportIoBinding = {
  transportIo: mqttTlsIo,
  defaultPort: DEFAULT_TLS_PORT,
  transportName: 'mqtt',
};

export function mqttProtocol(): TransportProvider<MqttTransportHandle> {
  return { ...commonMqtt, create: (options) => commonMqtt.create(options, tlsBinding) };
}
