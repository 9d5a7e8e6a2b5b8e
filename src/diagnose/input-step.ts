// Step 1, input: the checks register() makes before it touches the network, and the device
// certificate's validity as this machine's clock sees it. Builds one context per transport to check.
import { X509Certificate } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { resolveProxy } from '../client/proxy-from-env.js';
import { readPem, resolveSecurity } from '../client/security.js';
import type { TransportKind } from '../client/types.js';
import { InvalidInputError } from '../protocol/errors.js';
import { DEFAULT_API_VERSION } from '../protocol/username.js';
import { commonNameOf, validateApiVersion, validateIdScope } from '../protocol/validate.js';
import { parseEndpoint } from '../transport/common.js';
import type { CredentialKind, DiagnoseContext } from './context.js';
import { failureFrom, type StepOutcome } from './step.js';
import type { DiagnoseOptions, StepResult } from './types.js';

export const DEFAULT_DIAGNOSE_ENDPOINT = 'global.azure-devices-provisioning.net';
export const DEFAULT_STEP_TIMEOUT_MS = 10_000;
const DEFAULT_PORTS: Record<TransportKind, number> = { 'mqtt-ws': 443, mqtt: 8883 };

export function transportsOf(options: DiagnoseOptions): TransportKind[] {
  const transport = options.transport ?? 'mqtt-ws';
  return transport === 'both' ? ['mqtt-ws', 'mqtt'] : [transport];
}

export function inputStep(options: DiagnoseOptions): { result: StepResult; contexts: DiagnoseContext[] } {
  const startedAt = performance.now();
  let contexts: DiagnoseContext[] = [];
  let outcome: StepOutcome;
  try {
    const checked = checkInput(options);
    contexts = checked.contexts;
    outcome = checked.outcome;
  } catch (error) {
    outcome = failureFrom(error);
  }
  return {
    result: { step: 'input', durationMs: Math.round(performance.now() - startedAt), ...outcome },
    contexts,
  };
}

function checkInput(options: DiagnoseOptions): { outcome: StepOutcome; contexts: DiagnoseContext[] } {
  const transport = options.transport ?? 'mqtt-ws';
  if (transport !== 'mqtt-ws' && transport !== 'mqtt' && transport !== 'both') {
    throw new InvalidInputError(
      'transport',
      `transport ${JSON.stringify(transport)} is unknown: use mqtt-ws, mqtt or both`,
    );
  }
  const idScope = validateIdScope(options.idScope);
  const apiVersion = validateApiVersion(options.apiVersion ?? DEFAULT_API_VERSION);
  const security = resolveSecurity(options.security, options.registrationId);
  const given = options.security as Record<string, unknown>;
  const credential: CredentialKind =
    security.kind === 'x509' ? 'x509' : given.groupKey !== undefined ? 'groupKey' : 'symmetricKey';
  const givenKey =
    credential === 'groupKey'
      ? String(given.groupKey)
      : credential === 'symmetricKey'
        ? String(given.symmetricKey)
        : undefined;
  const trustedCa =
    options.trustedCa === undefined ? undefined : checkTrustedCa(readPem(options.trustedCa, 'trustedCa'));
  const endpointText = options.endpoint ?? DEFAULT_DIAGNOSE_ENDPOINT;
  const transports = transportsOf(options);
  if (transports.length > 1 && /:\d+$/.test(endpointText.trim())) {
    throw new InvalidInputError(
      'endpoint',
      'with transport both, give the ports with --ws-port and --mqtt-port, not in --endpoint (one port cannot serve both transports)',
    );
  }
  const warnings: string[] = [];
  const contexts = transports.map((kind): DiagnoseContext => {
    const portOption = kind === 'mqtt' ? options.mqttPort : options.webSocketPort;
    const { host, port: endpointPort } = parseEndpoint(endpointText, portOption ?? DEFAULT_PORTS[kind]);
    const port = transports.length > 1 ? (portOption ?? DEFAULT_PORTS[kind]) : endpointPort;
    return {
      options,
      transport: kind,
      host,
      port,
      idScope,
      registrationId: security.registrationId,
      apiVersion,
      credential,
      security,
      givenKey,
      proxy: resolveProxy(options.proxy, host, options.env ?? process.env),
      trustedCa,
      trustMode: options.trustMode ?? 'replace',
      insecure: options.insecureSkipVerify === true,
      stepTimeoutMs: options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS,
      signal: options.signal,
      clientCertificate: undefined,
    };
  });
  let credentialText: string;
  const details: NonNullable<StepOutcome['details']> = {
    idScope,
    registrationId: security.registrationId,
    credential,
    apiVersion,
  };
  if (security.kind === 'x509') {
    const leaf = new X509Certificate(security.certificate);
    const validity = {
      notBefore: new Date(leaf.validFrom).toISOString(),
      notAfter: new Date(leaf.validTo).toISOString(),
      commonName: commonNameOf(security.certificate),
    };
    for (const context of contexts) context.clientCertificate = validity;
    details.certificate = {
      subject: leaf.subject.replace(/\n/g, ', '),
      issuer: leaf.issuer.replace(/\n/g, ', '),
      notBefore: validity.notBefore,
      notAfter: validity.notAfter,
    };
    credentialText = `X.509 certificate CN=${validity.commonName ?? ''} (valid ${validity.notBefore} to ${validity.notAfter})`;
    const now = Date.now();
    if (Date.parse(validity.notAfter) < now) {
      warnings.push(
        `the device certificate expired on ${validity.notAfter} (this machine's clock reads ${new Date(now).toISOString()})`,
      );
    } else if (Date.parse(validity.notBefore) > now) {
      warnings.push(
        `the device certificate is not valid before ${validity.notBefore} (this machine's clock reads ${new Date(now).toISOString()})`,
      );
    }
  } else {
    credentialText =
      credential === 'groupKey'
        ? `group key (the device key is derived for "${security.registrationId}")`
        : "symmetric key (an individual enrollment's key)";
  }
  const proxy = contexts[0]?.proxy;
  if (proxy !== undefined)
    details.proxy = `${proxy.host}:${proxy.port}${proxy.username === undefined ? '' : ' (with credentials)'}`;
  const summary = `ID scope ${idScope}, registration id "${security.registrationId}", ${credentialText}`;
  if (warnings.length > 0) {
    return {
      contexts,
      outcome: {
        status: 'warn',
        summary: `${summary}; ${warnings.join('; ')}`,
        details,
        hint: "DPS refuses a certificate outside its validity period: renew it, or set this machine's clock if it is wrong",
      },
    };
  }
  return { contexts, outcome: { status: 'ok', summary, details } };
}

function checkTrustedCa(pem: string): string {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new InvalidInputError(
      'trustedCa',
      'the CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
    );
  }
  for (const block of blocks) new X509Certificate(block);
  return pem;
}
