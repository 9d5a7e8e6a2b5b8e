import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidInputError, ProtocolError } from '../src/protocol/errors.js';
import { MAX_RETRY_AFTER_SECONDS } from '../src/protocol/limits.js';
import { redact } from '../src/protocol/redact.js';
import {
  classifyStatusCode,
  parseOperationStatus,
  parseServiceErrorBody,
} from '../src/protocol/responses.js';
import { computeSasSignature, createSasToken, deriveDeviceKey, parseSasToken } from '../src/protocol/sas.js';
import {
  operationStatusTopic,
  parseRequestTopic,
  parseResponseTopic,
  registerTopic,
  responseTopic,
} from '../src/protocol/topics.js';
import { buildUsername, parseUsername } from '../src/protocol/username.js';
import {
  validateApiVersion,
  validateIdScope,
  validateRegistrationId,
  validateSymmetricKey,
} from '../src/protocol/validate.js';

// Vectors from shared/protocol.md ("Test vector").
const VECTOR = {
  groupKey: 'Z3JvdXAtMS10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2g=',
  registrationId: 'sensor-042',
  derivedKey: '5sPw/DvFsaQGjgFU+MmYeg3Lw+ObvPomtQGeFrL4yjs=',
  idScope: '0ne00000A0A',
  expiry: 1798761600,
  token:
    'SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fsensor-042&sig=WGRu7ixtrV5d8wC5dTUuPQhrvJex88seghYNXegPcjw%3D&se=1798761600&skn=registration',
  rawSignature: 'VMe6YttsQu+GuWrPgpXUfC90wfo9Ix9XaHg6nKHbEXo=',
};

describe('SAS token and key derivation (protocol.md vectors)', () => {
  test('derives the device key of a group enrollment', () => {
    assert.equal(deriveDeviceKey(VECTOR.groupKey, VECTOR.registrationId), VECTOR.derivedKey);
  });

  test('builds the documented token with the URL-encoded resource', () => {
    const token = createSasToken({
      idScope: VECTOR.idScope,
      registrationId: VECTOR.registrationId,
      key: VECTOR.derivedKey,
      expiresAtSeconds: VECTOR.expiry,
    });
    assert.equal(token, VECTOR.token);
  });

  test('signs the raw resource the way the official Node SDK does', () => {
    const resource = `${VECTOR.idScope}/registrations/${VECTOR.registrationId}`;
    assert.equal(computeSasSignature(VECTOR.derivedKey, resource, VECTOR.expiry), VECTOR.rawSignature);
    const token = createSasToken({
      idScope: VECTOR.idScope,
      registrationId: VECTOR.registrationId,
      key: VECTOR.derivedKey,
      expiresAtSeconds: VECTOR.expiry,
      resourceEncoding: 'raw',
    });
    assert.match(token, /^SharedAccessSignature sr=0ne00000A0A\/registrations\/sensor-042&sig=/);
    assert.equal(parseSasToken(token)?.signature, VECTOR.rawSignature);
  });

  test('parses a token back into its fields', () => {
    assert.deepEqual(parseSasToken(VECTOR.token), {
      resource: '0ne00000A0A/registrations/sensor-042',
      resourceAsSent: '0ne00000A0A%2Fregistrations%2Fsensor-042',
      signature: 'WGRu7ixtrV5d8wC5dTUuPQhrvJex88seghYNXegPcjw=',
      expiresAtSeconds: VECTOR.expiry,
      keyName: 'registration',
    });
  });

  for (const bad of [
    '',
    'Bearer x',
    'SharedAccessSignature sr=a&sig=b',
    'SharedAccessSignature sr=a&sig=b&se=soon',
  ]) {
    test(`rejects a malformed token ${JSON.stringify(bad)}`, () => {
      assert.equal(parseSasToken(bad), undefined);
    });
  }
});

describe('MQTT user name', () => {
  test('carries scope, registration id, api version and the URL-encoded user agent', () => {
    const username = buildUsername({
      idScope: '0ne00000A0A',
      registrationId: 'dev-1',
      apiVersion: '2019-03-31',
      userAgent: 'dps-mqtt/0.1.0 (node v20; linux)',
    });
    assert.equal(
      username,
      '0ne00000A0A/registrations/dev-1/api-version=2019-03-31&ClientVersion=dps-mqtt%2F0.1.0%20(node%20v20%3B%20linux)',
    );
    assert.deepEqual(parseUsername(username), {
      idScope: '0ne00000A0A',
      registrationId: 'dev-1',
      apiVersion: '2019-03-31',
      clientVersion: 'dps-mqtt/0.1.0 (node v20; linux)',
    });
  });

  test('accepts the documented form without ClientVersion', () => {
    assert.deepEqual(parseUsername('0ne1/registrations/d/api-version=2021-06-01'), {
      idScope: '0ne1',
      registrationId: 'd',
      apiVersion: '2021-06-01',
    });
  });

  for (const bad of [
    '',
    '0ne1/devices/d/api-version=1',
    '0ne1/registrations/d/',
    '0ne1/registrations/d/x=1',
  ]) {
    test(`refuses ${JSON.stringify(bad)}`, () => assert.equal(parseUsername(bad), undefined));
  }
});

describe('topics', () => {
  test('register and status topics carry the request id (and operation id)', () => {
    assert.equal(registerTopic('7'), '$dps/registrations/PUT/iotdps-register/?$rid=7');
    assert.equal(
      operationStatusTopic('8', '4.abc.def'),
      '$dps/registrations/GET/iotdps-get-operationstatus/?$rid=8&operationId=4.abc.def',
    );
    assert.deepEqual(parseRequestTopic(registerTopic('7')), { kind: 'register', requestId: '7' });
    assert.deepEqual(parseRequestTopic(operationStatusTopic('8', '4.abc')), {
      kind: 'operationStatus',
      requestId: '8',
      operationId: '4.abc',
    });
    assert.equal(parseRequestTopic('$dps/registrations/PUT/other/?$rid=1'), undefined);
  });

  test('parses status, $rid and retry-after from a response topic', () => {
    assert.deepEqual(parseResponseTopic('$dps/registrations/res/202/?$rid=7&retry-after=3'), {
      statusCode: 202,
      requestId: '7',
      retryAfterSeconds: 3,
    });
    assert.deepEqual(parseResponseTopic(responseTopic(200, 'a b')), {
      statusCode: 200,
      requestId: 'a b',
      retryAfterSeconds: undefined,
    });
  });

  const retryAfterCases: Array<[string, number | undefined]> = [
    ['-1', undefined],
    ['abc', undefined],
    ['1e9', undefined],
    ['0', 0],
    ['2.5', 2.5],
    ['99999999', MAX_RETRY_AFTER_SECONDS],
  ];
  for (const [value, expected] of retryAfterCases) {
    test(`retry-after=${value} gives ${expected}`, () => {
      assert.equal(
        parseResponseTopic(`$dps/registrations/res/429/?$rid=1&retry-after=${value}`).retryAfterSeconds,
        expected,
      );
    });
  }

  for (const bad of [
    'devices/x',
    '$dps/registrations/res/abc/?$rid=1',
    '$dps/registrations/res/200/?x=1',
    '$dps/registrations/res/2000/?$rid=1',
  ]) {
    test(`a malformed response topic ${JSON.stringify(bad)} is a ProtocolError`, () => {
      assert.throws(() => parseResponseTopic(bad), ProtocolError);
    });
  }
});

describe('response bodies', () => {
  test('classifies status codes like the common transport', () => {
    assert.deepEqual([200, 202, 400, 401, 404, 428, 429, 500, 503].map(classifyStatusCode), [
      'success',
      'success',
      'failure',
      'failure',
      'failure',
      'failure',
      'transient',
      'transient',
      'transient',
    ]);
  });

  test('parses an assigned result with every documented field', () => {
    const body = {
      operationId: '4.0a1b',
      status: 'assigned',
      registrationState: {
        registrationId: 'dev-1',
        createdDateTimeUtc: '2026-11-24T10:00:00.000Z',
        lastUpdatedDateTimeUtc: '2026-11-24T10:00:01.000Z',
        assignedHub: 'hub.azure-devices.net',
        deviceId: 'dev-1',
        status: 'assigned',
        substatus: 'initialAssignment',
        etag: '"abc"',
        symmetricKey: { enrollmentGroupId: 'group-1' },
        payload: { room: 4 },
        trustBundle: { certificates: [] },
        unknownField: 42,
      },
    };
    const parsed = parseOperationStatus(JSON.stringify(body));
    assert.equal(parsed.status, 'assigned');
    assert.equal(parsed.registrationState?.assignedHub, 'hub.azure-devices.net');
    assert.deepEqual(parsed.registrationState?.symmetricKey, { enrollmentGroupId: 'group-1' });
    assert.deepEqual(parsed.registrationState?.payload, { room: 4 });
    assert.equal('unknownField' in (parsed.registrationState ?? {}), false);
  });

  const malformed: Array<[string, string]> = [
    ['not json', '{'],
    ['an array', '[]'],
    ['unknown status', '{"operationId":"1","status":"sleeping"}'],
    ['assigning without operationId', '{"status":"assigning"}'],
    [
      'assigned without hub',
      '{"operationId":"1","status":"assigned","registrationState":{"registrationId":"d"}}',
    ],
    ['wrong field type', '{"operationId":"1","status":"assigning","registrationState":{"assignedHub":5}}'],
    ['oversized', JSON.stringify({ operationId: '1', status: 'assigning', pad: 'x'.repeat(200_000) })],
  ];
  for (const [name, body] of malformed) {
    test(`a body with ${name} is a ProtocolError`, () => {
      assert.throws(() => parseOperationStatus(body), ProtocolError);
    });
  }

  test('reads the service error body and tolerates a missing one', () => {
    assert.deepEqual(
      parseServiceErrorBody(
        '{"errorCode":401002,"trackingId":"t-1","message":"Unauthorized","timestampUtc":"2026-11-24T10:00:00.000Z"}',
      ),
      {
        errorCode: 401002,
        trackingId: 't-1',
        message: 'Unauthorized',
        timestampUtc: '2026-11-24T10:00:00.000Z',
      },
    );
    assert.deepEqual(parseServiceErrorBody(''), {});
    assert.deepEqual(parseServiceErrorBody('Server Busy'), { message: 'Server Busy' });
  });
});

describe('input validation', () => {
  const cases: Array<[string, () => unknown, string]> = [
    ['missing registration id', () => validateRegistrationId(''), 'registrationId'],
    ['uppercase registration id', () => validateRegistrationId('My_Dev'), 'registrationId'],
    ['too long registration id', () => validateRegistrationId('a'.repeat(129)), 'registrationId'],
    ['missing scope', () => validateIdScope(undefined), 'idScope'],
    ['scope with a slash', () => validateIdScope('0ne/1'), 'idScope'],
    ['key that is not base64', () => validateSymmetricKey('not a key!'), 'symmetricKey'],
    ['truncated key', () => validateSymmetricKey('YWJj'), 'symmetricKey'],
    ['api version', () => validateApiVersion('latest'), 'apiVersion'],
  ];
  for (const [name, run, field] of cases) {
    test(`${name} is an InvalidInputError on ${field} that says how to fix it`, () => {
      assert.throws(run, (error: unknown) => {
        assert.ok(error instanceof InvalidInputError);
        assert.equal(error.field, field);
        assert.match(error.message, /:/);
        return true;
      });
    });
  }

  test('accepts well-formed values', () => {
    assert.equal(validateRegistrationId('sensor-042.a_b:c'), 'sensor-042.a_b:c');
    assert.equal(validateIdScope('0ne00000A0A'), '0ne00000A0A');
    assert.equal(validateSymmetricKey(VECTOR.groupKey), VECTOR.groupKey);
    assert.equal(validateApiVersion('2021-06-01'), '2021-06-01');
  });
});

describe('redact', () => {
  test('removes signatures, keys, private keys and passwords', () => {
    const text = [
      VECTOR.token,
      'HostName=h;DeviceId=d;SharedAccessKey=abcdef==',
      '-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----',
      'Proxy-Authorization: Basic dXNlcjpwYXNz',
      'http://user:hunter2@proxy:3128',
      '{"password":"hunter2","primaryKey":"k=="}',
    ].join('\n');
    const output = redact(text, [VECTOR.derivedKey]);
    for (const secret of ['WGRu7ixt', 'abcdef==', 'MIIEv', 'dXNlcjpwYXNz', 'hunter2', '"k=="']) {
      assert.equal(output.includes(secret), false, `${secret} leaked in ${output}`);
    }
    assert.match(output, /sr=0ne00000A0A%2Fregistrations%2Fsensor-042/);
  });

  test('scrubs known secret values wherever they appear', () => {
    assert.equal(redact(`key ${VECTOR.derivedKey} here`, [VECTOR.derivedKey]), 'key <redacted> here');
  });
});
