// registerFleet()'s options, checked before anything is loaded or sent: known names only (a typo is an
// error with a suggestion), numbers in range, one credential kind per source. Light: only protocol/ code.
import { InvalidInputError } from '../protocol/errors.js';
import { findUnknownOption } from '../protocol/known-options.js';
import { describeValue, validateIdScope, validateSymmetricKey } from '../protocol/validate.js';
import type { FleetOptions, FleetShard, GroupCaOptions } from './types.js';

/** Every FleetOptions field. */
export const FLEET_OPTION_NAMES = Object.keys({
  idScope: true,
  devices: true,
  endpoint: true,
  transport: true,
  trustedCa: true,
  proxy: true,
  apiVersion: true,
  payload: true,
  pipeline: true,
  timeoutMs: true,
  concurrency: true,
  rate: true,
  workers: true,
  shard: true,
  includeKeys: true,
  signal: true,
} satisfies Record<keyof FleetOptions, true>);

const COUNT_SOURCE_NAMES = ['count', 'prefix', 'start', 'groupKey', 'groupCa'];
const LIST_SOURCE_NAMES = ['devices', 'groupKey'];
const GROUP_CA_NAMES = Object.keys({
  certificate: true,
  privateKey: true,
  passphrase: true,
} satisfies Record<keyof GroupCaOptions, true>);
const SHARD_NAMES = Object.keys({ index: true, count: true } satisfies Record<keyof FleetShard, true>);

export const DEFAULT_FLEET_CONCURRENCY = 100;
/** Workers beyond this cost memory and start-up for nothing on any machine we know. */
export const MAX_FLEET_WORKERS = 256;
export const MAX_FLEET_CONCURRENCY = 100_000;

function positiveInteger(field: string, value: unknown, max: number, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (allowZero ? 0 : 1) || value > max) {
    throw new InvalidInputError(
      field,
      `${field} ${describeValue(value)} is invalid: give a whole number from ${allowZero ? 0 : 1} to ${max}`,
    );
  }
  return value;
}

function unknownOption(options: object, known: readonly string[], path = ''): void {
  const unknown = findUnknownOption(options, known, path);
  if (unknown) throw new InvalidInputError(unknown.field, unknown.message);
}

/** Throws an InvalidInputError naming the first option that is wrong. The client checks the rest. */
export function checkFleetOptions(options: FleetOptions): void {
  if (!options || typeof options !== 'object') {
    throw new InvalidInputError(
      'options',
      'registerFleet() needs an options object with idScope and devices',
    );
  }
  unknownOption(options, FLEET_OPTION_NAMES);
  validateIdScope(options.idScope);
  const source = options.devices as unknown;
  if (!source || typeof source !== 'object') {
    throw new InvalidInputError(
      'devices',
      'devices is missing: give { count, prefix, groupKey }, { count, prefix, groupCa } or { devices: [...] }',
    );
  }
  if ('devices' in source) {
    unknownOption(source, LIST_SOURCE_NAMES, 'devices');
    const list = (source as { devices: unknown }).devices;
    if (!Array.isArray(list))
      throw new InvalidInputError('devices.devices', 'devices.devices must be an array');
    const groupKey = (source as { groupKey?: unknown }).groupKey;
    if (groupKey !== undefined) validateSymmetricKey(groupKey, 'devices.groupKey');
  } else {
    unknownOption(source, COUNT_SOURCE_NAMES, 'devices');
    const countSource = source as {
      count?: unknown;
      prefix?: unknown;
      start?: unknown;
      groupKey?: unknown;
      groupCa?: unknown;
    };
    positiveInteger('devices.count', countSource.count, Number.MAX_SAFE_INTEGER, true);
    if (countSource.start !== undefined) {
      positiveInteger('devices.start', countSource.start, Number.MAX_SAFE_INTEGER, true);
    }
    if (countSource.prefix !== undefined && typeof countSource.prefix !== 'string') {
      throw new InvalidInputError('devices.prefix', 'devices.prefix must be a string, e.g. "dev-"');
    }
    if ((countSource.groupKey === undefined) === (countSource.groupCa === undefined)) {
      throw new InvalidInputError(
        'devices.groupKey',
        'give exactly one of devices.groupKey (keys derived per device) and devices.groupCa (certificates issued per device)',
      );
    }
    if (countSource.groupKey !== undefined) validateSymmetricKey(countSource.groupKey, 'devices.groupKey');
    if (countSource.groupCa !== undefined) {
      const groupCa = countSource.groupCa;
      if (!groupCa || typeof groupCa !== 'object') {
        throw new InvalidInputError('devices.groupCa', 'devices.groupCa must be { certificate, privateKey }');
      }
      unknownOption(groupCa, GROUP_CA_NAMES, 'devices.groupCa');
      for (const field of ['certificate', 'privateKey'] as const) {
        if (typeof (groupCa as GroupCaOptions)[field] !== 'string') {
          throw new InvalidInputError(
            `devices.groupCa.${field}`,
            `devices.groupCa.${field} is missing: give the PEM text or a file path`,
          );
        }
      }
    }
  }
  if (options.concurrency !== undefined)
    positiveInteger('concurrency', options.concurrency, MAX_FLEET_CONCURRENCY);
  if (options.workers !== undefined) positiveInteger('workers', options.workers, MAX_FLEET_WORKERS, true);
  if (options.rate !== undefined) {
    if (typeof options.rate !== 'number' || !Number.isFinite(options.rate) || options.rate <= 0) {
      throw new InvalidInputError(
        'rate',
        `rate ${describeValue(options.rate)} is invalid: give registrations per second, a number above 0`,
      );
    }
  }
  if (options.shard !== undefined) {
    const shard = options.shard;
    if (!shard || typeof shard !== 'object') {
      throw new InvalidInputError('shard', 'shard must be { index, count }, e.g. { index: 0, count: 4 }');
    }
    unknownOption(shard, SHARD_NAMES, 'shard');
    const count = positiveInteger('shard.count', shard.count, Number.MAX_SAFE_INTEGER);
    positiveInteger('shard.index', shard.index, count - 1, true);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidInputError('signal', 'signal must be an AbortSignal');
  }
}
