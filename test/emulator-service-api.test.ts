// The official service SDK (azure-iot-provisioning-service) manages enrollments in the emulator as it
// would in DPS: create, read, update with and without an ETag, query in pages, delete; devices (our
// client and the official device SDK) then register with what it made, at once; deleting a registration
// state lets the device register from scratch.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { type CertificateAndKey, createRootCa, issueCertificate } from '../src/emulator/pki/pki.js';
import { register } from '../src/index.js';
import { deriveDeviceKey } from '../src/protocol/sas.js';
import { startTestEmulator, type TestEmulator } from './helpers/emulator.js';
import { at, type Doc, type ServiceClient, serviceClient, textAt } from './support/service-api.js';

const require = createRequire(import.meta.url);
const { ProvisioningDeviceClient } =
  require('azure-iot-provisioning-device') as typeof import('azure-iot-provisioning-device');
const { Mqtt } =
  require('azure-iot-provisioning-device-mqtt') as typeof import('azure-iot-provisioning-device-mqtt');
const { SymmetricKeySecurityClient } =
  require('azure-iot-security-symmetric-key') as typeof import('azure-iot-security-symmetric-key');
const { X509Security } = require('azure-iot-security-x509') as typeof import('azure-iot-security-x509');
const { MqttBase } = require('azure-iot-mqtt-base') as typeof import('azure-iot-mqtt-base');

type SecurityClient = Parameters<typeof ProvisioningDeviceClient.create>[3];
// The SDK's promises resolve with the parsed body and the HTTP response.
type Answer<T = Record<string, unknown>> = { responseBody: T; httpResponse: { statusCode: number } };
type Enrollment = Doc;

interface SdkResult {
  assignedHub?: string;
  deviceId?: string;
  status?: string;
}

function sdkDevice(emulator: TestEmulator, security: SecurityClient) {
  const base = new MqttBase();
  base.setOptions({ ca: emulator.caCertPem });
  return ProvisioningDeviceClient.create(
    `localhost:${emulator.mqttPort}`,
    emulator.idScope,
    new Mqtt(base),
    security,
  );
}

function sdkRegisterWithKey(emulator: TestEmulator, registrationId: string, key: string): Promise<SdkResult> {
  const security = new SymmetricKeySecurityClient(registrationId, key) as unknown as SecurityClient;
  return sdkDevice(emulator, security).register() as Promise<SdkResult>;
}

function sdkRegisterWithCertificate(
  emulator: TestEmulator,
  registrationId: string,
  certificate: CertificateAndKey,
): Promise<SdkResult> {
  const security = new X509Security(registrationId, { cert: certificate.certPem, key: certificate.keyPem });
  return sdkDevice(emulator, security as unknown as SecurityClient).register() as Promise<SdkResult>;
}

function ourRegister(emulator: TestEmulator, registrationId: string, symmetricKey: string) {
  return register({
    idScope: emulator.idScope,
    registrationId,
    security: { symmetricKey },
    endpoint: `127.0.0.1:${emulator.mqttPort}`,
    transport: 'mqtt',
    trustedCa: emulator.caCertPem,
    timeoutMs: 20_000,
  });
}

/** The SDK turns a refusal into an error carrying the HTTP response and the service's body. */
async function rejectsWith(
  promise: Promise<unknown>,
  statusCode: number,
  errorName?: string,
): Promise<Enrollment> {
  let body: Enrollment | undefined;
  await assert.rejects(
    promise,
    (error: Error & { response?: { statusCode?: number }; responseBody?: string }) => {
      assert.equal(error.response?.statusCode, statusCode, error.message);
      if (errorName !== undefined) assert.equal(error.name, errorName);
      body = JSON.parse(error.responseBody ?? '{}') as Enrollment;
      return true;
    },
  );
  assert.equal(typeof body?.errorCode, 'number');
  assert.equal(String(body?.errorCode).slice(0, 3), String(statusCode));
  assert.equal(typeof body?.trackingId, 'string');
  assert.equal(typeof body?.message, 'string');
  assert.ok(!Number.isNaN(Date.parse(String(body?.timestampUtc))));
  return body ?? {};
}

describe('the official service SDK against the emulator', () => {
  let emulator: TestEmulator;
  let service: ServiceClient;

  before(async () => {
    // No configured enrollments: everything here is made through the service API.
    emulator = await startTestEmulator({
      config: { idScope: '0ne0000SVC1', iotHubs: ['hub-a.azure-devices.net', 'hub-b.azure-devices.net'] },
    });
    service = serviceClient(emulator);
  });

  after(() => emulator.close());

  test('the connection string names localhost, the owner policy and a 32-byte key', () => {
    const match =
      /^HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=(.+)$/.exec(
        emulator.serviceConnectionString,
      );
    assert.ok(match, emulator.serviceConnectionString);
    assert.equal(Buffer.from(match[1] ?? '', 'base64').length, 32);
  });

  test('individual enrollment: create with empty keys, read, update with and without the ETag, delete', async () => {
    const created = (await service.createOrUpdateIndividualEnrollment({
      registrationId: 'svc-device-1',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: '', secondaryKey: '' } },
      provisioningStatus: 'enabled',
      iotHubs: ['hub-b.azure-devices.net'],
      allocationPolicy: 'static',
      reprovisionPolicy: { updateHubAssignment: false, migrateDeviceData: true },
      capabilities: { iotEdge: true },
      initialTwin: { tags: { floor: 3 }, properties: { desired: { interval: 30 } } },
    } as never)) as unknown as Answer<Enrollment>;
    const document = created.responseBody;
    assert.equal(created.httpResponse.statusCode, 200);
    assert.equal(document.registrationId, 'svc-device-1');
    // Keys the request left empty are generated, 64 random bytes each, as DPS does.
    const primaryKey = textAt(document, 'attestation.symmetricKey.primaryKey');
    const secondaryKey = textAt(document, 'attestation.symmetricKey.secondaryKey');
    assert.equal(Buffer.from(primaryKey, 'base64').length, 64);
    assert.equal(Buffer.from(secondaryKey, 'base64').length, 64);
    assert.notEqual(primaryKey, secondaryKey);
    // Fields the emulator does not act on come back as they were sent.
    assert.deepEqual(document.reprovisionPolicy, { updateHubAssignment: false, migrateDeviceData: true });
    assert.deepEqual(document.capabilities, { iotEdge: true });
    assert.deepEqual(document.initialTwin, { tags: { floor: 3 }, properties: { desired: { interval: 30 } } });
    assert.equal(typeof document.etag, 'string');
    assert.equal(document.createdDateTimeUtc, document.lastUpdatedDateTimeUtc);

    const read = ((await service.getIndividualEnrollment('svc-device-1')) as unknown as Answer<Enrollment>)
      .responseBody;
    assert.deepEqual(read, document);

    // Update with the matching ETag: PUT back what GET returned (the SDK sends If-Match: etag).
    const updated = (
      (await service.createOrUpdateIndividualEnrollment({
        ...read,
        deviceId: 'svc-device-1-renamed',
      } as never)) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.equal(updated.deviceId, 'svc-device-1-renamed');
    assert.notEqual(updated.etag, read.etag);
    assert.equal(updated.createdDateTimeUtc, read.createdDateTimeUtc);
    assert.deepEqual(updated.attestation, read.attestation);

    // A stale ETag is refused with 412, and nothing changes.
    const body = await rejectsWith(
      service.createOrUpdateIndividualEnrollment({ ...read, deviceId: 'lost-update' } as never),
      412,
      'InvalidEtagError',
    );
    assert.match(String(body.message), /ETag/);
    const afterStale = (
      (await service.getIndividualEnrollment('svc-device-1')) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.deepEqual(afterStale, updated);

    // Update without an ETag: unconditional.
    const { etag: _etag, ...withoutEtag } = updated;
    const unconditional = (
      (await service.createOrUpdateIndividualEnrollment({
        ...withoutEtag,
        provisioningStatus: 'disabled',
      } as never)) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.equal(unconditional.provisioningStatus, 'disabled');

    // Delete with a stale ETag: 412; with the current one: gone (404 afterwards).
    await rejectsWith(service.deleteIndividualEnrollment('svc-device-1', textAt(read, 'etag')), 412);
    await service.deleteIndividualEnrollment('svc-device-1', textAt(unconditional, 'etag'));
    await rejectsWith(service.getIndividualEnrollment('svc-device-1'), 404);
    await rejectsWith(service.deleteIndividualEnrollment('svc-device-1'), 404);
  });

  test('individual enrollments: a query pages with x-ms-max-item-count and x-ms-continuation', async () => {
    const ids = ['svc-query-a', 'svc-query-b', 'svc-query-c', 'svc-query-d', 'svc-query-e'];
    for (const registrationId of ids) {
      await service.createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'symmetricKey' },
      } as never);
    }
    const query = service.createIndividualEnrollmentQuery({ query: '*' }, 2);
    const seen: string[] = [];
    let pages = 0;
    while (query.hasMoreResults) {
      // The SDK's next() without arguments starts over (it drops its own token): pass the token back.
      const page = (await query.next(query.continuationToken as never)) as unknown as Answer<Enrollment[]>;
      assert.ok(Array.isArray(page.responseBody));
      assert.ok(page.responseBody.length <= 2);
      seen.push(...page.responseBody.map((enrollment) => enrollment.registrationId as string));
      pages++;
      assert.ok(pages < 20, 'the query ends');
    }
    assert.deepEqual(
      seen.filter((id) => id.startsWith('svc-query-')),
      ids,
    );
    assert.equal(pages, Math.ceil(seen.length / 2));
    for (const registrationId of ids) await service.deleteIndividualEnrollment(registrationId);
  });

  test('enrollment group: create, read, update with and without the ETag, query, delete', async () => {
    const groupKey = Buffer.from('service-api-group-key-0123456789').toString('base64');
    const created = (
      (await service.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: 'svc-group-1',
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey } },
        provisioningStatus: 'enabled',
        customAllocationDefinition: { webhookUrl: 'https://example.com/allocate', apiVersion: '2021-10-01' },
        allocationPolicy: 'custom',
      } as never)) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.equal(textAt(created, 'attestation.symmetricKey.primaryKey'), groupKey);
    // The secondary key the request left out is generated.
    assert.equal(Buffer.from(textAt(created, 'attestation.symmetricKey.secondaryKey'), 'base64').length, 64);
    assert.deepEqual(created.customAllocationDefinition, {
      webhookUrl: 'https://example.com/allocate',
      apiVersion: '2021-10-01',
    });
    assert.equal(created.allocationPolicy, 'custom');

    const read = ((await service.getEnrollmentGroup('svc-group-1')) as unknown as Answer<Enrollment>)
      .responseBody;
    assert.deepEqual(read, created);
    const updated = (
      (await service.createOrUpdateEnrollmentGroup({
        ...read,
        iotHubs: ['hub-a.azure-devices.net'],
        allocationPolicy: 'hashed',
      } as never)) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.deepEqual(updated.iotHubs, ['hub-a.azure-devices.net']);
    assert.notEqual(updated.etag, read.etag);
    await rejectsWith(service.createOrUpdateEnrollmentGroup({ ...read, iotHubs: [] } as never), 412);
    const { etag: _etag, ...withoutEtag } = updated;
    const unconditional = (
      (await service.createOrUpdateEnrollmentGroup({
        ...withoutEtag,
        initialTwin: { tags: { group: 1 } },
      } as never)) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.deepEqual(unconditional.initialTwin, { tags: { group: 1 } });

    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'svc-group-2',
      attestation: { type: 'symmetricKey' },
    } as never);
    const page = (await service.createEnrollmentGroupQuery({ query: '*' }).next()) as unknown as Answer<
      Enrollment[]
    >;
    assert.deepEqual(
      page.responseBody.map((group) => group.enrollmentGroupId),
      ['svc-group-1', 'svc-group-2'],
    );

    await rejectsWith(service.deleteEnrollmentGroup('svc-group-1', textAt(read, 'etag')), 412);
    await service.deleteEnrollmentGroup(unconditional as never);
    await service.deleteEnrollmentGroup('svc-group-2');
    await rejectsWith(service.getEnrollmentGroup('svc-group-1'), 404);
  });

  test('a device registers with an enrollment made through the API, at once (our client and the SDK)', async () => {
    const created = (
      (await service.createOrUpdateIndividualEnrollment({
        registrationId: 'svc-registering',
        deviceId: 'svc-registering-device',
        attestation: { type: 'symmetricKey' },
        iotHubs: ['hub-b.azure-devices.net'],
        allocationPolicy: 'static',
      } as never)) as unknown as Answer<Enrollment>
    ).responseBody;
    const key = textAt(created, 'attestation.symmetricKey.primaryKey');

    const first = await ourRegister(emulator, 'svc-registering', key);
    assert.equal(first.deviceId, 'svc-registering-device');
    assert.equal(first.assignedHub, 'hub-b.azure-devices.net');

    // The registration state, through the service API, and in the enrollment.
    const state = (
      (await service.getDeviceRegistrationState('svc-registering')) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.equal(state.status, 'assigned');
    assert.equal(state.deviceId, 'svc-registering-device');
    assert.equal(state.createdDateTimeUtc, first.createdDateTimeUtc);
    const enrollment = (
      (await service.getIndividualEnrollment('svc-registering')) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.equal(at(enrollment, 'registrationState.assignedHub'), 'hub-b.azure-devices.net');

    // Registering again keeps the registration (idempotent)...
    const sdkAgain = await sdkRegisterWithKey(
      emulator,
      'svc-registering',
      textAt(created, 'attestation.symmetricKey.secondaryKey'),
    );
    assert.equal(sdkAgain.status, 'assigned');
    const stateAgain = (
      (await service.getDeviceRegistrationState('svc-registering')) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.equal(stateAgain.createdDateTimeUtc, first.createdDateTimeUtc);

    // ...until the registration state is deleted: then the device registers from scratch.
    await rejectsWith(service.deleteDeviceRegistrationState('svc-registering', 'not-the-etag'), 412);
    await service.deleteDeviceRegistrationState('svc-registering');
    await rejectsWith(service.getDeviceRegistrationState('svc-registering'), 404);
    assert.equal(
      emulator.registrations().some((record) => record.registrationId === 'svc-registering'),
      false,
    );
    const fresh = await ourRegister(emulator, 'svc-registering', key);
    assert.notEqual(fresh.operationId, first.operationId);
    assert.ok(
      Date.parse(fresh.createdDateTimeUtc ?? '') > Date.parse(first.createdDateTimeUtc ?? ''),
      `${fresh.createdDateTimeUtc} after ${first.createdDateTimeUtc}`,
    );

    // Disabled through the API: the next registration is refused.
    await service.createOrUpdateIndividualEnrollment({
      ...enrollment,
      provisioningStatus: 'disabled',
      etag: undefined,
    } as never);
    await assert.rejects(ourRegister(emulator, 'svc-registering', key), /disabled/);
    // Deleted: the key no longer opens anything.
    await service.deleteIndividualEnrollment('svc-registering');
    await assert.rejects(sdkRegisterWithKey(emulator, 'svc-registering', key));
  });

  test('a group key made through the API admits its devices; the SDK registers one over MQTT', async () => {
    const group = (
      (await service.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: 'svc-key-group',
        attestation: { type: 'symmetricKey' },
      } as never)) as unknown as Answer<Enrollment>
    ).responseBody;
    const groupKey = textAt(group, 'attestation.symmetricKey.primaryKey');
    const result = await sdkRegisterWithKey(
      emulator,
      'svc-group-member',
      deriveDeviceKey(groupKey, 'svc-group-member'),
    );
    assert.equal(result.status, 'assigned');
    const page = (await service
      .createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, 'svc-key-group')
      .next()) as unknown as Answer<Enrollment[]>;
    assert.deepEqual(
      page.responseBody.map((state) => state.registrationId),
      ['svc-group-member'],
    );
    await service.deleteEnrollmentGroup('svc-key-group');
  });

  test('an X.509 group made through the API admits devices whose chain leads to its CA', async () => {
    const ca = await createRootCa({ commonName: 'service API group CA' });
    const group = (
      (await service.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: 'svc-x509-group',
        attestation: {
          type: 'x509',
          x509: { signingCertificates: { primary: { certificate: ca.certPem } } },
        },
      } as never)) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.match(
      textAt(group, 'attestation.x509.signingCertificates.primary.info.subjectName'),
      /service API group CA/,
    );
    const leaf = await issueCertificate({ issuer: ca, commonName: 'svc-x509-device', usage: 'client' });
    const result = await sdkRegisterWithCertificate(emulator, 'svc-x509-device', leaf);
    assert.equal(result.status, 'assigned');
    assert.equal(result.deviceId, 'svc-x509-device');

    // Read back and PUT again (certificate and info as returned): accepted, the CA unchanged.
    const readBack = ((await service.getEnrollmentGroup('svc-x509-group')) as unknown as Answer<Enrollment>)
      .responseBody;
    const again = (
      (await service.createOrUpdateEnrollmentGroup(readBack as never)) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.deepEqual(again.attestation, readBack.attestation);

    await service.deleteEnrollmentGroup('svc-x509-group');
    const other = await issueCertificate({ issuer: ca, commonName: 'svc-x509-late', usage: 'client' });
    await assert.rejects(sdkRegisterWithCertificate(emulator, 'svc-x509-late', other));
  });

  test('an individual X.509 enrollment made through the API matches the device certificate', async () => {
    const ca = await createRootCa({ commonName: 'service API individual CA' });
    const leaf = await issueCertificate({ issuer: ca, commonName: 'svc-x509-individual', usage: 'client' });
    // The service takes base64 DER as well as PEM.
    const der = leaf.certPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
    const created = (
      (await service.createOrUpdateIndividualEnrollment({
        registrationId: 'svc-x509-individual',
        attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: der } } } },
      } as never)) as unknown as Answer<Enrollment>
    ).responseBody;
    assert.match(
      textAt(created, 'attestation.x509.clientCertificates.primary.info.sha256Thumbprint'),
      /^[0-9A-F]{64}$/,
    );
    const result = await sdkRegisterWithCertificate(emulator, 'svc-x509-individual', leaf);
    assert.equal(result.status, 'assigned');
    await service.deleteIndividualEnrollment('svc-x509-individual');
  });
});
