// Bad service API requests get the service's status and error body ({ errorCode, trackingId, message,
// timestampUtc }) and change nothing already stored; enrollments made through the API survive a restart.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { runEmulatorCli } from '../src/emulator/cli.js';
import { register } from '../src/index.js';
import { createServiceSasToken, verifyServiceSasToken } from '../src/protocol/service-sas.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';
import {
  type Doc,
  type RawServiceResponse,
  serviceClient,
  serviceCredentials,
  serviceRequest,
  textAt,
} from './support/service-api.js';

const API = 'api-version=2021-10-01';
const KEY = Buffer.from('service-api-errors-primary-key!!').toString('base64');

function assertServiceError(response: RawServiceResponse, statusCode: number, message?: RegExp): void {
  assert.equal(response.statusCode, statusCode, response.text);
  assert.match(String(response.headers['content-type']), /^application\/json; charset=utf-8$/);
  const body = response.json as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['errorCode', 'message', 'timestampUtc', 'trackingId']);
  assert.equal(String(body.errorCode).slice(0, 3), String(statusCode));
  assert.match(String(body.trackingId), /^[0-9a-f-]{36}$/);
  assert.ok(!Number.isNaN(Date.parse(String(body.timestampUtc))));
  if (message !== undefined) assert.match(String(body.message), message);
}

describe('service API: bad requests change nothing', () => {
  let emulator: TestEmulator;
  let original: Record<string, unknown>;
  const path = `/enrollments/svc-guarded?${API}`;

  before(async () => {
    emulator = await startTestEmulator({ config: { idScope: '0ne0000SVC2' } });
    const created = await serviceRequest(emulator, {
      method: 'PUT',
      path,
      body: {
        registrationId: 'svc-guarded',
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: KEY, secondaryKey: KEY } },
      },
    });
    assert.equal(created.statusCode, 200, created.text);
    original = created.json as Record<string, unknown>;
  });

  after(() => emulator.close());

  /** The enrollment as it was created: same document, same ETag. */
  async function assertUnchanged(): Promise<void> {
    const read = await serviceRequest(emulator, { method: 'GET', path });
    assert.equal(read.statusCode, 200);
    assert.deepEqual(read.json, original);
  }

  const credentials = () => serviceCredentials(emulator);
  const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

  const refusedTokens: Array<[string, () => string | null, RegExp]> = [
    ['no Authorization header', () => null, /missing/],
    ['not a SharedAccessSignature', () => 'Bearer abc', /not a SharedAccessSignature/],
    [
      'a wrong signature',
      () =>
        createServiceSasToken(
          { ...credentials(), key: Buffer.from('not-the-service-key-not-the-key!').toString('base64') },
          inAnHour(),
        ),
      /signature/,
    ],
    [
      'an expired token',
      () => createServiceSasToken(credentials(), Math.floor(Date.now() / 1000) - 60),
      /expired/,
    ],
    [
      'another policy name',
      () => createServiceSasToken({ ...credentials(), keyName: 'registryReadWrite' }, inAnHour()),
      /skn/,
    ],
    [
      'another host',
      () =>
        createServiceSasToken(
          { ...credentials(), hostName: 'other.azure-devices-provisioning.net' },
          inAnHour(),
        ),
      /not this service/,
    ],
  ];
  for (const [name, token, message] of refusedTokens) {
    test(`${name}: 401 with the error body`, async () => {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const response = await serviceRequest(emulator, {
          method,
          path,
          authorization: token(),
          ...(method === 'PUT'
            ? { body: { registrationId: 'svc-guarded', attestation: { type: 'symmetricKey' } } }
            : {}),
        });
        assertServiceError(response, 401, message);
      }
      await assertUnchanged();
    });
  }

  test('a token with the resource URL-encoded, or raw, is accepted', async () => {
    for (const resourceEncoding of ['encoded', 'raw'] as const) {
      const response = await serviceRequest(emulator, {
        method: 'GET',
        path,
        authorization: createServiceSasToken(credentials(), inAnHour(), { resourceEncoding }),
      });
      assert.equal(response.statusCode, 200);
    }
  });

  test('the official SDK with a wrong key gets UnauthorizedError', async () => {
    const wrong = emulator.serviceConnectionString.replace(
      /SharedAccessKey=.*$/,
      `SharedAccessKey=${Buffer.from('a-wrong-service-key-of-32-bytes!').toString('base64')}`,
    );
    await assert.rejects(
      serviceClient(emulator, wrong).getIndividualEnrollment('svc-guarded'),
      (error: Error) => {
        assert.equal(error.name, 'UnauthorizedError');
        return true;
      },
    );
  });

  const badDocuments: Array<[string, string | object, RegExp]> = [
    ['malformed JSON', '{"registrationId": "svc-guarded", "attestation": ', /not valid JSON/],
    ['an empty body', '', /\(body\)/],
    ['an array', [1, 2], /\(body\)/],
    [
      'an unknown attestation kind',
      { registrationId: 'svc-guarded', attestation: { type: 'password' } },
      /attestation\.type/,
    ],
    ['no attestation', { registrationId: 'svc-guarded' }, /attestation/],
    [
      'provisioningStatus of the wrong type',
      { registrationId: 'svc-guarded', attestation: { type: 'symmetricKey' }, provisioningStatus: 1 },
      /provisioningStatus/,
    ],
    [
      'iotHubs not an array',
      {
        registrationId: 'svc-guarded',
        attestation: { type: 'symmetricKey' },
        iotHubs: 'hub.azure-devices.net',
      },
      /iotHubs/,
    ],
    [
      'a key that is not base64 of 16 to 64 bytes',
      {
        registrationId: 'svc-guarded',
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: 'c2hvcnQ=' } },
      },
      /attestation\.symmetricKey\.primaryKey/,
    ],
    [
      'a certificate that is not one',
      {
        registrationId: 'svc-guarded',
        attestation: {
          type: 'x509',
          x509: { clientCertificates: { primary: { certificate: 'bm90IGEgY2VydA==' } } },
        },
      },
      /attestation\.x509\.clientCertificates\.primary\.certificate/,
    ],
    [
      'a registration id that is not the path one',
      { registrationId: 'someone-else', attestation: { type: 'symmetricKey' } },
      /registrationId/,
    ],
    [
      'capabilities.iotEdge not a boolean',
      {
        registrationId: 'svc-guarded',
        attestation: { type: 'symmetricKey' },
        capabilities: { iotEdge: 'yes' },
      },
      /capabilities\.iotEdge/,
    ],
    [
      'custom allocation without its definition',
      { registrationId: 'svc-guarded', attestation: { type: 'symmetricKey' }, allocationPolicy: 'custom' },
      /customAllocationDefinition/,
    ],
  ];
  for (const [name, body, field] of badDocuments) {
    test(`${name}: 400 with a message naming the field`, async () => {
      const response = await serviceRequest(emulator, { method: 'PUT', path, body });
      assertServiceError(response, 400, field);
      await assertUnchanged();
    });
  }

  test('an enrollment group with TPM or client certificates is refused with 400', async () => {
    for (const attestation of [
      { type: 'tpm', tpm: { endorsementKey: 'AToAAQAL' } },
      { type: 'x509', x509: { clientCertificates: { primary: { certificate: 'x' } } } },
    ]) {
      const response = await serviceRequest(emulator, {
        method: 'PUT',
        path: `/enrollmentGroups/svc-bad-group?${API}`,
        body: { enrollmentGroupId: 'svc-bad-group', attestation },
      });
      assertServiceError(response, 400, /attestation/);
    }
    assertServiceError(
      await serviceRequest(emulator, { method: 'GET', path: `/enrollmentGroups/svc-bad-group?${API}` }),
      404,
    );
  });

  test('an ETag mismatch: 412 on PUT and DELETE, and If-Match * matches', async () => {
    const body = {
      registrationId: 'svc-guarded',
      attestation: { type: 'symmetricKey' },
      deviceId: 'changed',
    };
    for (const method of ['PUT', 'DELETE']) {
      const response = await serviceRequest(emulator, {
        method,
        path,
        ...(method === 'PUT' ? { body } : {}),
        headers: { 'if-match': '"not-the-etag"' },
      });
      assertServiceError(response, 412, /ETag/);
    }
    await assertUnchanged();
    // If-Match on an enrollment that does not exist cannot match.
    assertServiceError(
      await serviceRequest(emulator, {
        method: 'PUT',
        path: `/enrollments/svc-nobody?${API}`,
        body: { registrationId: 'svc-nobody', attestation: { type: 'symmetricKey' } },
        headers: { 'if-match': '*' },
      }),
      412,
    );
    // The ETag header carries the stored ETag, quoted.
    const read = await serviceRequest(emulator, { method: 'GET', path });
    assert.equal(read.headers.etag, `"${original.etag}"`);
  });

  test('a missing or malformed api-version: 400; an unknown route: 404; a wrong method: 405', async () => {
    assertServiceError(
      await serviceRequest(emulator, { method: 'GET', path: '/enrollments/svc-guarded' }),
      400,
      /api-version/,
    );
    assertServiceError(
      await serviceRequest(emulator, { method: 'GET', path: '/enrollments/svc-guarded?api-version=latest' }),
      400,
      /api-version/,
    );
    assertServiceError(
      await serviceRequest(emulator, { method: 'GET', path: `/enrollments/nobody?${API}` }),
      404,
    );
    assertServiceError(
      await serviceRequest(emulator, { method: 'GET', path: `/registrations/nobody?${API}` }),
      404,
    );
    assertServiceError(
      await serviceRequest(emulator, { method: 'GET', path: `/enrollments/a/b/c?${API}` }),
      404,
    );
    assertServiceError(await serviceRequest(emulator, { method: 'PATCH', path }), 405);
    await assertUnchanged();
  });

  test('a body above the limit: 413; a bad query or page size: 400', async () => {
    const huge = JSON.stringify({ registrationId: 'svc-guarded', padding: 'x'.repeat(300 * 1024) });
    assertServiceError(await serviceRequest(emulator, { method: 'PUT', path, body: huge }), 413);
    assertServiceError(
      await serviceRequest(emulator, {
        method: 'POST',
        path: `/enrollments/query?${API}`,
        body: { query: 'DROP TABLE' },
      }),
      400,
      /query/,
    );
    assertServiceError(
      await serviceRequest(emulator, {
        method: 'POST',
        path: `/enrollments/query?${API}`,
        body: { query: '*' },
        headers: { 'x-ms-max-item-count': '-1' },
      }),
      400,
      /x-ms-max-item-count/,
    );
    assertServiceError(
      await serviceRequest(emulator, {
        method: 'POST',
        path: `/enrollments/query?${API}`,
        body: { query: '*' },
        headers: { 'x-ms-continuation': 'garbage' },
      }),
      400,
      /x-ms-continuation/,
    );
    await assertUnchanged();
  });

  test('any JSON document: an answer of 200 or 400, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue(),
          fc.record({
            registrationId: fc.constant('svc-fuzzed'),
            attestation: fc.oneof(
              fc.jsonValue(),
              fc.record({ type: fc.constantFrom('symmetricKey', 'x509', 'tpm'), x509: fc.jsonValue() }),
            ),
            iotHubs: fc.jsonValue(),
            initialTwin: fc.jsonValue(),
            reprovisionPolicy: fc.jsonValue(),
          }),
        ),
        async (document) => {
          const response = await serviceRequest(emulator, {
            method: 'PUT',
            path: `/enrollments/svc-fuzzed?${API}`,
            body: JSON.stringify(document),
          });
          assert.ok([200, 400].includes(response.statusCode), response.text);
        },
      ),
      { numRuns: 60 },
    );
    await assertUnchanged();
  });
});

describe('service API: persistence', () => {
  test('an enrollment made through the API survives a restart on the same data directory', async (t) => {
    const dataDir = await temporaryDirectory('dps-mqtt-service-api-');
    t.after(() => dataDir.remove());
    const first = await startTestEmulator({ dataDir: dataDir.path, config: { idScope: '0ne0000SVC3' } });
    const connectionString = first.serviceConnectionString;
    const created = (await serviceClient(first).createOrUpdateIndividualEnrollment({
      registrationId: 'svc-persistent',
      attestation: { type: 'symmetricKey' },
      reprovisionPolicy: { updateHubAssignment: false, migrateDeviceData: false },
    } as never)) as unknown as { responseBody: Doc };
    const group = (await serviceClient(first).createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'svc-persistent-group',
      attestation: { type: 'symmetricKey' },
    } as never)) as unknown as { responseBody: Doc };
    await first.close();
    // The file is there, readable by its owner only.
    const file = JSON.parse(await readFile(join(dataDir.path, 'enrollments.json'), 'utf8'));
    assert.equal(file.version, 1);
    for (const name of ['enrollments.json', 'service-credentials.json']) {
      assert.equal((await stat(join(dataDir.path, name))).mode & 0o077, 0, `${name} is private`);
    }

    const second = await startTestEmulator({ dataDir: dataDir.path, config: { idScope: '0ne0000SVC3' } });
    t.after(() => second.close());
    // Same key, same enrollment, same ETag and timestamps.
    assert.equal(second.serviceConnectionString, connectionString);
    const read = (await serviceClient(second).getIndividualEnrollment('svc-persistent')) as unknown as {
      responseBody: Doc;
    };
    assert.deepEqual(read.responseBody, created.responseBody);
    const readGroup = (await serviceClient(second).getEnrollmentGroup('svc-persistent-group')) as unknown as {
      responseBody: Doc;
    };
    assert.deepEqual(readGroup.responseBody, group.responseBody);
    // And it still admits its device.
    const result = await register({
      idScope: second.idScope,
      registrationId: 'svc-persistent',
      security: { symmetricKey: textAt(created.responseBody, 'attestation.symmetricKey.primaryKey') },
      endpoint: `127.0.0.1:${second.mqttPort}`,
      transport: 'mqtt',
      trustedCa: second.caCertPem,
      timeoutMs: 20_000,
    });
    assert.equal(result.deviceId, 'svc-persistent');
  });

  test('configured enrollments are seeded at each start; unchanged ones keep their ETag', async (t) => {
    const dataDir = await temporaryDirectory('dps-mqtt-service-api-');
    t.after(() => dataDir.remove());
    const config = {
      idScope: '0ne0000SVC4',
      individualEnrollments: [
        { registrationId: 'seeded', attestation: { type: 'symmetricKey' as const, primaryKey: KEY } },
      ],
    };
    const first = await startTestEmulator({ dataDir: dataDir.path, config });
    const seeded = (await serviceClient(first).getIndividualEnrollment('seeded')) as unknown as {
      responseBody: Doc;
    };
    assert.equal(textAt(seeded.responseBody, 'attestation.symmetricKey.primaryKey'), KEY);
    // Changed through the API...
    await serviceClient(first).createOrUpdateIndividualEnrollment({
      ...seeded.responseBody,
      provisioningStatus: 'disabled',
    } as never);
    await first.close();
    // ...the configuration re-applies at the next start.
    const second = await startTestEmulator({ dataDir: dataDir.path, config });
    const reseeded = (await serviceClient(second).getIndividualEnrollment('seeded')) as unknown as {
      responseBody: Doc;
    };
    assert.equal(reseeded.responseBody.provisioningStatus, 'enabled');
    await second.close();
    const third = await startTestEmulator({ dataDir: dataDir.path, config });
    t.after(() => third.close());
    const unchanged = (await serviceClient(third).getIndividualEnrollment('seeded')) as unknown as {
      responseBody: Doc;
    };
    assert.equal(unchanged.responseBody.etag, reseeded.responseBody.etag);
  });
});

describe('service SAS tokens (pure)', () => {
  const credentials = {
    hostName: 'localhost',
    keyName: 'provisioningserviceowner',
    key: Buffer.from('a-service-key-for-pure-token-tests').toString('base64'),
  };
  const expected = { ...credentials, hostNames: ['localhost'], nowSeconds: 1_800_000_000 };

  test('the SDK format verifies; a tampered expiry does not', () => {
    const token = createServiceSasToken(credentials, 1_800_000_600);
    assert.match(
      token,
      /^SharedAccessSignature sr=localhost&sig=[^&]+&skn=provisioningserviceowner&se=1800000600$/,
    );
    assert.deepEqual(verifyServiceSasToken(token, expected), { ok: true });
    const tampered = token.replace('se=1800000600', 'se=1800000900');
    assert.equal(verifyServiceSasToken(tampered, expected).ok, false);
  });

  test('a resource with a path under the host is accepted (sr is a prefix of the URI)', () => {
    const token = createServiceSasToken({ ...credentials, hostName: 'localhost/enrollments' }, 1_800_000_600);
    assert.deepEqual(verifyServiceSasToken(token, expected), { ok: true });
  });
});

describe('service API: the CLI', () => {
  test('the ready line carries serviceConnectionString, the same after a restart on --data-dir', async (t) => {
    const dataDir = await temporaryDirectory('dps-mqtt-service-cli-');
    t.after(() => dataDir.remove());
    const readyLines: string[] = [];
    for (let run = 0; run < 2; run++) {
      let stdout = '';
      let gotLine: (line: string) => void = () => {};
      const firstLine = new Promise<string>((resolve) => {
        gotLine = resolve;
      });
      const signals = new EventEmitter();
      const running = runEmulatorCli(
        ['--mqtt-port', '0', '--wss-port', '0', '--data-dir', dataDir.path, '--quiet'],
        {
          stdout: {
            write(text: string) {
              stdout += text;
              if (stdout.includes('\n')) gotLine(stdout.slice(0, stdout.indexOf('\n')));
              return true;
            },
          },
          stderr: { write: () => true },
          signals: signals as unknown as NodeJS.Process,
        },
      );
      readyLines.push(await firstLine);
      signals.emit('SIGTERM', 'SIGTERM');
      assert.equal(await running, 0);
    }
    const [first, second] = readyLines.map(
      (line) => JSON.parse(line) as { serviceConnectionString?: string },
    );
    assert.match(
      String(first?.serviceConnectionString),
      /^HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=[A-Za-z0-9+/]{43}=$/,
    );
    assert.equal(second?.serviceConnectionString, first?.serviceConnectionString);
  });
});
