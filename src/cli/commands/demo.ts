// `dps-mqtt demo` (`npm start`): the quick start. Starts the embedded emulator on free loopback ports,
// registers a demo group-enrollment device over MQTT over WebSocket, prints the assignment, stops.
import type { ProvisioningClientOptions } from '../../client/types.js';
import { parseFlags, UsageError } from '../args.js';
import { ExitCode } from '../exit-codes.js';
import type { CliIo } from '../output.js';
import { registerAndReport, reportError } from './register.js';

export const DEMO_REGISTRATION_ID = 'demo-sensor-001';

export const DEMO_USAGE = `Usage: dps-mqtt demo [options]

The quick start: starts a local DPS emulator on free loopback ports, registers a demo device
(a member of the emulator's demo group enrollment) over MQTT over WebSocket,
prints its IoT hub assignment and device connection string, stops the emulator and exits.
The emulator's CA is generated once with the openssl binary and kept in the PKI directory.
Documentation: https://github.com/dps-mqtt/dps-mqtt/blob/main/docs/emulator.md

  --registration-id ID     the demo device (default ${DEMO_REGISTRATION_ID})
  --transport mqtt-ws|mqtt MQTT over WebSocket (default) or MQTT over TLS
  --pki-dir DIR            where the emulator's CA lives (default ~/.dps-mqtt/emulator)
  --json                   print only the result as one JSON object on stdout
  --trace                  print every MQTT packet on stderr (secrets redacted)
  -q, --quiet              no progress lines
  -h, --help               this help

Examples
  npm start
  dps-mqtt demo --transport mqtt --trace
`;

const DEMO_FLAGS = {
  'registration-id': { type: 'string' },
  transport: { type: 'string' },
  'pki-dir': { type: 'string' },
  json: { type: 'boolean' },
  trace: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runDemo(argv: string[], io: CliIo): Promise<number> {
  const command = 'dps-mqtt demo';
  let flags: ReturnType<typeof parseFlags<typeof DEMO_FLAGS>>;
  try {
    flags = parseFlags(argv, DEMO_FLAGS);
    const transport = flags.transport;
    if (transport !== undefined && transport !== 'mqtt-ws' && transport !== 'mqtt') {
      throw new UsageError(
        `--transport must be mqtt-ws or mqtt, not ${JSON.stringify(transport)}`,
        '--transport',
      );
    }
  } catch (error) {
    return reportError(command, error, io, argv.includes('--json'), []);
  }
  if (flags.help) {
    io.stdout.write(DEMO_USAGE);
    return ExitCode.ok;
  }
  const json = flags.json ?? false;
  const say = (text: string): void => {
    if (!json) io.stdout.write(text);
  };

  const { startEmulator, DEMO_GROUP_KEY } = await import('../../emulator/index.js');

  let emulator: Awaited<ReturnType<typeof startEmulator>>;
  try {
    emulator = await startEmulator({
      host: '127.0.0.1',
      mqttPort: 0,
      wssPort: 0,
      ...(flags['pki-dir'] === undefined ? {} : { pkiDir: flags['pki-dir'] }),
    });
  } catch (error) {
    io.stderr.write(
      `${command}: the emulator could not start: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return ExitCode.failure;
  }

  try {
    const transport = flags.transport === 'mqtt' ? 'mqtt' : 'mqtt-ws';
    const port = transport === 'mqtt' ? emulator.mqttPort : emulator.wssPort;
    const registrationId = flags['registration-id'] ?? DEMO_REGISTRATION_ID;
    const options: ProvisioningClientOptions = {
      idScope: emulator.idScope,
      registrationId,
      security: { groupKey: DEMO_GROUP_KEY },
      endpoint: `${emulator.host}:${port}`,
      transport,
      trustedCa: emulator.caCertPem,
      proxy: false, // loopback: never through HTTPS_PROXY
      timeoutMs: 30_000,
    };
    say(
      `Started a local DPS emulator: ID scope ${emulator.idScope}, MQTT over TLS on ${emulator.host}:${emulator.mqttPort}, ` +
        `MQTT over WebSocket on ${emulator.host}:${emulator.wssPort}\n` +
        `${demoExplanation(emulator.config.iotHubs)}\n` +
        `Registering ${registrationId} with its derived key over ${transport === 'mqtt' ? 'MQTT over TLS' : 'MQTT over WebSocket'}...\n\n`,
    );
    const code = await registerAndReport(
      { options, json, trace: flags.trace ?? false, quiet: flags.quiet ?? false, secrets: [DEMO_GROUP_KEY] },
      io,
      { command, progress: !(flags.quiet ?? false) },
    );
    if (code === ExitCode.ok) {
      say(
        nextSteps({
          idScope: emulator.idScope,
          registrationId,
          caPath: emulator.caPath,
          pkiDir: flags['pki-dir'],
          groupKey: DEMO_GROUP_KEY,
        }),
      );
    }
    return code;
  } finally {
    await emulator.close();
  }
}

/** What the demo does, in words: a group enrollment, a derived key, and a hub that is not a real one. */
function demoExplanation(iotHubs: readonly string[]): string {
  return (
    "The demo device is a member of the emulator's demo group enrollment: DPS admits any device whose key\n" +
    'is derived from the group key (HMAC-SHA256 of its registration id; npx dps-mqtt derive-key prints it),\n' +
    'so devices need not be enrolled one by one. The IoT hub it assigns,\n' +
    `${iotHubs.join(', ')}, is a made-up name: no real IoT hub is there.\n`
  );
}

/** Quotes a word for a POSIX shell when it needs it, so that every printed command can be pasted. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/** Commands to paste: no placeholders, and `npx` because a clone does not put dps-mqtt on the PATH. */
function nextSteps(next: {
  idScope: string;
  registrationId: string;
  caPath: string | undefined;
  pkiDir: string | undefined;
  groupKey: string;
}): string {
  const emulator = ['npx', 'dps-mqtt', 'emulator'];
  if (next.pkiDir !== undefined) emulator.push('--pki-dir', next.pkiDir);
  const register = ['npx', 'dps-mqtt', 'register', '--endpoint', '127.0.0.1:8443'];
  if (next.caPath !== undefined) register.push('--ca', next.caPath);
  const device = ['--id-scope', next.idScope, '--registration-id', next.registrationId];
  // The emulator's demo group key: public (printed by the emulator too), never for production.
  device.push('--group-key', next.groupKey);
  return `
Next: run the emulator in one terminal and register against it from another
  ${emulator.map(shellWord).join(' ')}
  ${register.map(shellWord).join(' ')} \\
    ${device.map(shellWord).join(' ')}
`;
}
