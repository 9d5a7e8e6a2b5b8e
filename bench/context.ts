// What every benchmark receives: the mode, the emulator process, and the credentials of the demo group.
import { deriveDeviceKey } from '../src/protocol/sas.js';
import type { EmulatorProcess } from './processes.js';

export interface BenchContext {
  quick: boolean;
  /** The emulator (own process, retry-after 0, one status poll) most benchmarks register against. */
  emulator: EmulatorProcess;
  /** The emulator's PKI directory, shared by every emulator this run starts. */
  pkiDir: string;
  /** The emulator's demo group enrollment key: any registration id works with its derived key. */
  groupKey: string;
  deviceKey(registrationId: string): string;
  log(message: string): void;
}

export function deviceKeyFor(groupKey: string): (registrationId: string) => string {
  return (registrationId) => deriveDeviceKey(groupKey, registrationId);
}
