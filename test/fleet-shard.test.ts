// Issue 15: `--shard I/N` slices are disjoint and together cover the fleet, for every size and every N
// (property test over the real device source, counted and listed); and the flag's text is checked.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { fleetDevices, fleetSize } from '../src/fleet/device-source.js';
import { parseShard } from '../src/fleet/shard.js';
import type { FleetDeviceSource } from '../src/fleet/types.js';

const GROUP_KEY = Buffer.alloc(32, 7).toString('base64');

function slices(source: FleetDeviceSource, count: number): string[][] {
  return Array.from({ length: count }, (_, index) =>
    [...fleetDevices(source, { index, count })].map((device) => device.registrationId),
  );
}

describe('fleet shards', () => {
  test('the N slices of a counted fleet are disjoint, cover it, and each is as large as fleetSize says', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 400 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 1000 }),
        (total, count, start) => {
          const source: FleetDeviceSource = { count: total, prefix: 'dev-', start, groupKey: GROUP_KEY };
          const parts = slices(source, count);
          const all = parts.flat();
          assert.equal(all.length, total, 'covers: as many devices as the fleet');
          assert.equal(new Set(all).size, total, 'disjoint: no device in two slices');
          const everyone = [...fleetDevices(source, undefined)].map((device) => device.registrationId);
          assert.deepEqual([...all].sort(), [...everyone].sort());
          parts.forEach((part, index) => {
            assert.equal(part.length, fleetSize(source, { index, count }));
          });
        },
      ),
    );
  });

  test('the N slices of a listed fleet are disjoint and cover it, in the list order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/), { maxLength: 200 }),
        fc.integer({ min: 1, max: 30 }),
        (ids, count) => {
          const source: FleetDeviceSource = {
            devices: ids.map((registrationId) => ({ registrationId })),
            groupKey: GROUP_KEY,
          };
          const parts = slices(source, count);
          assert.equal(parts.flat().length, ids.length);
          assert.equal(new Set(parts.flat()).size, ids.length);
          for (const part of parts) {
            const positions = part.map((id) => ids.indexOf(id));
            assert.deepEqual(
              positions,
              [...positions].sort((a, b) => a - b),
              'each slice keeps the list order',
            );
          }
        },
      ),
    );
  });

  test('a device keeps its index and its derived key whichever slice runs it', () => {
    const source: FleetDeviceSource = { count: 10, prefix: 'd-', groupKey: GROUP_KEY };
    const whole = new Map([...fleetDevices(source, undefined)].map((device) => [device.index, device]));
    for (const device of fleetDevices(source, { index: 1, count: 3 })) {
      assert.deepEqual(device, whole.get(device.index));
      assert.equal(device.index % 3, 1);
    }
  });

  test('--shard text: I/N with 0 <= I < N', () => {
    assert.deepEqual(parseShard('0/4'), { index: 0, count: 4 });
    assert.deepEqual(parseShard(' 3/4 '), { index: 3, count: 4 });
    for (const bad of ['4/4', '1/0', '-1/4', '1', 'a/b', '1/4/2', '']) {
      assert.throws(() => parseShard(bad), /give I\/N with 0 <= I < N/, bad);
    }
  });
});
