// `dps-mqtt derive-key`: the device key of a group enrollment member, for provisioning it offline.
import { deriveDeviceKey } from '../../protocol/sas.js';
import { ENV, parseDeriveKeyArgs } from '../args.js';
import { ExitCode } from '../exit-codes.js';
import type { CliIo } from '../output.js';
import { reportError } from './register.js';

export const DERIVE_KEY_USAGE = `Usage: dps-mqtt derive-key --group-key KEY --registration-id ID

Prints the device key of a symmetric-key group enrollment member:
base64(HMAC-SHA256(base64decode(group key), registration id)). Nothing is sent anywhere.

  --group-key KEY          the enrollment group's primary or secondary key   (env ${ENV.groupKey})
  --registration-id ID     the device's registration id                      (env ${ENV.registrationId})
  -h, --help               this help

Examples
  dps-mqtt derive-key --group-key "$GROUP_KEY" --registration-id sensor-042
  ${ENV.groupKey}=... dps-mqtt derive-key --registration-id sensor-042 > sensor-042.key
`;

export function runDeriveKey(argv: string[], io: CliIo): number {
  try {
    const invocation = parseDeriveKeyArgs(argv, io.env);
    if (invocation === 'help') {
      io.stdout.write(DERIVE_KEY_USAGE);
      return ExitCode.ok;
    }
    io.stdout.write(`${deriveDeviceKey(invocation.groupKey, invocation.registrationId)}\n`);
    return ExitCode.ok;
  } catch (error) {
    const groupKey = io.env[ENV.groupKey];
    return reportError('dps-mqtt derive-key', error, io, false, groupKey ? [groupKey] : []);
  }
}
