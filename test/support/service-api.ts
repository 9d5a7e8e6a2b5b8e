// The service API from a test's side: the official service SDK pointed at the emulator (with the agent
// docs/emulator.md shows), and raw HTTPS requests for what no SDK sends (bad tokens, bad documents).
import { Agent, request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import type { RunningEmulator } from '../../src/emulator/index.js';
import {
  createServiceSasToken,
  parseServiceConnectionString,
  type ServiceConnectionString,
} from '../../src/protocol/service-sas.js';

const require = createRequire(import.meta.url);
const { ProvisioningServiceClient } =
  require('azure-iot-provisioning-service') as typeof import('azure-iot-provisioning-service');

export type ServiceClient = InstanceType<typeof ProvisioningServiceClient>;

/** A service document as tests read it. */
export type Doc = Record<string, unknown>;

/** The value at a dotted path of a document (`attestation.symmetricKey.primaryKey`), or undefined. */
export function at(document: unknown, path: string): unknown {
  let value = document;
  for (const field of path.split('.')) {
    value =
      typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[field] : undefined;
  }
  return value;
}

/** The string at a dotted path ('' when absent). */
export function textAt(document: unknown, path: string): string {
  const value = at(document, path);
  return typeof value === 'string' ? value : '';
}

/**
 * The SDK dials port 443 of the connection string's HostName (`localhost`); an agent whose own `port`
 * option overrides the request's sends it to the emulator's port instead, trusting the emulator's CA.
 */
export function serviceClient(
  emulator: RunningEmulator,
  connectionString = emulator.serviceConnectionString,
): ServiceClient {
  const client = ProvisioningServiceClient.fromConnectionString(connectionString);
  const agent = new Agent({ port: emulator.wssPort, ca: emulator.caCertPem, keepAlive: false });
  (client as unknown as { _restApiClient: { setOptions(options: unknown): void } })._restApiClient.setOptions(
    {
      http: { agent },
    },
  );
  return client;
}

export function serviceCredentials(emulator: RunningEmulator): ServiceConnectionString {
  const parsed = parseServiceConnectionString(emulator.serviceConnectionString);
  if (parsed === undefined) throw new Error(`not a connection string: ${emulator.serviceConnectionString}`);
  return parsed;
}

/** A valid token for an hour, as the SDK makes it. */
export function validToken(emulator: RunningEmulator): string {
  return createServiceSasToken(serviceCredentials(emulator), Math.floor(Date.now() / 1000) + 3600);
}

export interface RawServiceResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/** One HTTPS request to the emulator's WebSocket port; `authorization: null` sends none. */
export function serviceRequest(
  emulator: RunningEmulator,
  options: {
    method: string;
    path: string;
    body?: string | object;
    authorization?: string | null;
    headers?: Record<string, string>;
  },
): Promise<RawServiceResponse> {
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  const authorization = options.authorization === undefined ? validToken(emulator) : options.authorization;
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        host: '127.0.0.1',
        port: emulator.wssPort,
        servername: 'localhost',
        ca: emulator.caCertPem,
        method: options.method,
        path: options.path,
        agent: false,
        headers: {
          host: 'localhost',
          ...(authorization === null ? {} : { authorization }),
          ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
          ...options.headers,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text === '' ? undefined : JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ statusCode: response.statusCode ?? 0, headers: response.headers, text, json });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
