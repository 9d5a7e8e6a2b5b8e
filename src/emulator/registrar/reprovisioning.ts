// Re-provisioning: where an assigned device that registers again ends up, and what DPS reports about it
// (docs/emulator.md, "Re-provisioning"). Pure: the registrar gives the device's record and the hub the
// enrollment's allocation chose now.
import type { JsonObject } from '../../protocol/responses.js';
import type { ReprovisionPolicy } from '../enrollments/config.js';

export type AssignmentSubstatus =
  | 'initialAssignment'
  | 'deviceDataMigrated'
  | 'deviceDataReset'
  | 'reprovisionedToInitialAssignment';

/** Where the device is now (its registration record), when it has been assigned before. */
export interface CurrentAssignment {
  assignedHub: string;
  deviceId: string;
  initialTwin?: JsonObject | undefined;
  /** Every hub it has been on, oldest first; records from before the history have only `assignedHub`. */
  hubHistory?: string[] | undefined;
}

/** What the enrollment's allocation gives a device that is new to it (or reset). */
export interface Allocation {
  assignedHub: string;
  deviceId: string;
  initialTwin: JsonObject | undefined;
}

export interface Placement {
  assignedHub: string;
  deviceId: string;
  initialTwin: JsonObject | undefined;
  substatus: AssignmentSubstatus;
  hubHistory: string[];
  /** True when the device changed hubs with this registration. */
  moved: boolean;
}

/**
 * The rules (the substatus says what this registration did):
 * - first registration: the allocation, `initialAssignment`;
 * - `updateHubAssignment: false`, or the allocation chose the hub the device is on: it stays, with its
 *   device id and twin, `initialAssignment`;
 * - otherwise it moves to the chosen hub: back to a hub it had before, `reprovisionedToInitialAssignment`;
 *   else `deviceDataMigrated` (`migrateDeviceData: true`) or `deviceDataReset` (false). Migrating keeps
 *   the device id and the twin; resetting takes both from the enrollment (the allocation).
 */
export function placeRegistration(
  current: CurrentAssignment | undefined,
  allocation: Allocation,
  policy: ReprovisionPolicy,
): Placement {
  if (current === undefined) {
    return {
      ...allocation,
      substatus: 'initialAssignment',
      hubHistory: [allocation.assignedHub],
      moved: false,
    };
  }
  const history = current.hubHistory?.length ? [...current.hubHistory] : [current.assignedHub];
  if (!policy.updateHubAssignment || allocation.assignedHub === current.assignedHub) {
    return {
      assignedHub: current.assignedHub,
      deviceId: current.deviceId,
      initialTwin: current.initialTwin,
      substatus: 'initialAssignment',
      hubHistory: history,
      moved: false,
    };
  }
  const back = history.includes(allocation.assignedHub);
  const data = policy.migrateDeviceData
    ? { deviceId: current.deviceId, initialTwin: current.initialTwin }
    : { deviceId: allocation.deviceId, initialTwin: allocation.initialTwin };
  return {
    assignedHub: allocation.assignedHub,
    ...data,
    substatus: back
      ? 'reprovisionedToInitialAssignment'
      : policy.migrateDeviceData
        ? 'deviceDataMigrated'
        : 'deviceDataReset',
    hubHistory: back ? history : [...history, allocation.assignedHub],
    moved: true,
  };
}
