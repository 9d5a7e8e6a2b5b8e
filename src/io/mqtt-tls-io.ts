import { openTls } from './tls.js';
import type { IoFactory } from './types.js';

/**
 * The IO of the MQTT-over-TLS transport (port 8883): the TLS socket itself is the Duplex. Through the
 * HTTP proxy when one is set, which no SDK offers for 8883 today.
 */
export const mqttTlsIo: IoFactory = (options) => openTls(options);
