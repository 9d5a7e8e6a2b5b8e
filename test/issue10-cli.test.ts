// Issue 10, items 5, 6, 7, 10 and 14: malformed proxy URLs, SIGTERM, the demo's "Next:" commands,
// the emulator's bad input, and `--version` / `help <command>`.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { parseRegisterArgs, type RegisterInvocation } from '../src/cli/args.js';
import { registerAndReport } from '../src/cli/commands/register.js';
import { ExitCode } from '../src/cli/exit-codes.js';
import type { CliIo } from '../src/cli/output.js';
import { parseProxyUrl, resolveProxy } from '../src/client/proxy-from-env.js';
import { register } from '../src/client/register.js';
import { runEmulatorCli } from '../src/emulator/cli.js';
import { EmulatorDirectoryError, usingDirectory } from '../src/emulator/directory-error.js';
import { DEMO_GROUP_KEY, parseEmulatorConfig } from '../src/emulator/enrollments/config.js';
import { AbortError, InvalidInputError } from '../src/protocol/errors.js';
import { redact } from '../src/protocol/redact.js';
import { startTestEmulator, type TestEmulator, temporaryDirectory } from './helpers/emulator.js';
import { type CliChild, type CliRun, ROOT, runCli, startCli } from './support/cli-process.js';

const PROXY_PASSWORD = 'proxy-pw-s3cret';

type Run = CliRun;
type Child = CliChild;

const start = (args: string[], env: Record<string, string> = {}): Child => startCli(args, { env });
const run = (args: string[], env: Record<string, string> = {}): Promise<Run> => runCli(args, { env });

/** Resolves once the child's stderr matches, fails if it exits first. */
function waitForStderr(child: Child, pattern: RegExp): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (pattern.test(child.output().stderr)) {
        child.stderr?.off('data', check);
        resolve();
      }
    };
    child.stderr?.on('data', check);
    check();
    void child.result.then((result) =>
      reject(new Error(`exited before ${pattern}: ${JSON.stringify(result)}`)),
    );
  });
}

/** Splits a printed shell command line into words: plain words and '…' quoted ones (what shellWord writes). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const pattern = /'((?:[^']|'\\'')*)'|([^\s']+)/g;
  for (const match of line.matchAll(pattern)) {
    words.push(match[1] !== undefined ? match[1].replaceAll("'\\''", "'") : (match[2] ?? ''));
  }
  return words;
}

const GROUP_KEY = 'Z3JvdXAtMS10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2g=';
const REGISTER_BASE = ['--id-scope', '0ne00000000', '--registration-id', 'issue10-device'];

describe('issue 10 item 5: malformed proxy URLs are rejected before any I/O', () => {
  const malformed = [
    ['http//u:PW@127.0.0.1', /path after the host/],
    ['http:/u:PW@127.0.0.1', /path after the host/],
    ['http://u:PW@proxy:3128/path', /path, query or fragment/],
    ['http://u:PW@proxy:3128?x=1', /path, query or fragment/],
    ['http://u:PW@[bad', /cannot be parsed/],
    ['http://u:PW@proxy:99999', /cannot be parsed/],
    ['http://u:PW@proxy:0', /port must be 1 to 65535/],
    ['http://u:PW@:3128', /cannot be parsed/],
    ['http://u:PW@ proxy', /white space/],
    ['', /empty/],
  ] as const;
  for (const [text, reason] of malformed) {
    const given = text.replace('PW', PROXY_PASSWORD);
    test(`${JSON.stringify(text)} is refused with the expected shape, the password not shown`, () => {
      assert.throws(
        () => parseProxyUrl(given, '--proxy'),
        (error: unknown) => {
          assert.ok(error instanceof InvalidInputError);
          assert.equal(error.field, '--proxy');
          assert.match(error.message, reason);
          assert.match(error.message, /expected http:\/\/host:port/);
          assert.doesNotMatch(error.message, new RegExp(PROXY_PASSWORD));
          // The hint survives redaction as written: no `<redacted>` in the middle of it.
          assert.equal(redact(error.message), error.message);
          return true;
        },
      );
    });
  }

  test('other schemes are refused with the expected shape', () => {
    assert.throws(() => parseProxyUrl('socks5://proxy:1080', 'proxy'), /only http:\/\/ proxies/);
  });

  test('well-formed proxy URLs still parse, with or without the scheme', () => {
    assert.deepEqual(parseProxyUrl('proxy.corp:3128', 'proxy'), { host: 'proxy.corp', port: 3128 });
    assert.deepEqual(parseProxyUrl('http://me:p%40ss@[::1]:8080/', 'proxy'), {
      host: '::1',
      port: 8080,
      username: 'me',
      password: 'p@ss',
    });
    assert.deepEqual(parseProxyUrl('http://proxy', 'proxy'), { host: 'proxy', port: 80 });
  });

  test('a malformed HTTPS_PROXY / https_proxy is refused, naming the variable that was set', () => {
    const bad = `http//me:${PROXY_PASSWORD}@127.0.0.1`;
    assert.throws(
      () => resolveProxy(undefined, 'dps.example', { HTTPS_PROXY: bad }),
      /^InvalidInputError: HTTPS_PROXY is not a valid proxy URL/,
    );
    assert.throws(
      () => resolveProxy(undefined, 'dps.example', { https_proxy: bad }),
      /https_proxy is not a valid/,
    );
    // Not used, so not checked: NO_PROXY matches.
    assert.equal(
      resolveProxy(undefined, 'dps.example', { HTTPS_PROXY: bad, NO_PROXY: 'dps.example' }),
      undefined,
    );
  });

  test('register() with a malformed proxy option rejects with InvalidInputError', async () => {
    await assert.rejects(
      register({
        idScope: '0ne00000000',
        registrationId: 'issue10-device',
        security: { groupKey: GROUP_KEY },
        endpoint: '127.0.0.1:9',
        proxy: `http//me:${PROXY_PASSWORD}@127.0.0.1`,
        timeoutMs: 5_000,
      }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidInputError, String(error));
        assert.equal(error.field, 'proxy');
        return true;
      },
    );
  });

  test('parseRegisterArgs turns a malformed --proxy into a usage error naming --proxy', () => {
    assert.throws(
      () => parseRegisterArgs([...REGISTER_BASE, '--group-key', GROUP_KEY, '--proxy', 'http//u:pw@h'], {}),
      (error: unknown) => {
        assert.equal((error as { name?: string }).name, 'UsageError');
        assert.equal((error as { flag?: string }).flag, '--proxy');
        assert.match(String((error as Error).message), /^--proxy is not a valid proxy URL/);
        return true;
      },
    );
  });

  test('dps-mqtt register --proxy http//… exits 2 with a JSON error, no DNS lookup of "http"', async () => {
    const { code, stdout, stderr } = await run([
      'register',
      ...REGISTER_BASE,
      '--group-key',
      GROUP_KEY,
      '--proxy',
      `http//me:${PROXY_PASSWORD}@127.0.0.1`,
      '--timeout',
      '5',
      '--json',
    ]);
    assert.equal(code, 2, stderr);
    const { error } = JSON.parse(stdout) as { error: { code: string; message: string } };
    assert.equal(error.code, 'ERR_INVALID_INPUT');
    assert.match(error.message, /--proxy is not a valid proxy URL/);
    assert.doesNotMatch(stdout + stderr, new RegExp(PROXY_PASSWORD));
    assert.doesNotMatch(stdout + stderr, /ENOTFOUND|<redacted>/);
  });

  test('a malformed HTTPS_PROXY exits 2 with a hint that is not itself redacted', async () => {
    const { code, stdout, stderr } = await run(
      ['register', ...REGISTER_BASE, '--group-key', GROUP_KEY, '--json'],
      {
        HTTPS_PROXY: `http//me:${PROXY_PASSWORD}@127.0.0.1`,
      },
    );
    assert.equal(code, 2, stderr);
    assert.match(stderr, /HTTPS_PROXY is not a valid proxy URL/);
    assert.match(stderr, /put user:password@ before the host/);
    assert.doesNotMatch(stdout + stderr, new RegExp(`${PROXY_PASSWORD}|<redacted>|ENOTFOUND`));
  });
});

describe('issue 10 item 6: SIGTERM stops a registration like SIGINT does', () => {
  let silentEmulator: TestEmulator;
  before(async () => {
    // Answers "assigning" forever: the registration is in flight when the signal comes.
    silentEmulator = await startTestEmulator({ retryAfterSeconds: 1, assignmentDelayMs: 600_000 });
  });
  after(async () => {
    await silentEmulator.close();
  });

  test('register --json, SIGTERM: the JSON error on stdout, a line on stderr, exit code 143', async () => {
    const child = start([
      'register',
      '--endpoint',
      `127.0.0.1:${silentEmulator.wssPort}`,
      '--ca',
      silentEmulator.pki.caPath,
      ...REGISTER_BASE,
      '--group-key',
      DEMO_GROUP_KEY,
      '--json',
      '--trace',
    ]);
    await waitForStderr(child, /iotdps-register/);
    child.kill('SIGTERM');
    const { code, signal, stdout, stderr } = await child.result;
    assert.equal(signal, null, 'the process handles SIGTERM instead of dying of it');
    assert.equal(code, ExitCode.terminated, stderr);
    assert.equal(code, 143);
    const { error } = JSON.parse(stdout) as { error: { code: string } };
    assert.equal(error.code, 'ERR_ABORTED');
    assert.match(stderr, /terminated \(SIGTERM\), closing the connection/);
  });

  test('registerAndReport aborts on SIGTERM, returns 143 and removes both signal handlers', async () => {
    const signals = new EventEmitter();
    const out = { stdout: '', stderr: '' };
    const io: CliIo = {
      stdout: { write: (text: string) => (out.stdout += text) },
      stderr: { write: (text: string) => (out.stderr += text) },
      stderrIsTTY: false,
      env: {},
      signals: signals as unknown as CliIo['signals'],
    };
    const invocation: RegisterInvocation = {
      options: {
        idScope: '0ne00000000',
        registrationId: 'issue10-device',
        security: { groupKey: GROUP_KEY },
      },
      json: true,
      trace: false,
      quiet: true,
      secrets: [],
    };
    let aborted = false;
    const code = await registerAndReport(invocation, io, {
      command: 'dps-mqtt demo',
      progress: false,
      register: (_options, call) =>
        new Promise((_resolve, reject) => {
          call?.signal?.addEventListener('abort', () => {
            aborted = true;
            reject(new AbortError());
          });
          signals.emit('SIGTERM', 'SIGTERM');
          // Bounded: without a SIGTERM handler nothing aborts, and the registration fails here instead.
          if (!call?.signal?.aborted) reject(new Error('SIGTERM did not abort the registration'));
        }),
    });
    assert.equal(code, 143);
    assert.ok(aborted);
    assert.equal((JSON.parse(out.stdout) as { error: { code: string } }).error.code, 'ERR_ABORTED');
    assert.match(out.stderr, /dps-mqtt demo: terminated \(SIGTERM\)/);
    assert.equal(signals.listenerCount('SIGTERM'), 0);
    assert.equal(signals.listenerCount('SIGINT'), 0);
  });

  test('demo, SIGTERM while registering: stops the emulator and exits 143 with the error', async () => {
    const pkiDir = await temporaryDirectory();
    try {
      // The demo's emulator asks for a 1 s retry-after before the status query: SIGTERM lands in it.
      const child = start(['demo', '--pki-dir', pkiDir.path, '--trace']);
      await waitForStderr(child, /iotdps-register/);
      child.kill('SIGTERM');
      const { code, signal, stderr } = await child.result;
      assert.equal(signal, null, stderr);
      assert.equal(code, 143, stderr);
      assert.match(stderr, /dps-mqtt demo: terminated \(SIGTERM\)/);
      assert.match(stderr, /ERR_ABORTED/);
    } finally {
      await pkiDir.remove();
    }
  });

  test('dps-mqtt emulator stops cleanly on SIGTERM (exit 0, "stopped")', async () => {
    const pkiDir = await temporaryDirectory();
    try {
      const child = start(['emulator', '--mqtt-port', '0', '--wss-port', '0', '--pki-dir', pkiDir.path]);
      const lines = createInterface({ input: child.stdout! });
      const [ready] = (await Promise.race([
        once(lines, 'line'),
        child.result.then((result) => {
          throw new Error(`the emulator exited before it was ready: ${JSON.stringify(result)}`);
        }),
      ])) as [string];
      assert.equal((JSON.parse(ready) as { event: string }).event, 'ready');
      child.kill('SIGTERM');
      const { code, signal, stderr } = await child.result;
      assert.equal(signal, null);
      assert.equal(code, 0, stderr);
      assert.match(stderr, /"event":"stopped"/);
    } finally {
      await pkiDir.remove();
    }
  });
});

describe('issue 10 item 7: commands people are told to run can be run as printed', () => {
  test('the demo explains itself and prints runnable npx commands with the real demo key', async () => {
    // A PKI directory with a space: the printed commands must quote it.
    const parent = await temporaryDirectory();
    const pkiDir = join(parent.path, 'pki dir');
    let emulator: Child | undefined;
    try {
      const demo = await run(['demo', '--pki-dir', pkiDir, '--quiet']);
      assert.equal(demo.code, 0, demo.stderr);
      assert.match(demo.stdout, /group enrollment/);
      assert.match(demo.stdout, /derived from the group key/);
      assert.match(demo.stdout, /emulated-hub\.azure-devices\.net, is a made-up name: no real IoT hub/);

      const next = demo.stdout.slice(demo.stdout.indexOf('\nNext:'));
      assert.ok(next.length > 6, demo.stdout);
      const commands = next
        .split('\n')
        .slice(2)
        .join('\n')
        .replace(/ \\\n\s*/g, ' ')
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean);
      assert.equal(commands.length, 2, next);
      for (const command of commands) {
        assert.match(command, /^npx dps-mqtt /);
        assert.doesNotMatch(command, /[<>]/, 'nothing a shell would read as a redirect');
      }
      const [emulatorCommand, registerCommand] = commands.map(shellWords) as [string[], string[]];
      assert.ok(registerCommand.includes(DEMO_GROUP_KEY));

      // Run them: the emulator as printed (on free ports), then the register command pointed at it.
      emulator = start([...emulatorCommand.slice(2), '--mqtt-port', '0', '--wss-port', '0', '--quiet']);
      const lines = createInterface({ input: emulator.stdout! });
      const [readyLine] = (await Promise.race([
        once(lines, 'line'),
        emulator.result.then((result) => {
          throw new Error(`the emulator exited: ${JSON.stringify(result)}`);
        }),
      ])) as [string];
      const ready = JSON.parse(readyLine) as { wssPort: number };
      const registerArgs = registerCommand.slice(2);
      const endpoint = registerArgs.indexOf('--endpoint');
      assert.equal(registerArgs[endpoint + 1], '127.0.0.1:8443');
      registerArgs[endpoint + 1] = `127.0.0.1:${ready.wssPort}`;
      const registration = await run([...registerArgs, '--json']);
      assert.equal(registration.code, 0, registration.stderr);
      assert.equal((JSON.parse(registration.stdout) as { status: string }).status, 'assigned');
    } finally {
      emulator?.kill('SIGTERM');
      await emulator?.result;
      await parent.remove();
    }
  });

  test('the README runs commands through npx: no bare `dps-mqtt …` command lines', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)].map(
      (match) => match[1] ?? '',
    );
    const bare = blocks.flatMap((block) => block.split('\n')).filter((line) => /^\s*dps-mqtt\s/.test(line));
    assert.deepEqual(bare, []);
    assert.match(readme, /npx dps-mqtt register/);
  });
});

describe('issue 10 item 10: the emulator says what is wrong with its input', () => {
  let pkiDir: { path: string; remove(): Promise<void> };
  before(async () => {
    pkiDir = await temporaryDirectory();
  });
  after(async () => {
    await pkiDir.remove();
  });

  function collector() {
    let text = '';
    return {
      write(chunk: string) {
        text += chunk;
        return true;
      },
      get text() {
        return text;
      },
    };
  }

  /** Runs the emulator CLI in this process; for arguments that make it return (not serve). */
  async function emulatorCli(args: string[]): Promise<{ code: number; stderr: string }> {
    const stdout = collector();
    const stderr = collector();
    const signals = new EventEmitter();
    const code = await runEmulatorCli(['--mqtt-port', '0', '--wss-port', '0', '--quiet', ...args], {
      stdout,
      stderr,
      signals: signals as unknown as NodeJS.Process,
    });
    assert.equal(stdout.text, '', 'no ready line');
    return { code, stderr: stderr.text };
  }

  test('--host with an address of another machine says why it cannot listen', async () => {
    const { code, stderr } = await emulatorCli(['--host', '203.0.113.7', '--pki-dir', pkiDir.path]);
    assert.equal(code, 1);
    assert.match(
      stderr,
      /cannot listen on 203\.0\.113\.7:\d+: 203\.0\.113\.7 is not an address of this machine \(EADDRNOTAVAIL\)/,
    );
  });

  test('a data directory under a regular file: the directory named, no temporary file path', async () => {
    const file = join(pkiDir.path, 'a-file');
    await writeFile(file, 'not a directory');
    const dataDir = join(file, 'data');
    const { code, stderr } = await emulatorCli(['--data-dir', dataDir]);
    assert.equal(code, 1);
    assert.match(
      stderr,
      /the data directory ".*a-file\/data" cannot be written: a part of the path is a file/,
    );
    assert.match(stderr, /--data-dir DIR/);
    assert.doesNotMatch(stderr, /\.tmp/);
  });

  test('a read-only data directory (chmod 0500) says it is not writable', async (t) => {
    if (process.getuid?.() === 0) {
      t.skip(
        'running as root, which may write to a chmod 0500 directory; the ENOTDIR and EROFS cases cover the message',
      );
      return;
    }
    const dataDir = join(pkiDir.path, 'read-only');
    await mkdir(dataDir);
    await chmod(dataDir, 0o500);
    try {
      const { code, stderr } = await emulatorCli(['--data-dir', dataDir]);
      assert.equal(code, 1);
      assert.match(
        stderr,
        /the data directory ".*read-only" cannot be written: this user may not write there \(EACCES\)/,
      );
      assert.doesNotMatch(stderr, /\.tmp/);
    } finally {
      await chmod(dataDir, 0o700);
    }
  });

  test('an EROFS about a temporary file inside the directory becomes a message about the directory', async () => {
    const dataDir = join(pkiDir.path, 'on-a-read-only-mount');
    const temporary = join(dataDir, 'ca.pem.123.456.tmp');
    await assert.rejects(
      usingDirectory(dataDir, 'dataDir', async () => {
        throw Object.assign(new Error(`EROFS: read-only file system, open '${temporary}'`), {
          code: 'EROFS',
          path: temporary,
        });
      }),
      (error: unknown) => {
        assert.ok(error instanceof EmulatorDirectoryError);
        assert.equal(error.directory, dataDir);
        assert.equal(
          error.message,
          `the data directory ${JSON.stringify(dataDir)} cannot be written: it is on a read-only file system (EROFS); choose a directory on a writable one`,
        );
        return true;
      },
    );
    // An error about something else (a missing openssl binary) passes through unchanged.
    const spawnError = Object.assign(new Error('spawn openssl ENOENT'), { code: 'ENOENT', path: 'openssl' });
    await assert.rejects(
      usingDirectory(dataDir, 'dataDir', async () => {
        throw spawnError;
      }),
      (error: unknown) => error === spawnError,
    );
  });

  test('--hub with a bad host name is a usage error that shows the shape', async () => {
    const { code, stderr } = await emulatorCli(['--hub', 'bad!', '--pki-dir', pkiDir.path]);
    assert.equal(code, 2);
    assert.match(
      stderr,
      /--hub: "bad!" is not a valid IoT hub host name: use letters, digits, - and \. \(e\.g\. my-hub\.azure-devices\.net\)/,
    );
    assert.doesNotMatch(stderr, /expected an array/);
  });

  test('a bad hub in a configuration names the entry, not "expected an array"', async () => {
    await assert.rejects(
      parseEmulatorConfig({ iotHubs: ['good-hub.azure-devices.net', 'bad!'] }),
      (error: unknown) => {
        assert.match(
          String((error as Error).message),
          /iotHubs\[1\]: "bad!" is not a valid IoT hub host name/,
        );
        return true;
      },
    );
  });

  test('a bad key in --device is a usage error (exit 2) that does not echo the key', async () => {
    const { code, stderr } = await emulatorCli([
      '--device',
      'dev-1=not-base64-secret!',
      '--pki-dir',
      pkiDir.path,
    ]);
    assert.equal(code, 2);
    assert.match(
      stderr,
      /--device dev-1=KEY: the key is not valid: expected a base64 key of at least 16 bytes/,
    );
    assert.doesNotMatch(stderr, /not-base64-secret/);
  });

  test('a bad registration id in --device is a usage error (exit 2)', async () => {
    const { code, stderr } = await emulatorCli([
      '--device',
      `Bad_Id=${DEMO_GROUP_KEY}`,
      '--pki-dir',
      pkiDir.path,
    ]);
    assert.equal(code, 2);
    assert.match(stderr, /--device: registration id "Bad_Id" is invalid/);
  });

  test('a bad --group-key and a bad --id-scope are usage errors too', async () => {
    assert.equal((await emulatorCli(['--group-key', 'c2hvcnQ=', '--pki-dir', pkiDir.path])).code, 2);
    const scope = await emulatorCli(['--id-scope', 'abc', '--pki-dir', pkiDir.path]);
    assert.equal(scope.code, 2);
    assert.match(scope.stderr, /--id-scope: ID scope "abc" is invalid/);
  });
});

describe('issue 10 item 14: --version and help <command>', () => {
  test('--version prints the version in package.json', async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const { code, stdout } = await run(['--version']);
    assert.equal(code, 0);
    assert.equal(stdout, `${version}\n`);
    assert.equal((await run(['version'])).stdout, `${version}\n`);
  });

  for (const command of ['register', 'derive-key', 'emulator', 'demo']) {
    test(`help ${command} prints the same as ${command} --help`, async () => {
      const [help, flag] = await Promise.all([run(['help', command]), run([command, '--help'])]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, new RegExp(`^Usage: dps-mqtt ${command} `));
      assert.equal(help.stdout, flag.stdout);
    });
  }

  test('help for an unknown command exits 2', async () => {
    const { code, stderr } = await run(['help', 'regster']);
    assert.equal(code, 2);
    assert.match(stderr, /unknown command "regster"/);
  });
});
