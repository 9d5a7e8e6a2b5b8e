// The transport providers, loaded on first use: a device that registers over TLS never pays for
// loading the WebSocket stack, and the other way round.
import type { MqttTransportHandle } from '../transport/common.js';
import type { TransportProvider } from '../transport/types.js';

export async function mqttWsProtocolLazy(): Promise<TransportProvider<MqttTransportHandle>> {
  return (await import('../transport/mqtt-ws.js')).mqttWsProtocol();
}

export async function mqttTlsProtocolLazy(): Promise<TransportProvider<MqttTransportHandle>> {
  return (await import('../transport/mqtt-tls.js')).mqttProtocol();
}
