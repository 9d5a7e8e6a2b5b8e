// `dps-mqtt`: dispatches to a command, each loaded only when used, so start-up imports almost nothing.
import { readFileSync } from 'node:fs';
import { ExitCode } from './exit-codes.js';
import { type CliIo, processIo } from './output.js';

const COMMANDS = ['register', 'diagnose', 'fleet', 'derive-key', 'csr', 'emulator', 'demo'];

const MAIN_USAGE = `Usage: dps-mqtt <command> [options]

A client and local emulator for the Azure IoT Device Provisioning Service over MQTT.

Commands
  register     register a device and print its IoT hub assignment
  diagnose     find out why a device cannot provision, step by step (same flags as register)
  fleet        register many devices at once (onboarding, load tests): progress, results, summary
  derive-key   print a group enrollment member's device key
  csr          make a key pair and print its certificate signing request (CN = registration id)
  emulator     run a local DPS emulator (MQTT over TLS and over WebSocket)
  demo         quick start: emulator + one registration, then exit (npm start)

Run "dps-mqtt help <command>" (or "dps-mqtt <command> --help") for a command's options, and
"dps-mqtt --version" for the version. Documentation: https://github.com/dps-mqtt/dps-mqtt/blob/main/docs/cli.md

Examples
  dps-mqtt demo
  dps-mqtt register --id-scope 0ne0012345A --registration-id sensor-042 --group-key "$GROUP_KEY"
  dps-mqtt derive-key --group-key "$GROUP_KEY" --registration-id sensor-042
  dps-mqtt register ... --certificate ec-p384 --out ./device-cert --renew-before 20%
  dps-mqtt emulator --wss-port 8443
`;

/** The version in package.json: two directories up from both src/cli/main.ts and dist/cli/main.cjs. */
function packageVersion(): string {
  const packageJson = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return String((JSON.parse(packageJson) as { version?: unknown }).version);
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  // `dps-mqtt help register` is `dps-mqtt register --help`.
  if (command === 'help' && rest.length > 0) {
    const [topic, ...extra] = rest;
    if (extra.length > 0 || topic === undefined || !COMMANDS.includes(topic)) {
      io.stderr.write(
        `dps-mqtt help: ${extra.length > 0 ? 'give one command' : `unknown command ${JSON.stringify(topic)}`}: use ${COMMANDS.join(', ')} (run "dps-mqtt --help")\n`,
      );
      return ExitCode.usage;
    }
    return runCli([topic, '--help'], io);
  }
  switch (command) {
    case '--version':
    case 'version':
      if (rest.length > 0) {
        io.stderr.write(`dps-mqtt: ${command} takes no arguments\n`);
        return ExitCode.usage;
      }
      io.stdout.write(`${packageVersion()}\n`);
      return ExitCode.ok;
    case 'register':
      return (await import('./commands/register.js')).runRegister(rest, io);
    case 'diagnose':
      return (await import('./commands/diagnose.js')).runDiagnose(rest, io);
    case 'fleet':
      return (await import('./commands/fleet.js')).runFleet(rest, io);
    case 'derive-key':
      return (await import('./commands/derive-key.js')).runDeriveKey(rest, io);
    case 'csr':
      return (await import('./commands/csr.js')).runCsr(rest, io);
    case 'emulator':
      return (await import('./commands/emulator.js')).runEmulator(rest, io);
    case 'demo':
      return (await import('./commands/demo.js')).runDemo(rest, io);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      if (command === undefined) {
        io.stderr.write(MAIN_USAGE);
        return ExitCode.usage;
      }
      io.stdout.write(MAIN_USAGE);
      return ExitCode.ok;
    default:
      io.stderr.write(
        `dps-mqtt: unknown command ${JSON.stringify(command)}: use register, diagnose, fleet, derive-key, csr, emulator or demo (run "dps-mqtt --help")\n`,
      );
      return ExitCode.usage;
  }
}

/** Runs the command line of this process and sets its exit code: what the `dps-mqtt` bin does. */
export async function runCliProcess(): Promise<void> {
  const code = await runCli(process.argv.slice(2), processIo());
  process.exitCode = code;
  // Everything is closed by now; should a stray handle linger, do not hang the shell.
  setTimeout(() => process.exit(code), 2000).unref();
}
