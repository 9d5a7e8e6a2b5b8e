// `dps-mqtt emulator`: the emulator's own CLI, loaded only here, so other commands never load it.
import type { CliIo } from '../output.js';

export async function runEmulator(argv: string[], io: CliIo): Promise<number> {
  const emulatorCli = await import('../../emulator/cli.js');
  return emulatorCli.runEmulatorCli(argv, { stdout: io.stdout, stderr: io.stderr, signals: io.signals });
}
