// A device request, whichever transport carried it: who the device is (ID scope, SAS token or TLS client
// certificate) and what the registrar answers, with the fault plan's say on throttling. The MQTT session
// (mqtt/mqtt-session.ts) and the HTTPS device API (device-api/device-api.ts) both come through here, so the two transports
// refuse the same credentials, count requests in one sequence and throttle them alike.
import type { X509Certificate } from 'node:crypto';
import {
  type AttestationResult,
  CONNACK_NOT_AUTHORIZED,
  type EnrollmentBook,
} from '../enrollments/enrollment-book.js';
import type { FaultPlan, RequestFate } from '../faults.js';
import type { AuthenticatedDevice, DpsResponse, Registrar } from './registrar.js';

export interface DeviceCredentials {
  /** The ID scope the device named (MQTT user name, HTTPS path). */
  idScope: string;
  registrationId: string;
  /** A SAS token (the MQTT password, the HTTPS `Authorization` header); undefined or empty for X.509. */
  sasToken?: string | undefined;
  /** The chain the device presented in the TLS handshake, leaf first. */
  clientCertificates(): X509Certificate[];
  now?: Date;
}

/**
 * Checks a device's credentials: the ID scope must be this service's; a SAS token, when there is one,
 * is checked against the enrollment keys, and otherwise the TLS client certificate against the X.509
 * enrollments. Refusals carry the CONNACK return code; HTTPS answers any of them with 401.
 */
export function attestDevice(book: EnrollmentBook, credentials: DeviceCredentials): AttestationResult {
  if (credentials.idScope !== book.idScope) {
    return {
      ok: false,
      returnCode: CONNACK_NOT_AUTHORIZED,
      reason: `ID scope "${credentials.idScope}" is not this service's`,
    };
  }
  const now = credentials.now ?? new Date();
  const { sasToken, registrationId } = credentials;
  return sasToken !== undefined && sasToken.length > 0
    ? book.attestSasToken(registrationId, sasToken, Math.floor(now.getTime() / 1000))
    : book.attestCertificate(registrationId, credentials.clientCertificates(), now);
}

export type DeviceRequest =
  | { kind: 'register'; body: Buffer }
  | { kind: 'operationStatus'; operationId: string };

export interface DeviceRequestContext {
  registrar: Registrar;
  faults: FaultPlan;
  /** The emulator's default retry-after, for a 429 when the throttle has none of its own. */
  retryAfterSeconds: number;
}

/**
 * The answer to an authenticated device's request, once its fate is drawn (`faults.nextRequest()`):
 * a throttled request gets 429, any other goes to the registrar. Drops and delays are the transport's.
 */
export function answerDeviceRequest(
  context: DeviceRequestContext,
  device: AuthenticatedDevice,
  request: DeviceRequest,
  fate: RequestFate,
): DpsResponse {
  if (fate.throttled) {
    return context.registrar.throttled(context.faults.throttleRetryAfterSeconds(context.retryAfterSeconds));
  }
  return request.kind === 'register'
    ? context.registrar.register(device, request.body)
    : context.registrar.operationStatus(device, request.operationId);
}

/** The fields of a response every request log entry carries, whatever the transport. */
export function responseLogFields(response: DpsResponse): {
  statusCode: number;
  status: string | undefined;
  errorCode: number | undefined;
} {
  return {
    statusCode: response.statusCode,
    status: 'status' in response.body ? response.body.status : undefined,
    errorCode: 'errorCode' in response.body ? response.body.errorCode : undefined,
  };
}
