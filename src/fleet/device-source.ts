// The devices of a fleet, in a fixed order, one slice of them when sharded: registration ids and the
// credential each device registers with. Made lazily, so ten million devices cost no memory up front.
import { InvalidInputError } from '../protocol/errors.js';
import type { JsonValue } from '../protocol/responses.js';
import { deriveDeviceKey } from '../protocol/sas.js';
import { validateRegistrationId, validateSymmetricKey } from '../protocol/validate.js';
import { inShard, shardSize } from './shard.js';
import type { FleetDeviceEntry, FleetDeviceSource, FleetShard } from './types.js';

/** How one device proves who it is; plain data, so it crosses to a worker thread as is. */
export type DeviceCredential =
  | { kind: 'symmetricKey'; key: string }
  | { kind: 'x509'; certificate: string; privateKey: string; passphrase?: string }
  /** A certificate made on the fly for the group CA, where the device runs. */
  | { kind: 'issue' };

export interface FleetDeviceSpec {
  /** The position in the source, from 0 (before sharding). */
  index: number;
  registrationId: string;
  credential: DeviceCredential;
  payload?: JsonValue;
}

/** Checks what can be checked before the first device starts: ids, keys, one credential per device. */
export function checkDeviceSource(source: FleetDeviceSource): void {
  if ('devices' in source) {
    const seen = new Set<string>();
    source.devices.forEach((entry, position) => {
      const where = `devices.devices[${position}]`;
      if (!entry || typeof entry !== 'object')
        throw new InvalidInputError(where, `${where} is not an object`);
      try {
        validateRegistrationId(entry.registrationId);
      } catch (error) {
        throw new InvalidInputError(`${where}.registrationId`, `${where}: ${(error as Error).message}`);
      }
      if (seen.has(entry.registrationId)) {
        throw new InvalidInputError(
          `${where}.registrationId`,
          `${where}: registration id "${entry.registrationId}" appears twice: each device is registered once`,
        );
      }
      seen.add(entry.registrationId);
      const hasCertificate = entry.certificate !== undefined || entry.privateKey !== undefined;
      if (hasCertificate && (entry.certificate === undefined || entry.privateKey === undefined)) {
        throw new InvalidInputError(where, `${where}: give both certificate and privateKey`);
      }
      if (hasCertificate && entry.symmetricKey !== undefined) {
        throw new InvalidInputError(where, `${where}: give a symmetric key or a certificate, not both`);
      }
      if (entry.symmetricKey !== undefined) validateSymmetricKey(entry.symmetricKey, `${where}.symmetricKey`);
      if (!hasCertificate && entry.symmetricKey === undefined && source.groupKey === undefined) {
        throw new InvalidInputError(
          where,
          `${where} ("${entry.registrationId}") has no credential: give it a symmetricKey or a certificate and privateKey, or give a group key`,
        );
      }
    });
    return;
  }
  const prefix = source.prefix ?? '';
  const start = source.start ?? 0;
  if (source.count > 0) {
    for (const id of [`${prefix}${start}`, `${prefix}${start + source.count - 1}`]) {
      try {
        validateRegistrationId(id);
      } catch (error) {
        throw new InvalidInputError('devices.prefix', `devices.prefix: ${(error as Error).message}`);
      }
    }
  }
}

/** How many devices `source` holds in `shard`. */
export function fleetSize(source: FleetDeviceSource, shard: FleetShard | undefined): number {
  return shardSize('devices' in source ? source.devices.length : source.count, shard);
}

/** The devices of `source` in `shard`, in order. */
export function* fleetDevices(
  source: FleetDeviceSource,
  shard: FleetShard | undefined,
): Generator<FleetDeviceSpec> {
  if ('devices' in source) {
    for (let position = shard?.index ?? 0; position < source.devices.length; position += shard?.count ?? 1) {
      const entry = source.devices[position] as FleetDeviceEntry;
      yield {
        index: position,
        registrationId: entry.registrationId,
        credential: entryCredential(entry, source.groupKey),
        ...(entry.payload === undefined ? {} : { payload: entry.payload }),
      };
    }
    return;
  }
  const prefix = source.prefix ?? '';
  const start = source.start ?? 0;
  for (let position = shard?.index ?? 0; position < source.count; position += shard?.count ?? 1) {
    if (!inShard(position, shard)) continue; // unreachable by construction; kept as the definition
    const registrationId = `${prefix}${start + position}`;
    yield {
      index: position,
      registrationId,
      credential:
        'groupKey' in source
          ? { kind: 'symmetricKey', key: deriveDeviceKey(source.groupKey, registrationId) }
          : { kind: 'issue' },
    };
  }
}

function entryCredential(entry: FleetDeviceEntry, groupKey: string | undefined): DeviceCredential {
  if (entry.certificate !== undefined && entry.privateKey !== undefined) {
    return {
      kind: 'x509',
      certificate: entry.certificate,
      privateKey: entry.privateKey,
      ...(entry.passphrase === undefined ? {} : { passphrase: entry.passphrase }),
    };
  }
  if (entry.symmetricKey !== undefined) return { kind: 'symmetricKey', key: entry.symmetricKey };
  return { kind: 'symmetricKey', key: deriveDeviceKey(groupKey as string, entry.registrationId) };
}
