#!/usr/bin/env node
// `dps-mqtt`: dispatches to a command, each loaded only when used, so start-up imports almost nothing.
import { ExitCode } from './exit-codes.js';
import { type CliIo, processIo } from './output.js';

const MAIN_USAGE = `Usage: dps-mqtt <command> [options]

A client and local emulator for the Azure IoT Device Provisioning Service over MQTT.

Commands
  register     register a device and print its IoT hub assignment
  derive-key   print a group enrollment member's device key
  emulator     run a local DPS emulator (MQTT over TLS and over WebSocket)
  demo         quick start: emulator + one registration, then exit (npm start)

Run "dps-mqtt <command> --help" for a command's options. Documentation: docs/cli.md

Examples
  dps-mqtt demo
  dps-mqtt register --id-scope 0ne0012345A --registration-id sensor-042 --group-key "$GROUP_KEY"
  dps-mqtt derive-key --group-key "$GROUP_KEY" --registration-id sensor-042
  dps-mqtt emulator --wss-port 8443
`;

async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'register':
      return (await import('./commands/register.js')).runRegister(rest, io);
    case 'derive-key':
      return (await import('./commands/derive-key.js')).runDeriveKey(rest, io);
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
        `dps-mqtt: unknown command ${JSON.stringify(command)}: use register, derive-key, emulator or demo (run "dps-mqtt --help")\n`,
      );
      return ExitCode.usage;
  }
}

const code = await runCli(process.argv.slice(2), processIo());
process.exitCode = code;
// Everything is closed by now; should a stray handle linger, do not hang the shell.
setTimeout(() => process.exit(code), 2000).unref();
