// `--shard I/N`: the I-th of N disjoint slices of a fleet, so a batch larger than one machine runs on
// many with no coordinator: every runner gets the same device list and its own index (a Kubernetes
// Indexed Job's JOB_COMPLETION_INDEX, a CI matrix index), and position p belongs to slice p mod N.
import { InvalidInputError } from '../protocol/errors.js';
import type { FleetShard } from './types.js';

/** Whether the device at `position` (from 0, in the source's order) is in `shard`. */
export function inShard(position: number, shard: FleetShard | undefined): boolean {
  return shard === undefined || position % shard.count === shard.index;
}

/** How many of `total` devices fall in `shard`. */
export function shardSize(total: number, shard: FleetShard | undefined): number {
  if (shard === undefined) return total;
  return Math.max(0, Math.ceil((total - shard.index) / shard.count));
}

/** `I/N` with 0 <= I < N, e.g. `0/4` (slices are numbered from 0, like JOB_COMPLETION_INDEX). */
export function parseShard(text: string): FleetShard {
  const match = /^(\d{1,9})\/(\d{1,9})$/.exec(text.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index >= count) {
    throw new InvalidInputError(
      'shard',
      `shard ${JSON.stringify(text)} is invalid: give I/N with 0 <= I < N, e.g. 0/4 for the first of four slices (I is 0-based, like JOB_COMPLETION_INDEX)`,
    );
  }
  return { index, count };
}
