// The stores' files on start: a torn last journal line (a write cut short by kill -9) is ignored and
// reported; a damaged snapshot or a damaged line with good ones after it stops the start with the file
// named, and the file is left as it was; the journal folds into the snapshot at start and at close.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { EnrollmentStore } from '../src/emulator/enrollments/enrollment-store.js';
import {
  REGISTRATIONS_FILE,
  type RegistrationRecord,
  RegistrationStore,
} from '../src/emulator/registrar/registration-store.js';
import { temporaryDirectory } from './helpers/emulator.js';

const JOURNAL = 'registrations.journal';

function record(registrationId: string, assignedHub = 'hub-1.azure-devices.net'): RegistrationRecord {
  return {
    registrationId,
    deviceId: registrationId,
    assignedHub,
    createdDateTimeUtc: '2026-01-01T00:00:00.000Z',
    lastUpdatedDateTimeUtc: '2026-01-01T00:00:00.000Z',
    etag: 'ImV0YWci',
    substatus: 'initialAssignment',
    enrollment: { kind: 'group', id: 'demo-group' },
  };
}

test('a put is in the journal when put() returns, before any flush', async (t) => {
  const dir = await temporaryDirectory('dps-mqtt-journal-');
  t.after(() => dir.remove());
  const store = await RegistrationStore.open(dir.path);
  store.put(record('device-1'));
  const lines = (await readFile(join(dir.path, JOURNAL), 'utf8')).split('\n');
  assert.equal(lines.length, 2);
  assert.equal(JSON.parse(lines[0]!).put.registrationId, 'device-1');
  await store.flush();
  store.close();
});

test('a torn last line is ignored and reported; the changes before it are recovered', async (t) => {
  const dir = await temporaryDirectory('dps-mqtt-journal-');
  t.after(() => dir.remove());
  const good = [record('device-1'), record('device-2', 'hub-2.azure-devices.net')];
  const torn = JSON.stringify({ put: record('device-3') }).slice(0, 40);
  await writeFile(
    join(dir.path, JOURNAL),
    `${good.map((value) => JSON.stringify({ put: value })).join('\n')}\n${JSON.stringify({ delete: 'device-1' })}\n${torn}`,
  );
  const warnings: string[] = [];
  const store = await RegistrationStore.open(dir.path, { onWarning: (message) => warnings.push(message) });
  assert.deepEqual(
    store.all().map((value) => [value.registrationId, value.assignedHub]),
    [['device-2', 'hub-2.azure-devices.net']],
  );
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /ended with 1 incomplete line .*ignored; 3 changes recovered/);
  // Folded at once: the snapshot holds them, the journal is empty (the torn bytes are gone).
  assert.equal(await readFile(join(dir.path, JOURNAL), 'utf8'), '');
  const snapshot = JSON.parse(await readFile(join(dir.path, REGISTRATIONS_FILE), 'utf8'));
  assert.deepEqual(
    snapshot.registrations.map((value: RegistrationRecord) => value.registrationId),
    ['device-2'],
  );
  // New lines follow cleanly and survive a restart without close().
  store.put(record('device-4'));
  const reopened = await RegistrationStore.open(dir.path);
  assert.deepEqual(
    reopened
      .all()
      .map((value) => value.registrationId)
      .sort(),
    ['device-2', 'device-4'],
  );
  reopened.close();
  store.close();
});

test('a damaged snapshot stops the start, names the file and is left as it was', async (t) => {
  const dir = await temporaryDirectory('dps-mqtt-journal-');
  t.after(() => dir.remove());
  const damaged = '{"version":1,"registrations":[{"registrationId":';
  await writeFile(join(dir.path, REGISTRATIONS_FILE), damaged);
  await assert.rejects(RegistrationStore.open(dir.path), (error: unknown) => {
    assert.match(
      String((error as Error).message),
      /registrations file .*registrations\.json is not valid JSON/,
    );
    assert.match(String((error as Error).message), /left as it is/);
    return true;
  });
  assert.equal(await readFile(join(dir.path, REGISTRATIONS_FILE), 'utf8'), damaged);

  await writeFile(join(dir.path, REGISTRATIONS_FILE), '{"version":7}');
  await assert.rejects(RegistrationStore.open(dir.path), /has an unknown format .*"version":1/);
});

test('a damaged line with good lines after it is not a torn write: the start stops, the journal is kept', async (t) => {
  const dir = await temporaryDirectory('dps-mqtt-journal-');
  t.after(() => dir.remove());
  const text = `${JSON.stringify({ put: record('device-1') })}\n{"put":\n${JSON.stringify({ put: record('device-2') })}\n`;
  await writeFile(join(dir.path, JOURNAL), text);
  await assert.rejects(
    RegistrationStore.open(dir.path),
    /journal .* is damaged at line 2 \(good lines follow it\)/,
  );
  assert.equal(await readFile(join(dir.path, JOURNAL), 'utf8'), text);
});

test('close() folds the journal into the snapshot; a reopened store has everything', async (t) => {
  const dir = await temporaryDirectory('dps-mqtt-journal-');
  t.after(() => dir.remove());
  const store = await RegistrationStore.open(dir.path);
  for (let index = 0; index < 50; index++) store.put(record(`device-${index}`));
  store.delete('device-7');
  await store.flush();
  store.close();
  assert.equal(await readFile(join(dir.path, JOURNAL), 'utf8'), '');
  const reopened = await RegistrationStore.open(dir.path);
  assert.equal(reopened.all().length, 49);
  assert.equal(reopened.get('device-7'), undefined);
  reopened.close();
});

test('enrollments: changes are journalled and replayed, deletes included', async (t) => {
  const dir = await temporaryDirectory('dps-mqtt-journal-');
  t.after(() => dir.remove());
  const seeds = { individualEnrollments: [], enrollmentGroups: [] };
  const store = await EnrollmentStore.open(dir.path, seeds);
  const attestation = { type: 'symmetricKey' as const, primaryKey: Buffer.alloc(32, 1).toString('base64') };
  const enrollment = (registrationId: string) =>
    ({ registrationId, attestation }) as unknown as Parameters<EnrollmentStore['putIndividual']>[0];
  store.putIndividual(enrollment('one'));
  store.putIndividual(enrollment('two'));
  store.deleteIndividual('one');
  // Not closed: as after a kill -9.
  const reopened = await EnrollmentStore.open(dir.path, seeds);
  assert.deepEqual(
    reopened.listIndividuals().map((value) => value.enrollment.registrationId),
    ['two'],
  );
  reopened.close();
  store.close();
});

test('a write that fails at close is reported by writeErrors(), not thrown', async (t) => {
  const dir = await temporaryDirectory('dps-mqtt-journal-');
  t.after(() => dir.remove());
  const store = await RegistrationStore.open(dir.path);
  store.put(record('device-1'));
  // The snapshot's temporary file cannot be created: its name is taken by a directory.
  await mkdir(join(dir.path, `${REGISTRATIONS_FILE}.${process.pid}.tmp`));
  const errors: Error[] = [];
  store.close();
  errors.push(...store.writeErrors());
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as NodeJS.ErrnoException).code, 'EISDIR');
  // The journal was kept: nothing is lost for the next start.
  assert.match(await readFile(join(dir.path, JOURNAL), 'utf8'), /device-1/);
});
