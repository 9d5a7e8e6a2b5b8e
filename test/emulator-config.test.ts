// The enrollments configuration: what is accepted, and errors that name the field to fix.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  DEFAULT_ID_SCOPE,
  DEFAULT_IOT_HUB,
  defaultEmulatorConfig,
  EmulatorConfigError,
  loadEmulatorConfigFile,
  parseEmulatorConfig,
} from '../src/emulator/enrollments/config.js';
import { EnrollmentBook } from '../src/emulator/enrollments/enrollment-book.js';
import { FaultPlan } from '../src/emulator/faults.js';
import { certificateThumbprints, createSelfSignedCertificate } from '../src/emulator/pki/pki.js';
import { temporaryDirectory } from './helpers/emulator.js';

const KEY = Buffer.from('configuration-test-key-000000001').toString('base64');

describe('emulator configuration', () => {
  test('an empty object means the default scope and hub, and no enrollments', async () => {
    const config = await parseEmulatorConfig({});
    assert.equal(config.idScope, DEFAULT_ID_SCOPE);
    assert.deepEqual(config.iotHubs, [DEFAULT_IOT_HUB]);
    assert.equal(config.allocationPolicy, 'hashed');
    assert.deepEqual(config.individualEnrollments, []);
    assert.deepEqual(config.enrollmentGroups, []);
  });

  test('the demo configuration enrolls a symmetric group, a demo device and (given the CA) an X.509 group', () => {
    const config = defaultEmulatorConfig({ emulatorCaPem: 'PEM' });
    assert.deepEqual(
      config.enrollmentGroups.map((group) => [group.enrollmentGroupId, group.attestation.type]),
      [
        ['demo-group', 'symmetricKey'],
        ['demo-x509-group', 'x509'],
      ],
    );
    assert.equal(config.individualEnrollments[0]?.registrationId, 'demo-device');
  });

  test('a full file is read, with certificate paths relative to it', async () => {
    const dir = await temporaryDirectory();
    try {
      const device = await createSelfSignedCertificate({ commonName: 'file-device', usage: 'client' });
      await writeFile(join(dir.path, 'device.pem'), device.certPem);
      await writeFile(
        join(dir.path, 'emulator.json'),
        JSON.stringify({
          idScope: '0ne0000F11E',
          iotHubs: ['a.azure-devices.net', 'b.azure-devices.net'],
          allocationPolicy: 'static',
          individualEnrollments: [
            {
              registrationId: 'file-device',
              attestation: { type: 'x509', certificate: 'device.pem' },
              deviceId: 'renamed',
            },
            {
              registrationId: 'key-device',
              attestation: { type: 'symmetricKey', primaryKey: KEY },
              enabled: false,
              initialTwin: { tags: { site: 'lab' } },
            },
          ],
          enrollmentGroups: [
            { enrollmentGroupId: 'g', attestation: { type: 'symmetricKey', primaryKey: KEY } },
          ],
        }),
      );
      const config = await loadEmulatorConfigFile(join(dir.path, 'emulator.json'));
      assert.equal(config.idScope, '0ne0000F11E');
      assert.equal(config.allocationPolicy, 'static');
      const [x509, key] = config.individualEnrollments;
      assert.deepEqual(x509?.attestation, {
        type: 'x509',
        thumbprints: [
          certificateThumbprints(device.certPem).sha1,
          certificateThumbprints(device.certPem).sha256,
        ],
      });
      assert.equal(x509?.deviceId, 'renamed');
      assert.equal(key?.enabled, false);
      assert.deepEqual(key?.initialTwin, { tags: { site: 'lab' } });
    } finally {
      await dir.remove();
    }
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ['an unknown top-level field', { enrollments: [] }, /enrollments: unknown field/],
    ['an ID scope with a slash', { idScope: 'a/b' }, /idScope/],
    [
      'an invalid registration id',
      {
        individualEnrollments: [
          { registrationId: 'Bad_Id', attestation: { type: 'symmetricKey', primaryKey: KEY } },
        ],
      },
      /individualEnrollments\[0\]\.registrationId/,
    ],
    [
      'a short key',
      {
        individualEnrollments: [
          { registrationId: 'd', attestation: { type: 'symmetricKey', primaryKey: 'c2hvcnQ=' } },
        ],
      },
      /individualEnrollments\[0\]\.attestation\.primaryKey/,
    ],
    [
      'TPM attestation',
      { individualEnrollments: [{ registrationId: 'd', attestation: { type: 'tpm' } }] },
      /TPM is not available over MQTT/,
    ],
    [
      'an x509 group without a CA',
      { enrollmentGroups: [{ enrollmentGroupId: 'g', attestation: { type: 'x509' } }] },
      /caCertificate/,
    ],
    [
      'a malformed thumbprint',
      { individualEnrollments: [{ registrationId: 'd', attestation: { type: 'x509', thumbprint: 'abc' } }] },
      /thumbprint/,
    ],
    [
      'a duplicate registration id',
      {
        individualEnrollments: [1, 2].map(() => ({
          registrationId: 'd',
          attestation: { type: 'symmetricKey', primaryKey: KEY },
        })),
      },
      /enrolled twice/,
    ],
    ['an unknown allocation policy', { allocationPolicy: 'nearest' }, /"hashed", "static" or "geoLatency"/],
    ['a custom allocation policy for the whole instance', { allocationPolicy: 'custom' }, /per enrollment/],
  ];
  for (const [name, json, message] of invalid) {
    test(`refused: ${name}`, async () => {
      await assert.rejects(parseEmulatorConfig(json), (error: Error) => {
        assert.ok(error instanceof EmulatorConfigError);
        assert.equal(error.code, 'ERR_INVALID_INPUT');
        assert.match(error.message, message);
        return true;
      });
    });
  }

  test('a file that is not JSON is refused with its path', async () => {
    const dir = await temporaryDirectory();
    try {
      const path = join(dir.path, 'broken.json');
      await writeFile(path, '{ idScope: ');
      await assert.rejects(loadEmulatorConfigFile(path), /broken\.json is not valid JSON/);
    } finally {
      await dir.remove();
    }
  });
});

describe('allocation', () => {
  test('hashed allocation is stable per device and spreads devices over the linked hubs', async () => {
    const config = await parseEmulatorConfig({
      iotHubs: ['h1', 'h2', 'h3'],
      enrollmentGroups: [{ enrollmentGroupId: 'g', attestation: { type: 'symmetricKey', primaryKey: KEY } }],
    });
    const book = new EnrollmentBook(config);
    const group = config.enrollmentGroups[0]!;
    const counts = new Map<string, number>();
    for (let index = 0; index < 300; index++) {
      const { assignedHub } = book.allocate(`device-${index}`, { kind: 'group', enrollment: group });
      counts.set(assignedHub, (counts.get(assignedHub) ?? 0) + 1);
      assert.equal(
        book.allocate(`device-${index}`, { kind: 'group', enrollment: group }).assignedHub,
        assignedHub,
      );
    }
    assert.equal(counts.size, 3);
    for (const count of counts.values()) assert.ok(count > 60, `uneven: ${[...counts.values()]}`);
  });
});

describe('fault plan', () => {
  test('throttles the first N, then an even fraction, and marks drops by request number', () => {
    const plan = new FaultPlan(
      { firstRequests: 2, fraction: 0.25 },
      { dropBeforeRequest: [3], dropAfterResponse: 4 },
    );
    const fates = Array.from({ length: 10 }, () => plan.nextRequest());
    assert.deepEqual(
      fates.map((fate) => fate.throttled),
      [true, true, false, false, false, true, false, false, false, true],
    );
    assert.deepEqual(
      fates.filter((fate) => fate.dropBefore).map((fate) => fate.sequence),
      [3],
    );
    assert.deepEqual(
      fates.filter((fate) => fate.dropAfter).map((fate) => fate.sequence),
      [4],
    );
  });
});
