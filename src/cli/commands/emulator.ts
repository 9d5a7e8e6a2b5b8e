// `dps-mqtt emulator`: the emulator's own CLI, loaded only here (it needs the optional mqtt-packet).
import { ExitCode } from '../exit-codes.js';
import type { CliIo } from '../output.js';

export async function runEmulator(argv: string[], io: CliIo): Promise<number> {
  const emulatorCli = await loadEmulatorModule(
    () => import('../../emulator/cli.js'),
    io,
    'dps-mqtt emulator',
  );
  if (emulatorCli === undefined) return ExitCode.failure;
  return emulatorCli.runEmulatorCli(argv, { stdout: io.stdout, stderr: io.stderr, signals: io.signals });
}

/** Runs a lazy import of the emulator, explaining a missing optional dependency instead of a stack trace. */
export async function loadEmulatorModule<M>(
  load: () => Promise<M>,
  io: Pick<CliIo, 'stderr'>,
  command: string,
): Promise<M | undefined> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && /mqtt-packet/.test(String(error))) {
      io.stderr.write(
        `${command}: the emulator needs the optional package mqtt-packet: run "npm install mqtt-packet"\n`,
      );
      return undefined;
    }
    throw error;
  }
}
