// `dps-mqtt` flags and environment variables → client options; every mistake is a UsageError naming the flag.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  parseDeriveKeyArgs,
  parseRegisterArgs,
  type RegisterInvocation,
  UsageError,
} from '../src/cli/args.js';

const SCOPE = '0ne0012345A';
const KEY = 'Z3JvdXAtMS10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2g=';
const OTHER_KEY = 'ZHBzLW1xdHQgZW11bGF0b3IgZGVtbyBkZXZpY2UgayE=';
const CERT_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';

const FILES: Record<string, string> = {
  'device.pem': CERT_PEM,
  'device.key': KEY_PEM,
  'ca.pem': CERT_PEM,
  'payload.json': '{"model":"thermostat"}',
  'not-pem.txt': 'hello',
};

function readText(path: string): string {
  const text = FILES[path];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
  return text;
}

const BASE = ['--id-scope', SCOPE, '--registration-id', 'sensor-042', '--symmetric-key', KEY];

function parse(argv: string[], env: Record<string, string> = {}): RegisterInvocation {
  const invocation = parseRegisterArgs(argv, env, readText);
  assert.notEqual(invocation, 'help');
  return invocation as RegisterInvocation;
}

/** Asserts a UsageError whose message names `flag`. */
function assertUsageError(
  argv: string[],
  flag: string,
  env: Record<string, string> = {},
  pattern?: RegExp,
): void {
  assert.throws(
    () => parseRegisterArgs(argv, env, readText),
    (error: unknown) => {
      assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
      assert.equal(error.flag, flag);
      assert.ok(error.message.includes(flag), `message should name ${flag}: ${error.message}`);
      if (pattern) assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('register flags', () => {
  test('the minimal symmetric-key invocation gives scope, registration id and key, nothing else', () => {
    const invocation = parse(BASE);
    assert.deepEqual(invocation.options, {
      idScope: SCOPE,
      registrationId: 'sensor-042',
      security: { symmetricKey: KEY },
    });
    assert.equal(invocation.json, false);
    assert.equal(invocation.trace, false);
    assert.equal(invocation.quiet, false);
    assert.ok(invocation.secrets.includes(KEY));
  });

  test('--group-key gives a group security', () => {
    const invocation = parse(['--id-scope', SCOPE, '--registration-id', 'sensor-042', '--group-key', KEY]);
    assert.deepEqual(invocation.options.security, { groupKey: KEY });
    assert.ok(invocation.secrets.includes(KEY));
  });

  test('--cert and --key read the PEM files; the registration id may come from the certificate', () => {
    const invocation = parse(['--id-scope', SCOPE, '--cert', 'device.pem', '--key', 'device.key']);
    assert.deepEqual(invocation.options.security, { certificate: CERT_PEM, privateKey: KEY_PEM });
    assert.equal(invocation.options.registrationId, undefined);
    assert.ok(invocation.secrets.includes(KEY_PEM));
  });

  test('--passphrase (or DPS_KEY_PASSPHRASE) goes with the private key and is a secret', () => {
    const fromFlag = parse([
      '--id-scope',
      SCOPE,
      '--cert',
      'device.pem',
      '--key',
      'device.key',
      '--passphrase',
      'pw-1234',
    ]);
    assert.deepEqual(fromFlag.options.security, {
      certificate: CERT_PEM,
      privateKey: KEY_PEM,
      passphrase: 'pw-1234',
    });
    assert.ok(fromFlag.secrets.includes('pw-1234'));
    const fromEnv = parse(['--id-scope', SCOPE, '--cert', 'device.pem', '--key', 'device.key'], {
      DPS_KEY_PASSPHRASE: 'pw-5678',
    });
    assert.deepEqual(fromEnv.options.security, {
      certificate: CERT_PEM,
      privateKey: KEY_PEM,
      passphrase: 'pw-5678',
    });
  });

  test('every connection and request flag lands in its client option', () => {
    const invocation = parse([
      ...BASE,
      '--endpoint',
      'localhost:8443',
      '--transport',
      'mqtt',
      '--ca',
      'ca.pem',
      '--proxy',
      'http://user:s3cret-pw@proxy.local:3128',
      '--payload',
      '{"model":"thermostat","floor":3}',
      '--timeout',
      '2.5',
      '--api-version',
      '2021-06-01',
      '--insecure',
      '--json',
      '--trace',
      '--quiet',
    ]);
    assert.deepEqual(invocation.options, {
      idScope: SCOPE,
      registrationId: 'sensor-042',
      security: { symmetricKey: KEY },
      endpoint: 'localhost:8443',
      transport: 'mqtt',
      trustedCa: CERT_PEM,
      proxy: 'http://user:s3cret-pw@proxy.local:3128',
      payload: { model: 'thermostat', floor: 3 },
      timeoutMs: 2500,
      apiVersion: '2021-06-01',
      insecureSkipVerify: true,
    });
    assert.equal(invocation.json, true);
    assert.equal(invocation.trace, true);
    assert.equal(invocation.quiet, true);
    assert.ok(invocation.secrets.includes('s3cret-pw'), 'the proxy password is a secret');
  });

  test('--pipeline asks the client to pipeline CONNECT, SUBSCRIBE and the request', () => {
    assert.equal(parse([...BASE, '--pipeline']).options.pipeline, true);
    assert.equal(parse(BASE).options.pipeline, undefined);
  });

  test('--transport mqtt-ws is accepted', () => {
    assert.equal(parse([...BASE, '--transport', 'mqtt-ws']).options.transport, 'mqtt-ws');
  });

  test('--no-proxy turns HTTPS_PROXY off', () => {
    assert.equal(parse([...BASE, '--no-proxy']).options.proxy, false);
  });

  test('--payload @FILE reads the JSON from a file', () => {
    assert.deepEqual(parse([...BASE, '--payload', '@payload.json']).options.payload, { model: 'thermostat' });
  });

  test('the password of HTTPS_PROXY is a secret too (the client uses it when --proxy is absent)', () => {
    const invocation = parse(BASE, { HTTPS_PROXY: 'http://me:env-proxy-pw@proxy:3128' });
    assert.ok(invocation.secrets.includes('env-proxy-pw'));
  });

  test('-h and --help ask for help', () => {
    assert.equal(parseRegisterArgs(['--help'], {}, readText), 'help');
    assert.equal(parseRegisterArgs(['-h'], {}, readText), 'help');
  });
});

describe('register environment fallbacks', () => {
  test('DPS_ID_SCOPE, DPS_REGISTRATION_ID, DPS_SYMMETRIC_KEY and DPS_ENDPOINT stand in for their flags', () => {
    const invocation = parse([], {
      DPS_ID_SCOPE: SCOPE,
      DPS_REGISTRATION_ID: 'sensor-042',
      DPS_SYMMETRIC_KEY: KEY,
      DPS_ENDPOINT: 'localhost:8443',
    });
    assert.deepEqual(invocation.options, {
      idScope: SCOPE,
      registrationId: 'sensor-042',
      security: { symmetricKey: KEY },
      endpoint: 'localhost:8443',
    });
    assert.ok(invocation.secrets.includes(KEY));
  });

  test('DPS_GROUP_KEY stands in for --group-key', () => {
    const invocation = parse(['--id-scope', SCOPE, '--registration-id', 'sensor-042'], {
      DPS_GROUP_KEY: KEY,
    });
    assert.deepEqual(invocation.options.security, { groupKey: KEY });
  });

  test('flags win over the environment', () => {
    const invocation = parse(['--id-scope', SCOPE, '--registration-id', 'sensor-042', '--group-key', KEY], {
      DPS_ID_SCOPE: '0ne0000FFFF',
      DPS_REGISTRATION_ID: 'other',
      DPS_SYMMETRIC_KEY: OTHER_KEY,
    });
    assert.equal(invocation.options.idScope, SCOPE);
    assert.equal(invocation.options.registrationId, 'sensor-042');
    assert.deepEqual(invocation.options.security, { groupKey: KEY });
  });

  test('both DPS_SYMMETRIC_KEY and DPS_GROUP_KEY set, with no flag to choose, is an error', () => {
    assertUsageError(['--id-scope', SCOPE, '--registration-id', 'x'], 'DPS_GROUP_KEY', {
      DPS_SYMMETRIC_KEY: KEY,
      DPS_GROUP_KEY: OTHER_KEY,
    });
  });

  test('a malformed key from the environment is reported under the variable name', () => {
    assertUsageError(['--id-scope', SCOPE, '--registration-id', 'x'], 'DPS_SYMMETRIC_KEY', {
      DPS_SYMMETRIC_KEY: 'short',
    });
  });
});

describe('register bad input (exit code 2)', () => {
  const cases: Array<{ name: string; argv: string[]; flag: string; pattern?: RegExp }> = [
    { name: 'an unknown flag', argv: [...BASE, '--colour'], flag: '--colour', pattern: /unknown option/ },
    {
      name: 'a flag with no value at the end',
      argv: [...BASE, '--endpoint'],
      flag: '--endpoint',
      pattern: /needs a value/,
    },
    {
      name: 'a flag followed by another flag instead of a value',
      argv: ['--id-scope', '--json', ...BASE.slice(2)],
      flag: '--id-scope',
      pattern: /needs a value/,
    },
    {
      name: 'a value given to a boolean flag',
      argv: [...BASE, '--json=yes'],
      flag: '--json',
      pattern: /does not take a value/,
    },
    {
      name: 'a missing ID scope',
      argv: BASE.slice(2),
      flag: '--id-scope',
      pattern: /required.*DPS_ID_SCOPE/,
    },
    { name: 'an ID scope with a slash', argv: ['--id-scope', 'a/b', ...BASE.slice(2)], flag: '--id-scope' },
    {
      name: 'a missing registration id with a key',
      argv: ['--id-scope', SCOPE, '--symmetric-key', KEY],
      flag: '--registration-id',
      pattern: /required/,
    },
    {
      name: 'an invalid registration id',
      argv: ['--id-scope', SCOPE, '--registration-id', 'My_Dev', '--symmetric-key', KEY],
      flag: '--registration-id',
      pattern: /lowercase/,
    },
    {
      name: 'no credentials at all',
      argv: BASE.slice(0, 4),
      flag: '--symmetric-key',
      pattern: /no credentials/,
    },
    {
      name: 'a truncated key',
      argv: [...BASE.slice(0, 5), 'Z3JvdXA'],
      flag: '--symmetric-key',
      pattern: /not a valid key/,
    },
    { name: 'two credentials', argv: [...BASE, '--group-key', KEY], flag: '--group-key', pattern: /one way/ },
    { name: '--cert without --key', argv: [...BASE.slice(0, 4), '--cert', 'device.pem'], flag: '--key' },
    { name: '--key without --cert', argv: [...BASE.slice(0, 4), '--key', 'device.key'], flag: '--cert' },
    {
      name: 'a certificate file that does not exist',
      argv: [...BASE.slice(0, 4), '--cert', 'missing.pem', '--key', 'device.key'],
      flag: '--cert',
      pattern: /cannot read "missing.pem" \(ENOENT\)/,
    },
    {
      name: 'a certificate file that is not PEM',
      argv: [...BASE.slice(0, 4), '--cert', 'not-pem.txt', '--key', 'device.key'],
      flag: '--cert',
    },
    {
      name: 'a key file that is not PEM',
      argv: [...BASE.slice(0, 4), '--cert', 'device.pem', '--key', 'not-pem.txt'],
      flag: '--key',
    },
    {
      name: 'an unknown transport',
      argv: [...BASE, '--transport', 'amqp'],
      flag: '--transport',
      pattern: /mqtt-ws/,
    },
    { name: 'a CA file that does not exist', argv: [...BASE, '--ca', 'nope.pem'], flag: '--ca' },
    { name: 'a CA file with no certificate', argv: [...BASE, '--ca', 'not-pem.txt'], flag: '--ca' },
    {
      name: 'an endpoint given as a URL',
      argv: [...BASE, '--endpoint', 'https://dps.example'],
      flag: '--endpoint',
      pattern: /not a URL/,
    },
    {
      name: 'payload that is not JSON',
      argv: [...BASE, '--payload', '{model:1}'],
      flag: '--payload',
      pattern: /not valid JSON/,
    },
    { name: 'a zero timeout', argv: [...BASE, '--timeout', '0'], flag: '--timeout' },
    { name: 'a timeout that is not a number', argv: [...BASE, '--timeout', 'soon'], flag: '--timeout' },
    { name: 'a malformed api version', argv: [...BASE, '--api-version', 'latest'], flag: '--api-version' },
    {
      name: '--proxy with --no-proxy',
      argv: [...BASE, '--proxy', 'http://p:1', '--no-proxy'],
      flag: '--no-proxy',
    },
  ];
  for (const { name, argv, flag, pattern } of cases) {
    test(`${name} is a usage error naming ${flag}`, () => assertUsageError(argv, flag, {}, pattern));
  }

  test('a positional argument is a usage error', () => {
    assert.throws(() => parseRegisterArgs([...BASE, 'extra'], {}, readText), {
      name: 'UsageError',
      message: /unexpected argument "extra"/,
    });
  });

  test('no usage error message repeats a key', () => {
    try {
      parseRegisterArgs([...BASE, '--group-key', KEY], {}, readText);
      assert.fail('expected a UsageError');
    } catch (error) {
      assert.ok(!(error as Error).message.includes(KEY));
    }
  });
});

describe('derive-key flags', () => {
  test('--group-key and --registration-id, or their environment variables', () => {
    assert.deepEqual(parseDeriveKeyArgs(['--group-key', KEY, '--registration-id', 'sensor-042'], {}), {
      groupKey: KEY,
      registrationId: 'sensor-042',
    });
    assert.deepEqual(parseDeriveKeyArgs([], { DPS_GROUP_KEY: KEY, DPS_REGISTRATION_ID: 'sensor-042' }), {
      groupKey: KEY,
      registrationId: 'sensor-042',
    });
  });

  test('a missing group key or registration id names the flag', () => {
    assert.throws(() => parseDeriveKeyArgs(['--registration-id', 'a'], {}), { flag: '--group-key' });
    assert.throws(() => parseDeriveKeyArgs(['--group-key', KEY], {}), { flag: '--registration-id' });
    assert.throws(() => parseDeriveKeyArgs(['--group-key', KEY, '--registration-id', 'A B'], {}), {
      flag: '--registration-id',
    });
  });

  test('--help asks for help', () => {
    assert.equal(parseDeriveKeyArgs(['--help'], {}), 'help');
  });
});
