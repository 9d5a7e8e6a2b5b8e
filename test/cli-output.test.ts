// What `dps-mqtt register` prints and the exit code it returns, with the client replaced by a fake.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { UsageError } from '../src/cli/args.js';
import { runRegister } from '../src/cli/commands/register.js';
import { ExitCode, exitCodeFor } from '../src/cli/exit-codes.js';
import {
  type CliIo,
  describeProgress,
  errorJson,
  formatError,
  formatResult,
  progressPrinter,
  resultJson,
} from '../src/cli/output.js';
import type {
  ProgressEvent,
  ProvisioningClientOptions,
  RegisterCallOptions,
  RegistrationResult,
} from '../src/client/types.js';
import {
  AbortError,
  AuthenticationError,
  DpsError,
  InvalidInputError,
  InvalidStateError,
  NotSupportedError,
  ProtocolError,
  ProvisioningServiceError,
  ProxyError,
  RegistrationFailedError,
  TimeoutError,
  TransportError,
} from '../src/protocol/errors.js';
import { deriveDeviceKey } from '../src/protocol/sas.js';

const KEY = 'Z3JvdXAtMS10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2g=';
const DERIVED_KEY = '5sPw/DvFsaQGjgFU+MmYeg3Lw+ObvPomtQGeFrL4yjs=';
const ARGS = ['--id-scope', '0ne0012345A', '--registration-id', 'sensor-042'];

function sampleResult(overrides: Partial<RegistrationResult> = {}): RegistrationResult {
  return {
    registrationId: 'sensor-042',
    assignedHub: 'hub-1.azure-devices.net',
    deviceId: 'sensor-042',
    status: 'assigned',
    substatus: 'initialAssignment',
    operationId: '4.abc.def',
    registrationState: {
      registrationId: 'sensor-042',
      assignedHub: 'hub-1.azure-devices.net',
      deviceId: 'sensor-042',
      status: 'assigned',
    },
    timings: { totalMs: 123, connections: 1, polls: 2, transientRetries: 0 },
    attestation: 'symmetricKey',
    ...overrides,
  };
}

describe('exit codes', () => {
  const cases: Array<[string, unknown, number]> = [
    ['UsageError', new UsageError('bad', '--x'), 2],
    ['InvalidInputError', new InvalidInputError('registrationId', 'bad'), 2],
    ['NotSupportedError', new NotSupportedError('TPM'), 2],
    ['AuthenticationError', new AuthenticationError(5, 'not authorized'), 3],
    ['ProvisioningServiceError 401', new ProvisioningServiceError('unauthorized', { statusCode: 401 }), 3],
    ['ProvisioningServiceError 403', new ProvisioningServiceError('forbidden', { statusCode: 403 }), 3],
    ['ProvisioningServiceError 404', new ProvisioningServiceError('not found', { statusCode: 404 }), 4],
    ['ProvisioningServiceError 429', new ProvisioningServiceError('throttled', { statusCode: 429 }), 4],
    ['ProvisioningServiceError 500', new ProvisioningServiceError('oops', { statusCode: 500 }), 4],
    ['RegistrationFailedError failed', new RegistrationFailedError('failed', { status: 'failed' }), 4],
    ['RegistrationFailedError disabled', new RegistrationFailedError('disabled', { status: 'disabled' }), 4],
    ['ProtocolError', new ProtocolError('garbage'), 4],
    ['TimeoutError', new TimeoutError('too slow'), 5],
    ['TransportError', new TransportError('ECONNREFUSED', { phase: 'tcp' }), 6],
    ['ProxyError', new ProxyError('407', { statusCode: 407 }), 6],
    ['AbortError', new AbortError(), 130],
    ['InvalidStateError', new InvalidStateError('twice'), 1],
    ['a plain Error', new Error('bug'), 1],
    ['a string', 'what', 1],
    ['undefined', undefined, 1],
  ];
  for (const [name, error, code] of cases) {
    test(`${name} exits with ${code}`, () => assert.equal(exitCodeFor(error), code));
  }

  test('the codes are distinct', () => {
    const values = Object.values(ExitCode);
    assert.equal(new Set(values).size, values.length);
  });
});

describe('error output', () => {
  test('--json error object carries code, phase, message, hint and the service details', () => {
    const error = new ProvisioningServiceError('the service refused the request', {
      statusCode: 401,
      errorCode: 401002,
      trackingId: 'track-1',
      phase: 'register',
    });
    error.hint = 'check the key';
    assert.deepEqual(errorJson(error), {
      error: {
        code: 'ERR_SERVICE',
        phase: 'register',
        message: 'the service refused the request',
        hint: 'check the key',
        statusCode: 401,
        errorCode: 401002,
        trackingId: 'track-1',
      },
    });
  });

  test('--json error object for a CONNACK refusal has no service fields', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(errorJson(new AuthenticationError(5, 'not authorized')))), {
      error: { code: 'ERR_AUTHENTICATION', phase: 'connack', message: 'not authorized' },
    });
  });

  test('a timeout carries the last failure as its cause, redacted', () => {
    const cause = new TransportError(`could not connect to 127.0.0.1:1: ECONNREFUSED (key ${KEY})`, {
      phase: 'tcp',
    });
    const error = new TimeoutError('the next attempt would pass the 2000 ms deadline', { cause });
    assert.deepEqual(errorJson(error, [KEY]).error.cause, {
      code: 'ERR_TRANSPORT',
      phase: 'tcp',
      message: 'could not connect to 127.0.0.1:1: ECONNREFUSED (key <redacted>)',
    });
  });

  test('an untrusted server certificate gets a hint in CLI terms (--ca)', () => {
    const error = new TransportError('the TLS certificate of h:1 is not trusted', {
      phase: 'tls',
      retryable: false,
    });
    assert.match(errorJson(error).error.hint ?? '', /--ca FILE/);
    assert.match(formatError('dps-mqtt register', error), /hint: pass the CA .* --ca FILE/);
  });

  test('a usage error is reported as ERR_INVALID_INPUT in the input phase', () => {
    assert.deepEqual(errorJson(new UsageError('--timeout must be positive', '--timeout')).error, {
      code: 'ERR_INVALID_INPUT',
      phase: 'input',
      message: '--timeout must be positive',
      hint: 'run with --help for the options',
    });
  });

  test('the error line is one line with message, code, phase and hint', () => {
    const error = new TimeoutError('registration did not complete within 1000 ms', { phase: 'poll' });
    error.hint = 'raise the timeout';
    const line = formatError('dps-mqtt register', error);
    assert.equal(
      line,
      'dps-mqtt register: error: registration did not complete within 1000 ms [ERR_TIMEOUT during poll]; hint: raise the timeout\n',
    );
    assert.equal(line.trimEnd().split('\n').length, 1);
  });

  test('known secrets and secret patterns are scrubbed from the error line and the JSON', () => {
    const error = new DpsError(
      'ERR_TRANSPORT',
      `failed with key ${KEY} and token SharedAccessSignature sr=x&sig=abcdef123&se=1 via http://u:hunter22@proxy:1`,
    );
    for (const text of [
      formatError('dps-mqtt register', error, [KEY]),
      JSON.stringify(errorJson(error, [KEY])),
    ]) {
      assert.ok(!text.includes(KEY), text);
      assert.ok(!text.includes('abcdef123'), text);
      assert.ok(!text.includes('hunter22'), text);
    }
  });
});

describe('progress and result output', () => {
  const events: Array<[ProgressEvent, string]> = [
    [{ type: 'connecting', attempt: 1 }, 'connecting to dps.example:443 over MQTT over WebSocket'],
    [
      { type: 'connecting', attempt: 2 },
      'connecting to dps.example:443 over MQTT over WebSocket (attempt 2)',
    ],
    [{ type: 'connected' }, 'connected'],
    [{ type: 'registering' }, 'registering'],
    [
      { type: 'assigning', operationId: 'op-1', pollCount: 2, retryAfterMs: 3000 },
      'assigning: status query 2 in 3.0 s (operation op-1)',
    ],
    [
      { type: 'transient', reason: 'DPS answered 429', statusCode: 429, waitMs: 1500, attempt: 1 },
      'transient failure (status 429): DPS answered 429; retrying in 1.5 s (attempt 1)',
    ],
    [
      { type: 'assigned', assignedHub: 'hub-1.azure-devices.net', deviceId: 'sensor-042' },
      'assigned to hub-1.azure-devices.net as sensor-042',
    ],
  ];
  for (const [event, line] of events) {
    test(`progress: ${event.type} reads "${line}"`, () => {
      assert.equal(describeProgress(event, { endpoint: 'dps.example:443', transport: 'mqtt-ws' }), line);
    });
  }

  test('progress lines carry the elapsed time', () => {
    let now = 1000;
    let text = '';
    const print = progressPrinter({ write: (chunk: string) => (text += chunk) }, {}, [], () => now);
    now = 1250;
    print({ type: 'connected' });
    assert.equal(text, '[  0.25 s] connected\n');
  });

  test('--json result is the RegistrationResult plus connectionString', () => {
    const result = sampleResult();
    const connectionString = `HostName=hub-1.azure-devices.net;DeviceId=sensor-042;SharedAccessKey=${DERIVED_KEY}`;
    assert.deepEqual(resultJson(result, connectionString), { ...result, connectionString });
  });

  test('the human result names the hub, the device, the status and the connection string', () => {
    const text = formatResult(sampleResult({ payload: { tier: 'gold' } }), 'HostName=h;DeviceId=d;x509=true');
    assert.match(text, /^Device sensor-042 is assigned to hub-1\.azure-devices\.net\n/);
    assert.match(text, /status: +assigned \(initialAssignment\)/);
    assert.match(text, /payload: +\{"tier":"gold"\}/);
    assert.match(text, /took: +123 ms \(1 connection, 2 status queries, 0 retries\)/);
    assert.match(text, /HostName=h;DeviceId=d;x509=true/);
  });
});

/** A CliIo that records output; signals is an EventEmitter the test can emit SIGINT on. */
function fakeIo(options: { tty?: boolean; env?: Record<string, string> } = {}) {
  const out = { stdout: '', stderr: '' };
  const signals = new EventEmitter();
  const io: CliIo = {
    stdout: { write: (text: string) => (out.stdout += text) },
    stderr: { write: (text: string) => (out.stderr += text) },
    stderrIsTTY: options.tty ?? false,
    env: options.env ?? {},
    signals: signals as unknown as CliIo['signals'],
  };
  return { io, out, signals };
}

type Call = { options: ProvisioningClientOptions; call: RegisterCallOptions | undefined };

function fakeRegister(behaviour: (call: Call) => Promise<RegistrationResult>) {
  const calls: Call[] = [];
  const register = (options: ProvisioningClientOptions, call?: RegisterCallOptions) => {
    const entry = { options, call };
    calls.push(entry);
    return behaviour(entry);
  };
  return { register, calls };
}

describe('dps-mqtt register with a fake client', () => {
  test('--json prints exactly one JSON object: the result and the connection string with the derived key', async () => {
    const { io, out } = fakeIo();
    const { register, calls } = fakeRegister(async () => sampleResult());
    const code = await runRegister([...ARGS, '--group-key', KEY, '--json'], io, register);
    assert.equal(code, 0);
    assert.equal(out.stdout.trimEnd().split('\n').length, 1);
    const printed = JSON.parse(out.stdout) as Record<string, unknown>;
    assert.equal(printed.assignedHub, 'hub-1.azure-devices.net');
    assert.equal(
      printed.connectionString,
      `HostName=hub-1.azure-devices.net;DeviceId=sensor-042;SharedAccessKey=${DERIVED_KEY}`,
    );
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]?.options.security, { groupKey: KEY });
  });

  test('progress is printed on stderr when it is a terminal, and not otherwise or with --quiet', async () => {
    const events = async ({ options }: Call) => {
      options.onProgress?.({ type: 'connecting', attempt: 1 });
      options.onProgress?.({
        type: 'assigned',
        assignedHub: 'hub-1.azure-devices.net',
        deviceId: 'sensor-042',
      });
      return sampleResult();
    };
    const tty = fakeIo({ tty: true });
    assert.equal(
      await runRegister([...ARGS, '--symmetric-key', KEY], tty.io, fakeRegister(events).register),
      0,
    );
    assert.match(
      tty.out.stderr,
      /connecting to global\.azure-devices-provisioning\.net over MQTT over WebSocket/,
    );
    assert.match(tty.out.stderr, /assigned to hub-1\.azure-devices\.net as sensor-042/);

    const pipe = fakeIo({ tty: false });
    await runRegister([...ARGS, '--symmetric-key', KEY], pipe.io, fakeRegister(events).register);
    assert.equal(pipe.out.stderr, '');

    const quiet = fakeIo({ tty: true });
    await runRegister([...ARGS, '--symmetric-key', KEY, '--quiet'], quiet.io, fakeRegister(events).register);
    assert.equal(quiet.out.stderr, '');
  });

  test('a refused key exits 3 with one error line and, with --json, one error object', async () => {
    const { io, out } = fakeIo();
    const { register } = fakeRegister(async () => {
      throw new AuthenticationError(5, 'the service refused the connection: not authorized (CONNACK 5)');
    });
    const code = await runRegister([...ARGS, '--symmetric-key', KEY, '--json'], io, register);
    assert.equal(code, 3);
    assert.equal(out.stderr.trimEnd().split('\n').length, 1);
    assert.match(out.stderr, /not authorized.*ERR_AUTHENTICATION during connack/);
    assert.equal((JSON.parse(out.stdout) as { error: { code: string } }).error.code, 'ERR_AUTHENTICATION');
  });

  test('bad input exits 2 and never calls the client', async () => {
    const { io, out } = fakeIo();
    const { register, calls } = fakeRegister(async () => sampleResult());
    const code = await runRegister(
      [...ARGS, '--symmetric-key', KEY, '--timeout', '-1', '--json'],
      io,
      register,
    );
    assert.equal(code, 2);
    assert.equal(calls.length, 0);
    assert.match(out.stderr, /--timeout/);
    assert.equal((JSON.parse(out.stdout) as { error: { code: string } }).error.code, 'ERR_INVALID_INPUT');
  });

  test('SIGINT aborts the registration through its signal and exits 130', async () => {
    const { io, out, signals } = fakeIo();
    const { register, calls } = fakeRegister(
      ({ call }) =>
        new Promise((_resolve, reject) => {
          call?.signal?.addEventListener('abort', () => reject(new AbortError()));
          signals.emit('SIGINT');
        }),
    );
    const code = await runRegister([...ARGS, '--symmetric-key', KEY], io, register);
    assert.equal(code, 130);
    assert.equal(calls[0]?.call?.signal?.aborted, true);
    assert.match(out.stderr, /interrupted/);
    assert.equal(signals.listenerCount('SIGINT'), 0, 'the SIGINT handler is removed afterwards');
  });

  test('--trace hands the client a sink that scrubs the keys once more', async () => {
    const { io, out } = fakeIo();
    const deviceKey = deriveDeviceKey(KEY, 'sensor-042');
    const { register } = fakeRegister(async ({ options }) => {
      assert.equal(typeof options.trace, 'function');
      if (typeof options.trace === 'function') options.trace(`-> CONNECT leaked ${KEY} and ${deviceKey}`);
      return sampleResult();
    });
    await runRegister([...ARGS, '--group-key', KEY, '--trace'], io, register);
    assert.match(out.stderr, /-> CONNECT leaked <redacted> and <redacted>/);
  });

  test('--help prints the usage with examples and exits 0', async () => {
    const { io, out } = fakeIo();
    assert.equal(await runRegister(['--help'], io), 0);
    assert.match(out.stdout, /^Usage: dps-mqtt register/);
    assert.match(out.stdout, /Examples/);
    assert.match(out.stdout, /DPS_SYMMETRIC_KEY/);
  });
});
