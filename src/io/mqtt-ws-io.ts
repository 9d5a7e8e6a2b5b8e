import type { IoFactory } from './types.js';
import { openWebSocket } from './websocket.js';

/**
 * The IO of the MQTT-over-WebSocket transport (the spec's `mqtt_transport_ws_io`): TLS, through the
 * HTTP proxy when one is set (PROV_TRANSPORT_MQTT_WS_CLIENT_07_012), then the WebSocket upgrade to
 * `/$iothub/websocket` with subprotocol `mqtt`. A working Duplex on success (07_014); a typed error and
 * nothing left open on failure (07_013).
 */
export const mqttWsIo: IoFactory = (options) => openWebSocket(options);
