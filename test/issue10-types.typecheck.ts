// Type-level tests (issue 10, item 9): never run, only compiled by `tsc --noEmit` (npm test, CI). Each
// `@ts-expect-error` line must fail to compile; if the types loosen, the directive itself becomes the error.
import { type EmulatorOptions, startEmulator } from '../src/emulator/index.js';
import {
  type AnyDpsError,
  type DpsErrorCode,
  isDpsError,
  type ProvisioningClientOptions,
  type RegistrationFailedError,
  type RegistrationResult,
  register,
} from '../src/index.js';

export async function onlyAssignedResolves(options: ProvisioningClientOptions): Promise<'assigned'> {
  const result: RegistrationResult = await register(options);
  // @ts-expect-error a resolved registration is never still assigning
  const assigning: RegistrationResult['status'] = 'assigning';
  void assigning;
  return result.status;
}

export function failedStatusIsARegistrationStatus(error: RegistrationFailedError): string {
  // @ts-expect-error not any string: one of DPS's registration statuses
  const bogus: RegistrationFailedError['status'] = 'bogus';
  void bogus;
  const status: 'unassigned' | 'assigning' | 'assigned' | 'failed' | 'disabled' = error.status;
  return status;
}

export function codeNarrowsTheError(error: unknown): number | undefined {
  if (!isDpsError(error)) return undefined;
  const any: AnyDpsError = error;
  void any;
  if (error.code === 'ERR_SERVICE') return error.statusCode + (error.errorCode ?? 0);
  if (error.code === 'ERR_AUTHENTICATION') return error.returnCode;
  if (error.code === 'ERR_INVALID_INPUT') return error.field.length;
  if (error.code === 'ERR_CERTIFICATE_CHAIN') return error.chainBase64.length;
  if (error.code === 'ERR_PROXY') {
    // @ts-expect-error a proxy error has no service errorCode
    return error.errorCode;
  }
  // @ts-expect-error no such code
  if (error.code === 'ERR_NO_SUCH_CODE') return 0;
  return undefined;
}

export const emulatorConfigCompiles: EmulatorOptions = {
  config: {
    idScope: '0ne00000000',
    iotHubs: ['hub.azure-devices.net'],
    allocationPolicy: 'static',
    individualEnrollments: [
      {
        registrationId: 'sensor-1',
        attestation: { type: 'symmetricKey', primaryKey: 'a2V5', secondaryKey: 'a2V5' },
        deviceId: 'sensor-one',
        enabled: true,
        initialTwin: { tags: { site: 'lab' } },
        payload: { firmware: '2.1' },
      },
      { registrationId: 'camera-7', attestation: { type: 'x509', certificate: 'certs/camera-7.pem' } },
    ],
    enrollmentGroups: [
      { enrollmentGroupId: 'cameras', attestation: { type: 'x509', caCertificate: 'certs/root.pem' } },
    ],
  },
  enrollments: {
    enrollmentGroups: [{ enrollmentGroupId: 'g', attestation: { type: 'symmetricKey', primaryKey: 'a2V5' } }],
  },
};

export const misspeltTopLevelField: EmulatorOptions = {
  // @ts-expect-error individualEnrolments is misspelt
  config: { individualEnrolments: [] },
};

export const misspeltEnrollmentField: EmulatorOptions = {
  config: {
    individualEnrollments: [
      // @ts-expect-error registrationID is misspelt
      { registrationID: 'd', attestation: { type: 'symmetricKey', primaryKey: 'a2V5' } },
    ],
  },
};

export const unknownAttestationType: EmulatorOptions = {
  enrollments: {
    individualEnrollments: [
      // @ts-expect-error TPM is not an attestation over MQTT
      { registrationId: 'd', attestation: { type: 'tpm', endorsementKey: 'x' } },
    ],
  },
};

export const groupsHaveNoThumbprints: EmulatorOptions = {
  config: {
    enrollmentGroups: [
      // @ts-expect-error a group trusts a CA certificate, not a thumbprint
      { enrollmentGroupId: 'g', attestation: { type: 'x509', thumbprint: 'AB' } },
    ],
  },
};

export function unknownOptionNamesDoNotCompile(): void {
  // @ts-expect-error the option is trustedCa
  void register({ idScope: '0ne00000000', registrationId: 'd', security: { groupKey: 'k' }, ca: 'x' });
  // @ts-expect-error the option is mqttPort
  void startEmulator({ mqtPort: 0 });
}

/** Every DpsErrorCode has its class in AnyDpsError: a new error class left out of the union fails here. */
type CodesWithoutAClass = Exclude<DpsErrorCode, AnyDpsError['code']>;
export const everyCodeIsInTheUnion: [CodesWithoutAClass] extends [never] ? true : CodesWithoutAClass = true;
