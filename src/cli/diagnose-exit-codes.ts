// Exit codes of `dps-mqtt diagnose`: one per step, so a script knows where the path broke
// (docs/cli.md, "Troubleshooting"). 0 is every step passed; 2 bad usage, as for every command.
import type { StepName } from '../diagnose/types.js';

export const DIAGNOSE_EXIT_CODES: Readonly<Record<StepName, number>> = {
  input: 10,
  dns: 11,
  tcp: 12,
  proxy: 13,
  tls: 14,
  'tls-inspection': 15,
  websocket: 16,
  clock: 17,
  connect: 18,
  subscribe: 19,
  register: 20,
};
