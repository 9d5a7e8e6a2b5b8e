// Issue 6, client parsing: whatever a server (or a man-in-the-middle) sends, the response-topic parser,
// the body parsers and the registration-state validator return a valid result or throw a ProtocolError:
// never anything else, never a loop. FUZZ_RUNS raises the number of runs (default 2,000 per property).
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ProtocolError } from '../src/protocol/errors.js';
import { MAX_JSON_DEPTH, MAX_RESPONSE_BYTES, MAX_RETRY_AFTER_SECONDS } from '../src/protocol/limits.js';
import {
  type JsonValue,
  parseJsonBody,
  parseOperationStatus,
  parseRegistrationState,
  parseServiceErrorBody,
  REGISTRATION_STATUSES,
} from '../src/protocol/responses.js';
import { parseResponseTopic, parseRetryAfter } from '../src/protocol/topics.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
/** One parse of at most 128 KiB must never take long: a generous bound that still catches a loop. */
const MAX_PARSE_MS = 1000;

/** Runs `parse` and says how it ended: a value, or a ProtocolError; anything else fails the property. */
function outcome<T>(parse: () => T): { ok: true; value: T } | { ok: false; error: ProtocolError } {
  const startedAt = performance.now();
  try {
    return { ok: true, value: parse() };
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_PROTOCOL');
    assert.ok(error.message.length < 1000, 'error messages quote network text only briefly');
    return { ok: false, error };
  } finally {
    assert.ok(performance.now() - startedAt < MAX_PARSE_MS, 'parsing took too long');
  }
}

const validState = {
  registrationId: 'fuzz-device',
  createdDateTimeUtc: '2024-01-01T00:00:00Z',
  assignedHub: 'hub.azure-devices.net',
  deviceId: 'fuzz-device',
  status: 'assigned',
  substatus: 'initialAssignment',
  etag: 'IjAwMDAi',
  symmetricKey: { enrollmentGroupId: 'group' },
  x509: { certificateInfo: { subjectName: 'CN=x', version: 3 }, enrollmentGroupId: 'g' },
  payload: { any: ['thing'] },
  trustBundle: { certificates: [] },
};
const validOperation = { operationId: '4.abc.def', status: 'assigned', registrationState: validState };

/** A valid body with fields deleted or replaced by arbitrary JSON, at both levels. */
const mutatedOperation: fc.Arbitrary<JsonValue> = fc
  .record({
    top: fc.dictionary(fc.constantFrom(...Object.keys(validOperation), 'extra'), fc.option(fc.jsonValue())),
    state: fc.dictionary(
      fc.constantFrom(...Object.keys(validState), 'tpm', 'errorCode'),
      fc.option(fc.jsonValue()),
    ),
    status: fc.oneof(fc.constantFrom(...REGISTRATION_STATUSES), fc.string(), fc.jsonValue()),
  })
  .map(({ top, state, status }) => {
    const registrationState: Record<string, JsonValue> = { ...validState };
    for (const [key, value] of Object.entries(state)) {
      if (value === null) delete registrationState[key];
      else registrationState[key] = value as JsonValue;
    }
    const body: Record<string, JsonValue> = {
      ...validOperation,
      status: status as JsonValue,
      registrationState,
    };
    for (const [key, value] of Object.entries(top)) {
      if (value === null) delete body[key];
      else body[key] = value as JsonValue;
    }
    return body;
  });

/** Bodies as they can arrive: text, bytes, any JSON, mutated valid bodies, deep nesting. */
const anyBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }),
  fc.jsonValue().map((value) => JSON.stringify(value)),
  mutatedOperation.map((value) => JSON.stringify(value)),
  mutatedOperation.map((value) => Buffer.from(JSON.stringify(value))),
  fc
    .tuple(fc.constantFrom('[', '{"a":', '[{"b":'), fc.integer({ min: 1, max: 5000 }))
    .map(([open, depth]) => open.repeat(depth)),
  fc.integer({ min: 1, max: 2000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
);

describe('response topic', () => {
  const retryAfterText = fc.oneof(
    fc.string(),
    fc.integer().map(String),
    fc.double().map(String),
    fc.constantFrom('-1', '1e9', 'NaN', 'Infinity', '', ' 3 ', '0x10', '99999999999999999999', '1.5', '2,5'),
  );
  const structuredTopic = fc
    .record({
      status: fc.oneof(
        fc.constantFrom('200', '202', '400', '401', '429', '500', '099'),
        fc.string({ maxLength: 4 }),
      ),
      rid: fc.oneof(fc.uuid(), fc.string(), fc.constant('')),
      retryAfter: fc.option(retryAfterText),
      extra: fc.string(),
    })
    .map(
      ({ status, rid, retryAfter, extra }) =>
        `$dps/registrations/res/${status}/?$rid=${rid}${retryAfter === null ? '' : `&retry-after=${retryAfter}`}${extra}`,
    );

  test('any topic parses to a status, a request id and a bounded retry-after, or a ProtocolError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), structuredTopic), (topic) => {
        const result = outcome(() => parseResponseTopic(topic));
        if (!result.ok) return;
        const { statusCode, requestId, retryAfterSeconds } = result.value;
        assert.ok(Number.isInteger(statusCode) && statusCode >= 100 && statusCode <= 999);
        assert.ok(typeof requestId === 'string' && requestId.length > 0);
        if (retryAfterSeconds !== undefined) {
          assert.ok(Number.isFinite(retryAfterSeconds));
          assert.ok(retryAfterSeconds >= 0 && retryAfterSeconds <= MAX_RETRY_AFTER_SECONDS);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('retry-after that is negative, huge or not a number is ignored or clamped, never thrown', () => {
    fc.assert(
      fc.property(fc.option(retryAfterText, { nil: undefined }), (text) => {
        const seconds = parseRetryAfter(text);
        if (seconds === undefined) return;
        assert.ok(Number.isFinite(seconds) && seconds >= 0 && seconds <= MAX_RETRY_AFTER_SECONDS);
      }),
      { numRuns: RUNS },
    );
  });

  test('table: retry-after edge values', () => {
    const table: Array<[string, number | undefined]> = [
      ['3', 3],
      ['0', 0],
      ['1.5', 1.5],
      ['-1', undefined],
      ['abc', undefined],
      ['NaN', undefined],
      ['Infinity', undefined],
      ['1e3', undefined],
      ['86400', MAX_RETRY_AFTER_SECONDS],
      ['999999999999999', MAX_RETRY_AFTER_SECONDS],
      ['9999999999999999999999', undefined],
    ];
    for (const [text, expected] of table) assert.equal(parseRetryAfter(text), expected, text);
  });
});

describe('response bodies', () => {
  test('"assigning" with an empty operationId is a ProtocolError (found by the property below)', () => {
    assert.throws(
      () => parseOperationStatus(Buffer.from('{"operationId":"","status":"assigning"}')),
      (error: unknown) => error instanceof ProtocolError && /no operationId/.test(error.message),
    );
  });

  test('any body is a valid operation status or a ProtocolError', () => {
    fc.assert(
      fc.property(anyBody, (body) => {
        const result = outcome(() => parseOperationStatus(body));
        if (!result.ok) return;
        const operation = result.value;
        assert.ok((REGISTRATION_STATUSES as readonly string[]).includes(operation.status));
        assert.equal(typeof operation.operationId, 'string');
        if (operation.status === 'assigning') assert.ok(operation.operationId.length > 0);
        if (operation.status === 'assigned') {
          assert.ok(operation.registrationState?.assignedHub);
          assert.ok(operation.registrationState?.deviceId);
        }
        // Whatever was accepted can be printed (the CLI's --json, the caller's logs).
        JSON.stringify(operation);
      }),
      { numRuns: RUNS },
    );
  });

  test('any JSON value is a valid registration state or a ProtocolError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), mutatedOperation), (value) => {
        const result = outcome(() => parseRegistrationState(value as JsonValue));
        if (!result.ok) return;
        assert.equal(typeof result.value.registrationId, 'string');
        for (const field of ['assignedHub', 'deviceId', 'etag', 'substatus', 'errorMessage'] as const) {
          const text = result.value[field];
          assert.ok(text === undefined || typeof text === 'string', field);
        }
        const code = result.value.errorCode;
        assert.ok(code === undefined || Number.isFinite(code));
      }),
      { numRuns: RUNS },
    );
  });

  test('error bodies are read leniently: never a throw, and quoted text is cut short', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          anyBody,
          fc
            .record({
              errorCode: fc.jsonValue(),
              message: fc.string({ maxLength: 2000 }),
              trackingId: fc.jsonValue(),
            })
            .map((value) => JSON.stringify(value)),
        ),
        (body) => {
          const details = parseServiceErrorBody(body);
          for (const text of [details.message, details.trackingId, details.timestampUtc]) {
            assert.ok(text === undefined || text.length <= 203);
          }
          assert.ok(details.errorCode === undefined || Number.isFinite(details.errorCode));
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('a status that is an object with its own toString is a ProtocolError (found by FUZZ_RUNS=20000)', () => {
    for (const status of [{ toString: {} }, { toString: false }, { valueOf: 1, toString: null }]) {
      const result = outcome(() => parseOperationStatus(JSON.stringify({ operationId: 'o', status })));
      assert.equal(result.ok, false);
      assert.equal(outcome(() => parseRegistrationState({ status } as JsonValue)).ok, false);
    }
  });

  test(`a body above MAX_RESPONSE_BYTES (${MAX_RESPONSE_BYTES}) is refused before it is parsed`, () => {
    const huge = JSON.stringify({ ...validOperation, padding: 'x'.repeat(MAX_RESPONSE_BYTES) });
    const result = outcome(() => parseOperationStatus(huge));
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.error.message, /exceeds the 131072-byte limit/);
    // The lenient error-body reader still keeps the status code meaningful.
    assert.deepEqual(Object.keys(parseServiceErrorBody(Buffer.from(huge))), ['message']);
  });

  test(`JSON nested deeper than MAX_JSON_DEPTH (${MAX_JSON_DEPTH}) is refused, so results stay printable`, () => {
    for (const depth of [MAX_JSON_DEPTH + 1, 60_000]) {
      const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      const body = `{"operationId":"o","status":"assigned","registrationState":{"assignedHub":"h","deviceId":"d","payload":${deep}}}`;
      const result = outcome(() => parseOperationStatus(body));
      assert.equal(result.ok, false, `depth ${depth}`);
    }
    const shallow = `{"operationId":"o","status":"assigned","registrationState":{"assignedHub":"h","deviceId":"d","payload":${'['.repeat(50)}${']'.repeat(50)}}}`;
    assert.equal(outcome(() => parseOperationStatus(shallow)).ok, true);
    // Brackets inside strings are text, not nesting.
    assert.deepEqual(parseJsonBody(JSON.stringify({ text: '['.repeat(1000) })), { text: '['.repeat(1000) });
  });
});
