// Issue 10, library half: encrypted private keys, payloads that cannot become JSON, timer bounds, ID scope
// shape, one credential at a time, unknown option names, and `dps-mqtt/emulator` under node10 resolution.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseRegisterArgs, UsageError } from '../src/cli/args.js';
import { ProvisioningClient, register } from '../src/client/register.js';
import type { ProvisioningClientOptions, TransportKind } from '../src/client/types.js';
import {
  DEMO_GROUP_KEY,
  EmulatorConfigError,
  type EmulatorOptions,
  issueCertificate,
  startEmulator,
} from '../src/emulator/index.js';
import { InvalidInputError } from '../src/protocol/errors.js';
import { suggestOptionNames } from '../src/protocol/known-options.js';
import { serialiseJsonValue, validateIdScope } from '../src/protocol/validate.js';
import { commonMqtt } from '../src/transport/common.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';
import { closeServer, listenOnLoopback, startConnectProxy } from './support/net.js';

const TRANSPORTS: TransportKind[] = ['mqtt-ws', 'mqtt'];
const PASSPHRASE = 'c0rrect horse: battery staple';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

let emulator: TestEmulator;
/** A TCP server that counts connections: a test that expects "nothing sent" points the client here. */
let counter: net.Server;
let counterPort: number;
let connectionsToCounter = 0;

before(async () => {
  emulator = await startTestEmulator();
  counter = net.createServer((socket) => {
    connectionsToCounter += 1;
    socket.destroy();
  });
  counterPort = await listenOnLoopback(counter);
});
after(async () => {
  await emulator.close();
  await closeServer(counter);
});

function endpointOf(transport: TransportKind): string {
  return `localhost:${transport === 'mqtt' ? emulator.mqttPort : emulator.wssPort}`;
}

function groupOptions(registrationId: string, extra: Partial<ProvisioningClientOptions> = {}) {
  return {
    idScope: emulator.idScope,
    registrationId,
    security: { groupKey: DEMO_GROUP_KEY },
    endpoint: endpointOf('mqtt-ws'),
    trustedCa: emulator.caCertPem,
    timeoutMs: 20_000,
    ...extra,
  } satisfies ProvisioningClientOptions;
}

/** Options aimed at the counting server: any connection attempt shows up in connectionsToCounter. */
function offlineOptions(extra: Record<string, unknown> = {}): ProvisioningClientOptions {
  return {
    ...groupOptions('offline-device'),
    endpoint: `127.0.0.1:${counterPort}`,
    timeoutMs: 5_000,
    ...extra,
  } as ProvisioningClientOptions;
}

/** Expects an InvalidInputError on `field` whose message matches, and no connection attempt. */
async function rejectsBeforeNetwork(
  promise: Promise<unknown>,
  field: string,
  message: RegExp,
): Promise<InvalidInputError> {
  const before = connectionsToCounter;
  const error = await promise.then(
    () => assert.fail('expected a rejection'),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof InvalidInputError, `expected an InvalidInputError, got ${String(error)}`);
  assert.equal(error.field, field);
  assert.match(error.message, message);
  assert.equal(connectionsToCounter, before, 'nothing may be sent');
  return error;
}

type KeyFormat = 'legacy PEM (Proc-Type: 4,ENCRYPTED)' | 'PKCS#8 (ENCRYPTED PRIVATE KEY)';
const KEY_FORMATS: KeyFormat[] = ['legacy PEM (Proc-Type: 4,ENCRYPTED)', 'PKCS#8 (ENCRYPTED PRIVATE KEY)'];

async function encryptedDevice(registrationId: string, format: KeyFormat) {
  const device = await issueCertificate({
    issuer: emulator.pki.ca,
    commonName: registrationId,
    usage: 'client',
  });
  const key = createPrivateKey(device.keyPem);
  const legacyType = key.asymmetricKeyType === 'rsa' ? 'pkcs1' : 'sec1';
  const encryptedKeyPem = key
    .export({
      type: format.startsWith('legacy') ? legacyType : 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: PASSPHRASE,
    })
    .toString();
  assert.match(
    encryptedKeyPem,
    format.startsWith('legacy') ? /Proc-Type: 4,ENCRYPTED/ : /BEGIN ENCRYPTED PRIVATE KEY/,
  );
  return { certPem: device.certPem, encryptedKeyPem };
}

describe('issue 10.1: an encrypted private key with its passphrase registers', () => {
  for (const transport of TRANSPORTS) {
    for (const format of KEY_FORMATS) {
      test(`over ${transport}, ${format}`, async () => {
        const registrationId = `enc-${transport}-${format.startsWith('legacy') ? 'legacy' : 'pkcs8'}`;
        const device = await encryptedDevice(registrationId, format);
        const result = await register({
          ...groupOptions(registrationId),
          endpoint: endpointOf(transport),
          transport,
          security: {
            certificate: device.certPem,
            privateKey: device.encryptedKeyPem,
            passphrase: PASSPHRASE,
          },
        });
        assert.equal(result.status, 'assigned');
        assert.equal(result.attestation, 'x509');
        assert.equal(result.deviceId, registrationId);
      });
    }

    test(`over ${transport} through a real CONNECT proxy, key and certificate read from files`, async () => {
      const registrationId = `enc-proxied-${transport}`;
      const device = await encryptedDevice(registrationId, 'PKCS#8 (ENCRYPTED PRIVATE KEY)');
      const dir = await temporaryDirectory();
      const proxy = await startConnectProxy();
      try {
        await writeFile(join(dir.path, 'device.pem'), device.certPem);
        await writeFile(join(dir.path, 'device.key'), device.encryptedKeyPem);
        const result = await register({
          ...groupOptions(registrationId),
          endpoint: endpointOf(transport),
          transport,
          proxy: `http://127.0.0.1:${proxy.port}`,
          security: {
            certificate: join(dir.path, 'device.pem'),
            privateKey: join(dir.path, 'device.key'),
            passphrase: PASSPHRASE,
          },
        });
        assert.equal(result.status, 'assigned');
        assert.deepEqual(proxy.targets, [endpointOf(transport)]);
      } finally {
        await proxy.close();
        await dir.remove();
      }
    });
  }

  for (const format of KEY_FORMATS) {
    test(`a wrong passphrase says the key could not be decrypted, without the secrets (${format})`, async () => {
      const device = await encryptedDevice('enc-wrong', format);
      const error = await rejectsBeforeNetwork(
        register(
          offlineOptions({
            registrationId: 'enc-wrong',
            security: {
              certificate: device.certPem,
              privateKey: device.encryptedKeyPem,
              passphrase: 'wr0ng-pass',
            },
          }),
        ),
        'passphrase',
        /could not be decrypted: check the passphrase/,
      );
      assert.doesNotMatch(error.message, /wr0ng-pass|BEGIN|PRIVATE KEY-----/);
      assert.doesNotMatch(JSON.stringify(error), /wr0ng-pass/);
    });

    test(`an encrypted key without a passphrase asks for one (${format})`, async () => {
      const device = await encryptedDevice('enc-missing', format);
      await rejectsBeforeNetwork(
        register(
          offlineOptions({
            registrationId: 'enc-missing',
            security: { certificate: device.certPem, privateKey: device.encryptedKeyPem },
          }),
        ),
        'passphrase',
        /encrypted and needs its passphrase/,
      );
    });
  }
});

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const cleanEnv: NodeJS.ProcessEnv = { ...process.env, HTTPS_PROXY: '', https_proxy: '', ...env };
  for (const name of Object.keys(cleanEnv)) {
    if (name.startsWith('DPS_') && !(name in env)) delete cleanEnv[name];
  }
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    env: cleanEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(killer);
  return { code, stdout, stderr };
}

describe('issue 10.1: the CLI passes the passphrase to the library', () => {
  let dir: { path: string; remove(): Promise<void> };
  let certPath: string;
  let keyPath: string;
  let caPath: string;
  const registrationId = 'enc-cli-device';
  before(async () => {
    dir = await temporaryDirectory();
    const device = await encryptedDevice(registrationId, 'legacy PEM (Proc-Type: 4,ENCRYPTED)');
    certPath = join(dir.path, 'device.pem');
    keyPath = join(dir.path, 'device.key');
    caPath = join(dir.path, 'ca.pem');
    await writeFile(certPath, device.certPem);
    await writeFile(keyPath, device.encryptedKeyPem);
    await writeFile(caPath, emulator.caCertPem);
  });
  after(() => dir.remove());

  const baseArgs = (transport: TransportKind) => [
    'register',
    '--json',
    '--id-scope',
    emulator.idScope,
    '--endpoint',
    endpointOf(transport),
    '--transport',
    transport,
    '--ca',
    caPath,
    '--cert',
    certPath,
    '--key',
    keyPath,
  ];

  test('--passphrase (over mqtt)', async () => {
    const run = await runCli([...baseArgs('mqtt'), '--passphrase', PASSPHRASE]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).deviceId, registrationId);
  });

  test('DPS_KEY_PASSPHRASE (over mqtt-ws)', async () => {
    const run = await runCli(baseArgs('mqtt-ws'), { DPS_KEY_PASSPHRASE: PASSPHRASE });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).deviceId, registrationId);
  });

  test('a wrong --passphrase is a usage error that does not print the passphrase', async () => {
    const run = await runCli([...baseArgs('mqtt'), '--passphrase', 'n0t-the-passphrase']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(`${run.stdout}${run.stderr}`, /check the passphrase/);
    assert.doesNotMatch(`${run.stdout}${run.stderr}`, /n0t-the-passphrase/);
  });
});

describe('issue 10.2: a payload that cannot become JSON is refused before anything is sent', () => {
  const selfReferencing: Record<string, unknown> = { a: 1 };
  selfReferencing.self = selfReferencing;
  const bad: Array<[string, unknown, RegExp]> = [
    ['a bigint', { a: 1n }, /payload\.a is a bigint/],
    ['an object that refers to itself', selfReferencing, /payload\.self refers back .* \(a cycle\)/],
    ['a function', () => 1, /payload is a function/],
    ['a symbol', Symbol('s'), /payload is a symbol/],
    ['NaN', { reading: Number.NaN }, /payload\.reading is NaN/],
    ['Infinity in an array', [1, Number.POSITIVE_INFINITY], /payload\[1\] is Infinity/],
    ['a nested bigint', { deep: [{ n: 2n }] }, /payload\.deep\[0\]\.n is a bigint/],
    [
      'a toJSON that throws',
      {
        toJSON() {
          throw new Error('no');
        },
      },
      /payload\.toJSON\(\) threw/,
    ],
  ];
  for (const [name, payload, message] of bad) {
    test(`register({ payload: ${name} })`, async () => {
      await rejectsBeforeNetwork(register(offlineOptions({ payload })), 'payload', message);
    });
  }

  test('the per-call payload is checked the same way', async () => {
    const client = new ProvisioningClient(offlineOptions());
    await rejectsBeforeNetwork(client.register({ payload: { a: 1n } as never }), 'payload', /bigint/);
  });

  test('the ProvisioningClient constructor refuses it at once', () => {
    assert.throws(
      () => new ProvisioningClient(offlineOptions({ payload: selfReferencing })),
      (error: unknown) => error instanceof InvalidInputError && error.field === 'payload',
    );
  });

  test('JSON values, dates and undefined members are accepted', () => {
    assert.equal(
      serialiseJsonValue({ a: [1, 'x', null, true], at: new Date(0), skipped: undefined }, 'payload'),
      '{"a":[1,"x",null,true],"at":"1970-01-01T00:00:00.000Z"}',
    );
  });

  test("the transport's registerDevice throws synchronously for such a payload", () => {
    const handle = commonMqtt.create(
      {
        uri: 'localhost:1',
        hsmType: 'symmetricKey',
        idScope: '0ne00000000',
        registrationId: 'd',
        apiVersion: '2019-03-31',
      },
      { transportIo: () => Promise.reject(new Error('unused')), defaultPort: 8883, transportName: 'mqtt' },
    );
    try {
      commonMqtt.open(handle, { onRegistrationData: () => {}, onStatus: () => {} });
      assert.throws(
        () => commonMqtt.registerDevice(handle, { challenge: () => 'token', payload: { a: 1n } as never }),
        (error: unknown) => error instanceof InvalidInputError && error.field === 'payload',
      );
    } finally {
      commonMqtt.destroy(handle);
    }
  });

  test('a payload made unserialisable after the check rejects the promise, not the process', async () => {
    const payload: Record<string, unknown> = { a: 1 };
    const registration = register(groupOptions('mutated-payload', { payload: payload as never }));
    payload.self = payload; // after register() checked it, before the request is sent
    await assert.rejects(
      registration,
      (error: unknown) => error instanceof InvalidInputError && error.field === 'payload',
    );
  });

  test('a trace sink that throws does not break the registration', async () => {
    const result = await register(
      groupOptions('throwing-trace', {
        trace: () => {
          throw new Error('sink is broken');
        },
      }),
    );
    assert.equal(result.status, 'assigned');
  });
});

describe('issue 10.3: delays longer than a timer holds are refused', () => {
  test('timeoutMs 2**31 names the maximum', async () => {
    await rejectsBeforeNetwork(
      register(offlineOptions({ timeoutMs: 2 ** 31 })),
      'timeoutMs',
      /at most 2147483647 ms \(about 24\.8 days/,
    );
  });

  test('the CLI refuses --timeout 99999999999 with the maximum in seconds', () => {
    assert.throws(
      () =>
        parseRegisterArgs(
          [
            '--id-scope',
            '0ne00000000',
            '--registration-id',
            'd',
            '--group-key',
            DEMO_GROUP_KEY,
            '--timeout',
            '99999999999',
          ],
          {},
        ),
      (error: unknown) =>
        error instanceof UsageError &&
        error.flag === '--timeout' &&
        /at most 2147483 seconds/.test(error.message),
    );
  });

  test('timeoutMs 2**31-1 is accepted', () => {
    assert.doesNotThrow(() => new ProvisioningClient(offlineOptions({ timeoutMs: 2 ** 31 - 1 })));
  });

  const bad: Array<[string, Record<string, unknown>, string, RegExp]> = [
    [
      'retry.initialDelayMs 2**31',
      { retry: { initialDelayMs: 2 ** 31 } },
      'retry.initialDelayMs',
      /at most 2147483647 ms/,
    ],
    ['retry.maxDelayMs 1e12', { retry: { maxDelayMs: 1e12 } }, 'retry.maxDelayMs', /at most 2147483647 ms/],
    ['retry.maxDelayMs -1', { retry: { maxDelayMs: -1 } }, 'retry.maxDelayMs', /-1 is invalid/],
    [
      'retry.initialDelayMs NaN',
      { retry: { initialDelayMs: Number.NaN } },
      'retry.initialDelayMs',
      /NaN is invalid/,
    ],
    ['keepAliveSeconds 70000', { keepAliveSeconds: 70_000 }, 'keepAliveSeconds', /70000 is invalid.*65535/],
    ['keepAliveSeconds 1.5', { keepAliveSeconds: 1.5 }, 'keepAliveSeconds', /1\.5 is invalid/],
  ];
  for (const [name, override, field, message] of bad) {
    test(`${name} is an InvalidInputError`, () => {
      assert.throws(
        () => new ProvisioningClient(offlineOptions(override)),
        (error: unknown) =>
          error instanceof InvalidInputError && error.field === field && message.test(error.message),
      );
    });
  }
});

describe('issue 10.4: input DPS would refuse is refused up front', () => {
  for (const idScope of ['abc', '0ne0000000', '0ne000000000', '1ne00000000', '0ne0000000!']) {
    test(`ID scope ${JSON.stringify(idScope)} is refused, showing the expected shape`, async () => {
      await rejectsBeforeNetwork(
        register(offlineOptions({ idScope })),
        'idScope',
        /0ne followed by 8 letters or digits, e\.g\. 0ne00A1B2C3/,
      );
    });
  }

  test('ID scopes as DPS issues them are accepted (and the emulator default)', () => {
    for (const idScope of ['0ne00000000', '0ne00A1B2C3', '0ne0012345a'])
      assert.equal(validateIdScope(idScope), idScope);
  });

  test('the CLI refuses --id-scope abc as a usage error', () => {
    assert.throws(
      () =>
        parseRegisterArgs(['--id-scope', 'abc', '--registration-id', 'd', '--group-key', DEMO_GROUP_KEY], {}),
      (error: unknown) => error instanceof UsageError && /0ne00A1B2C3/.test(error.message),
    );
  });

  const pairs: Array<[string, Record<string, string>, RegExp]> = [
    [
      'groupKey and symmetricKey',
      { groupKey: DEMO_GROUP_KEY, symmetricKey: DEMO_GROUP_KEY },
      /symmetricKey and groupKey/,
    ],
    [
      'a key and a certificate',
      { symmetricKey: DEMO_GROUP_KEY, certificate: 'c.pem', privateKey: 'k.pem' },
      /symmetricKey and certificate/,
    ],
  ];
  for (const [name, security, message] of pairs) {
    test(`two credentials at once (${name}) are refused, naming both`, async () => {
      await rejectsBeforeNetwork(register(offlineOptions({ security })), 'security', message);
    });
  }

  test('a passphrase with a symmetric key is refused', async () => {
    await rejectsBeforeNetwork(
      register(offlineOptions({ security: { groupKey: DEMO_GROUP_KEY, passphrase: 'x' } })),
      'passphrase',
      /goes with \{ certificate, privateKey \}/,
    );
  });

  test('timeoutMs NaN prints NaN, not null', async () => {
    await rejectsBeforeNetwork(
      register(offlineOptions({ timeoutMs: Number.NaN })),
      'timeoutMs',
      /timeoutMs NaN is invalid/,
    );
  });
});

describe('issue 10.8: unknown option names are errors', () => {
  const bad: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['ca (for trustedCa)', { ca: 'x' }, 'ca', /option "ca" is unknown \(did you mean "trustedCa"\?\)/],
    ['timeout (for timeoutMs)', { timeout: 5 }, 'timeout', /did you mean "timeoutMs"/],
    ['registrationID', { registrationID: 'd' }, 'registrationID', /did you mean "registrationId"/],
    ['a name like no other', { zzz: 1 }, 'zzz', /option "zzz" is unknown: known options are idScope, /],
    [
      'security.privatekey',
      { security: { certificate: 'c', privatekey: 'k' } },
      'security.privatekey',
      /did you mean "security\.privateKey"/,
    ],
    ['retry.maxDelay', { retry: { maxDelay: 5 } }, 'retry.maxDelay', /did you mean "retry\.maxDelayMs"/],
    [
      'proxy.user',
      { proxy: { host: '127.0.0.1', port: 3128, user: 'u' } },
      'proxy.user',
      /did you mean "proxy\.username"/,
    ],
  ];
  for (const [name, override, field, message] of bad) {
    test(`register({ ${name} })`, async () => {
      await rejectsBeforeNetwork(register(offlineOptions(override)), field, message);
    });
  }

  test('an unknown per-call option', async () => {
    const client = new ProvisioningClient(offlineOptions());
    await rejectsBeforeNetwork(
      client.register({ signl: AbortSignal.timeout(1000) } as never),
      'signl',
      /did you mean "signal"/,
    );
  });

  const emulatorBad: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['mqtPort', { mqtPort: 0 }, 'mqtPort', /did you mean "mqttPort"/],
    ['ca', { ca: 'x' }, 'ca', /option "ca" is unknown/],
    [
      'throttle.first',
      { throttle: { first: 1 } },
      'throttle.first',
      /did you mean "throttle\.firstRequests"/,
    ],
    [
      'faults.dropBeforeConack',
      { faults: { dropBeforeConack: 1 } },
      'faults.dropBeforeConack',
      /dropBeforeConnack/,
    ],
    ['enrollments.idScope', { enrollments: { idScope: '0ne00000000' } }, 'enrollments.idScope', /unknown/],
  ];
  for (const [name, options, field, message] of emulatorBad) {
    test(`startEmulator({ ${name} }) is an EmulatorConfigError before anything starts`, async () => {
      await assert.rejects(
        startEmulator({
          host: '127.0.0.1',
          mqttPort: 0,
          wssPort: 0,
          pki: emulator.pki,
          ...options,
        } as EmulatorOptions),
        (error: unknown) =>
          error instanceof EmulatorConfigError && error.field === field && message.test(error.message),
      );
    });
  }

  const suggestions: Array<[string, string[], string[]]> = [
    ['ca', ['certificate', 'trustedCa', 'trustMode'], ['trustedCa']],
    ['id', ['idScope', 'registrationId', 'payload'], ['idScope', 'registrationId']],
    ['cert', ['certificate', 'privateKey'], ['certificate']],
    ['paylod', ['payload', 'proxy'], ['payload']],
    ['keepalive', ['keepAliveSeconds'], ['keepAliveSeconds']],
    ['x', ['idScope', 'proxy'], []],
  ];
  for (const [name, known, expected] of suggestions) {
    test(`suggests ${JSON.stringify(expected)} for ${JSON.stringify(name)}`, () => {
      assert.deepEqual(suggestOptionNames(name, known), expected);
    });
  }
});

// The rest of item 9 (literal result status, error codes that narrow, typed emulator configuration) is
// checked at compile time: test/issue10-types.typecheck.ts.
describe('issue 10.9: the emulator entry point resolves for older TypeScript setups', () => {
  test('a node10 (moduleResolution: node) consumer resolves dps-mqtt/emulator through typesVersions', async () => {
    const dir = await temporaryDirectory();
    try {
      const pkg = join(dir.path, 'node_modules', 'dps-mqtt');
      await mkdir(join(pkg, 'dist', 'emulator'), { recursive: true });
      await writeFile(join(pkg, 'package.json'), await readFile(join(ROOT, 'package.json'), 'utf8'));
      await writeFile(join(pkg, 'dist', 'index.d.ts'), 'export declare const root: 1;\n');
      await writeFile(join(pkg, 'dist', 'emulator', 'index.d.ts'), 'export declare const emulator: 2;\n');
      await writeFile(
        join(dir.path, 'consumer.ts'),
        "import { root } from 'dps-mqtt';\nimport { emulator } from 'dps-mqtt/emulator';\nexport const both: [1, 2] = [root, emulator];\n",
      );
      await symlink(join(ROOT, 'node_modules', 'typescript'), join(dir.path, 'node_modules', 'typescript'));
      const tsc = spawn(
        process.execPath,
        [
          join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
          '--noEmit',
          '--strict',
          '--module',
          'commonjs',
          '--moduleResolution',
          'node10',
          '--ignoreDeprecations',
          '5.0',
          'consumer.ts',
        ],
        { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      tsc.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      tsc.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const [code] = (await once(tsc, 'close')) as [number | null];
      assert.equal(code, 0, output);
    } finally {
      await dir.remove();
    }
  });
});
