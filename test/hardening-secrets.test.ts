// Issue 6, secret hygiene: full registrations (symmetric key individual and group, X.509, through an HTTP
// proxy with a Basic-auth password, and failing runs) at the highest verbosity: the client's trace and
// progress, its errors (message, hint, cause chain), the emulator's log and the CLI's stdout and stderr
// with --trace. No output may hold a key, a SAS signature (raw or URL-encoded), the private key or the
// proxy password (raw or in its Basic form). The one exception is the CLI's --json result line, whose
// connection string carries the device key because that is the output the user asked for.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createProxy, type ProxyServer } from 'proxy';
import { register } from '../src/client/register.js';
import type { ProvisioningClientOptions } from '../src/client/types.js';
import { type CertificateAndKey, issueCertificate } from '../src/emulator/pki/pki.js';
import { computeSasSignature, deriveDeviceKey, sasResource, uriEncode } from '../src/protocol/sas.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const ID_SCOPE = '0ne00000000';
const secretKey = (): string => randomBytes(32).toString('base64');

const individualId = 'secret-individual';
const individualKey = secretKey();
const groupId = 'secret-group';
const groupKey = secretKey();
const groupDeviceId = 'secret-group-device';
const groupDeviceKey = deriveDeviceKey(groupKey, groupDeviceId);
const proxyUser = 'proxyuser';
const proxyPassword = `Pr0xy-${randomBytes(9).toString('hex')}`;
const wrongProxyPassword = `Wr0ng-${randomBytes(9).toString('hex')}`;
const startedAtSeconds = Math.floor(Date.now() / 1000);

describe('secret hygiene at the highest verbosity', () => {
  let emulator: TestEmulator;
  let proxy: ProxyServer;
  let proxyPort = 0;
  let device: CertificateAndKey;
  let files: { path: string; remove(): Promise<void> };
  const emulatorLog: string[] = [];
  const output: Array<{ source: string; text: string }> = [];
  const outcomes: string[] = [];
  const excludedResults: string[] = [];

  before(async () => {
    emulator = await startTestEmulator({
      logger: (entry) => emulatorLog.push(JSON.stringify(entry)),
      enrollments: {
        individualEnrollments: [
          { registrationId: individualId, attestation: { type: 'symmetricKey', primaryKey: individualKey } },
        ],
        enrollmentGroups: [
          { enrollmentGroupId: groupId, attestation: { type: 'symmetricKey', primaryKey: groupKey } },
        ],
      },
    });
    device = await issueCertificate({
      issuer: emulator.pki.ca,
      commonName: 'secret-x509-device',
      usage: 'client',
    });
    proxy = createProxy(http.createServer());
    const expected = `Basic ${Buffer.from(`${proxyUser}:${proxyPassword}`).toString('base64')}`;
    proxy.authenticate = (request) => request.headers['proxy-authorization'] === expected;
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    proxyPort = (proxy.address() as AddressInfo).port;
    files = await temporaryDirectory('dps-mqtt-secrets-');
    await writeFile(join(files.path, 'device.pem'), device.certPem);
    await writeFile(join(files.path, 'device-key.pem'), device.keyPem);
  });

  after(async () => {
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
    await emulator.close();
    await files.remove();
  });

  const proxyUrl = (password: string): string => `http://${proxyUser}:${password}@127.0.0.1:${proxyPort}`;

  function base(
    transport: 'mqtt' | 'mqtt-ws',
  ): Pick<ProvisioningClientOptions, 'idScope' | 'endpoint' | 'transport' | 'trustedCa' | 'timeoutMs'> {
    return {
      idScope: ID_SCOPE,
      endpoint: `127.0.0.1:${transport === 'mqtt' ? emulator.mqttPort : emulator.wssPort}`,
      transport,
      trustedCa: emulator.caCertPem,
      timeoutMs: 8000,
    };
  }

  /** Everything an error exposes: message, hint, stack, and its causes. */
  function describeError(error: unknown): string {
    const parts: string[] = [];
    let current: unknown = error;
    for (let depth = 0; current !== undefined && depth < 5; depth++) {
      parts.push(String(current));
      if (current instanceof Error) {
        parts.push(
          current.stack ?? '',
          JSON.stringify(current),
          String((current as { hint?: unknown }).hint),
        );
        current = current.cause;
      } else {
        current = undefined;
      }
    }
    return parts.join('\n');
  }

  async function library(
    name: string,
    options: ProvisioningClientOptions,
    expectSuccess: boolean,
  ): Promise<void> {
    const lines: string[] = [];
    try {
      const result = await register({
        ...options,
        trace: (line) => lines.push(line),
        onProgress: (event) => lines.push(JSON.stringify(event)),
      });
      assert.ok(expectSuccess, `${name} succeeded unexpectedly`);
      // The result itself is output too (a caller logs it).
      lines.push(JSON.stringify(result));
      outcomes.push(`${name}: assigned`);
    } catch (error) {
      assert.ok(!expectSuccess, `${name} failed: ${String(error)}`);
      lines.push(describeError(error));
      outcomes.push(`${name}: ${(error as { code?: string }).code}`);
    }
    assert.ok(
      lines.some((line) => line.includes('CONNECT') || line.includes('proxy')),
      `${name}: no trace`,
    );
    output.push({ source: `register() ${name}`, text: lines.join('\n') });
  }

  async function cli(name: string, args: string[], expectedCode: number): Promise<void> {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        CLI,
        'register',
        '--trace',
        '--json',
        '--ca',
        emulator.pki.caPath,
        '--id-scope',
        ID_SCOPE,
        '--timeout',
        '8',
        ...args,
      ],
      {
        env: { ...process.env, HTTPS_PROXY: '', https_proxy: '', NO_PROXY: '', DEBUG: 'dps-mqtt*' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, expectedCode, `${name}: exit ${code}\n${stderr}`);
    assert.match(stderr, /CONNECT|proxy/, `${name}: no trace on stderr`);
    // The requested result (with the device connection string) is excluded; everything else is scanned.
    const isResult = (line: string): boolean =>
      code === 0 && line.startsWith('{') && line.includes('"connectionString"');
    const lines = stdout.split('\n');
    excludedResults.push(...lines.filter(isResult));
    const scanned = lines.filter((line) => !isResult(line)).join('\n');
    output.push(
      { source: `CLI ${name} stdout`, text: scanned },
      { source: `CLI ${name} stderr`, text: stderr },
    );
    outcomes.push(`CLI ${name}: exit ${code}`);
  }

  test('full registrations and failures print no key, signature, private key or proxy password', async () => {
    await Promise.all([
      library(
        'individual key, mqtt-ws',
        { ...base('mqtt-ws'), registrationId: individualId, security: { symmetricKey: individualKey } },
        true,
      ),
      library(
        'group key, mqtt',
        { ...base('mqtt'), registrationId: groupDeviceId, security: { groupKey } },
        true,
      ),
      library(
        'X.509, mqtt',
        { ...base('mqtt'), security: { certificate: device.certPem, privateKey: device.keyPem } },
        true,
      ),
      library(
        'group key through the proxy, mqtt-ws',
        {
          ...base('mqtt-ws'),
          registrationId: groupDeviceId,
          security: { groupKey },
          proxy: proxyUrl(proxyPassword),
        },
        true,
      ),
      library(
        'X.509 through the proxy, mqtt',
        {
          ...base('mqtt'),
          security: { certificate: device.certPem, privateKey: device.keyPem },
          proxy: proxyUrl(proxyPassword),
        },
        true,
      ),
      library(
        'wrong key',
        { ...base('mqtt-ws'), registrationId: individualId, security: { symmetricKey: groupKey } },
        false,
      ),
      library(
        'wrong proxy password',
        {
          ...base('mqtt-ws'),
          registrationId: individualId,
          security: { symmetricKey: individualKey },
          proxy: proxyUrl(wrongProxyPassword),
        },
        false,
      ),
    ]);
    const wss = ['--endpoint', `127.0.0.1:${emulator.wssPort}`];
    const mqtt = ['--endpoint', `127.0.0.1:${emulator.mqttPort}`, '--transport', 'mqtt'];
    await Promise.all([
      cli('individual key', [...wss, '--registration-id', individualId, '--symmetric-key', individualKey], 0),
      cli(
        'group key via proxy',
        [
          ...wss,
          '--registration-id',
          groupDeviceId,
          '--group-key',
          groupKey,
          '--proxy',
          proxyUrl(proxyPassword),
        ],
        0,
      ),
      cli(
        'X.509',
        [...mqtt, '--cert', join(files.path, 'device.pem'), '--key', join(files.path, 'device-key.pem')],
        0,
      ),
      cli('wrong key', [...mqtt, '--registration-id', individualId, '--symmetric-key', groupDeviceKey], 3),
      cli(
        'wrong proxy password',
        [
          ...wss,
          '--registration-id',
          individualId,
          '--symmetric-key',
          individualKey,
          '--proxy',
          proxyUrl(wrongProxyPassword),
        ],
        6,
      ),
    ]);
    output.push({ source: 'emulator log', text: emulatorLog.join('\n') });

    const endedAtSeconds = Math.floor(Date.now() / 1000);
    const forbidden = new Map<string, string>([
      ['individual key', individualKey],
      ['group key', groupKey],
      ['derived group device key', groupDeviceKey],
      ['proxy password', proxyPassword],
      ['wrong proxy password', wrongProxyPassword],
      ['proxy Basic credentials', Buffer.from(`${proxyUser}:${proxyPassword}`).toString('base64')],
      ['wrong proxy Basic credentials', Buffer.from(`${proxyUser}:${wrongProxyPassword}`).toString('base64')],
    ]);
    // The private key's PEM body, line by line (a partial key is a leak too).
    for (const [index, line] of device.keyPem.split('\n').entries()) {
      if (line.length >= 32 && !line.startsWith('-----')) forbidden.set(`private key line ${index}`, line);
    }
    // Every SAS signature the runs could have made: the token expires an hour after it is created.
    for (const [who, key] of [
      [individualId, individualKey],
      [groupDeviceId, groupDeviceKey],
      [individualId, groupKey], // the wrong-key run signs with the group key
      [individualId, groupDeviceKey],
    ] as const) {
      const resource = uriEncode(sasResource(ID_SCOPE, who));
      for (let expiry = startedAtSeconds + 3590; expiry <= endedAtSeconds + 3610; expiry++) {
        forbidden.set(
          `SAS signature ${who}/${key.slice(0, 4)}@${expiry}`,
          computeSasSignature(key, resource, expiry),
        );
      }
    }
    const leaks: string[] = [];
    for (const { source, text } of output) {
      for (const [what, secret] of forbidden) {
        for (const form of new Set([secret, encodeURIComponent(secret)])) {
          if (text.includes(form)) leaks.push(`${source} contains the ${what}`);
        }
      }
    }
    assert.deepEqual(leaks, []);
    // The scan can see a key: the excluded --json results carry the device keys, as requested.
    assert.ok(excludedResults.some((line) => line.includes(individualKey)));
    assert.ok(excludedResults.some((line) => line.includes(groupDeviceKey)));
    assert.ok(emulatorLog.length > 10, 'the emulator logged');
    console.log(
      `# secrets: ${outcomes.length} runs scanned for ${forbidden.size} secret values, 0 leaks (${outcomes.join('; ')})`,
    );
  });
});
