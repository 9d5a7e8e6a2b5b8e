// What every step of one transport's run needs, and what earlier steps learned for later ones.
import type { ResolvedSecurity } from '../client/security.js';
import type { TransportKind } from '../client/types.js';
import type { IoOptions, ProxyOptions } from '../io/types.js';
import type { PeerCertificateSummary } from './certificates.js';
import type { MqttProbe } from './mqtt-probe.js';
import type { DiagnoseOptions } from './types.js';

/** How the device authenticates, as the user gave it (a group key is a symmetric key once derived). */
export type CredentialKind = 'symmetricKey' | 'groupKey' | 'x509';

export interface DiagnoseContext {
  options: DiagnoseOptions;
  transport: TransportKind;
  host: string;
  port: number;
  idScope: string;
  registrationId: string;
  apiVersion: string;
  credential: CredentialKind;
  security: ResolvedSecurity;
  /** The key as given (a group key for `groupKey`), for the "is it the other kind of key" retry. */
  givenKey: string | undefined;
  proxy: ProxyOptions | undefined;
  trustedCa: string | undefined;
  trustMode: 'replace' | 'extend';
  insecure: boolean;
  stepTimeoutMs: number;
  signal: AbortSignal | undefined;
  /** The device certificate's validity as read here, for the CONNACK explanations. */
  clientCertificate: { notBefore: string; notAfter: string; commonName: string | undefined } | undefined;
  // Learned along the way.
  peerChain?: PeerCertificateSummary[];
  /** Set when TLS completed but the chain is not trusted: the verification error's code. */
  untrusted?: string;
  /** The server's `Date` header from the WebSocket upgrade. */
  serverDate?: string;
  /** The MQTT connection the connect step opened, for the subscribe step. */
  probe?: MqttProbe;
}

/** The IO options for this transport's endpoint; the verification as configured unless told otherwise. */
export function ioOptions(context: DiagnoseContext, overrides: Partial<IoOptions> = {}): IoOptions {
  const options: IoOptions = {
    host: context.host,
    port: context.port,
    trustMode: context.trustMode,
    timeoutMs: context.stepTimeoutMs,
    ...(context.trustedCa === undefined ? {} : { trustedCa: context.trustedCa }),
    ...(context.proxy === undefined ? {} : { proxy: context.proxy }),
    ...(context.insecure ? { insecureSkipVerify: true } : {}),
    ...(context.signal === undefined ? {} : { signal: context.signal }),
    ...(context.security.kind === 'x509'
      ? {
          clientCertificate: {
            certPem: context.security.certificate,
            keyPem: context.security.privateKey,
          },
        }
      : {}),
  };
  return { ...options, ...overrides };
}
