// The IO layer: opens the byte stream that carries MQTT. `ws` is loaded only when a WebSocket opens.
export { mqttTlsIo } from './mqtt-tls-io.js';
export { mqttWsIo } from './mqtt-ws-io.js';
export { openProxyTunnel, type ProxyTunnelOptions } from './proxy-tunnel.js';
export { openTcp, type TcpOptions } from './tcp.js';
export { openTls } from './tls.js';
export {
  DEFAULT_OPEN_TIMEOUT_MS,
  DEFAULT_TLS_PORT,
  DEFAULT_WS_PATH,
  DEFAULT_WS_PORT,
  type IoFactory,
  type IoOptions,
  type ProxyOptions,
} from './types.js';
export { openWebSocket, type WebSocketIoOptions } from './websocket.js';
