// The MQTT-over-WebSocket provider: the spec module (prov_transport_mqtt_ws_client). Every operation
// delegates to the common transport; the provider contributes only its IO (TLS + WebSocket,
// optionally through an HTTP CONNECT proxy) and port 443.
import { mqttWsIo } from '../io/mqtt-ws-io.js';
import { DEFAULT_WS_PORT } from '../io/types.js';
import { commonMqtt, type MqttTransportHandle } from './common.js';
import type { TransportIoBinding, TransportProvider } from './types.js';

const wsBinding: TransportIoBinding = {
  transportIo: mqttWsIo,
  defaultPort: DEFAULT_WS_PORT,
  transportName: 'mqtt-ws',
};

export function mqttWsProtocol(): TransportProvider<MqttTransportHandle> {
  return {
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_001: create the common transport with the WebSocket IO.
    create: (options) => commonMqtt.create(options, wsBinding),
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_002
    destroy: commonMqtt.destroy,
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_003
    open: commonMqtt.open,
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_004
    close: commonMqtt.close,
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_005
    registerDevice: commonMqtt.registerDevice,
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_006
    getOperationStatus: commonMqtt.getOperationStatus,
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_007
    doWork: commonMqtt.doWork,
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_008
    setTrace: commonMqtt.setTrace,
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_009
    x509Cert: commonMqtt.x509Cert,
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_010
    setTrustedCert: commonMqtt.setTrustedCert,
    // PROV_TRANSPORT_MQTT_WS_CLIENT_07_011
    setProxy: commonMqtt.setProxy,
    setOption: commonMqtt.setOption,
  };
}
