// The options every IO factory takes, and the factory type the transport receives (the spec's
// `mqtt_transport_ws_io`): how the WebSocket, TLS and proxy variants differ, and nothing more.
import type { Duplex } from 'node:stream';

/** An HTTP proxy that tunnels with CONNECT; Basic authentication when `username` is set. */
export interface ProxyOptions {
  /** Host name, IPv4 or IPv6 literal (with or without brackets). */
  host: string;
  port: number;
  username?: string;
  password?: string;
}

export interface IoOptions {
  /** DPS host name: TLS SNI (none for IP literals), certificate check, CONNECT target, WebSocket Host. */
  host: string;
  /** 443 for WebSocket, 8883 for TLS (DEFAULT_WS_PORT, DEFAULT_TLS_PORT). */
  port: number;
  /** PEM, one or more certificates (set_trusted_cert). */
  trustedCa?: string;
  /** 'replace' (default): only trustedCa is trusted; 'extend': trustedCa and Node's bundled roots. */
  trustMode?: 'replace' | 'extend';
  /** The device's X.509 identity (x509_cert). */
  clientCertificate?: { certPem: string; keyPem: string; passphrase?: string };
  proxy?: ProxyOptions;
  /** Accept any server certificate. For debugging only: anyone on the path can read the device's secrets. */
  insecureSkipVerify?: boolean;
  /**
   * Resume the TLS session of an earlier connection to the same endpoint, with the same trust and client
   * identity, made by this process (tls-session-cache.ts). Default true; false makes a full handshake
   * and remembers nothing (what `diagnose` does to show the server's certificate chain).
   */
  tlsSessionResumption?: boolean;
  /** Aborts the open and destroys every socket it made. */
  signal?: AbortSignal;
  /** Bound on the whole open (proxy, TCP, TLS, WebSocket), in milliseconds. Default DEFAULT_OPEN_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** Opens the byte stream that carries MQTT; rejects with a typed DpsError and nothing left open. */
export type IoFactory = (options: IoOptions) => Promise<Duplex>;

export const DEFAULT_WS_PORT = 443;
export const DEFAULT_TLS_PORT = 8883;
export const DEFAULT_OPEN_TIMEOUT_MS = 30_000;
/** Where DPS (and IoT Hub) serve MQTT over WebSocket. */
export const DEFAULT_WS_PATH = '/$iothub/websocket';
