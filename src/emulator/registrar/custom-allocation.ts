// Custom allocation (allocationPolicy "custom"): the AllocationRequest DPS POSTs to an enrollment's
// webhook, and what the webhook's answer means. Pure: the HTTP call is allocation-webhook.ts, which
// startEmulator injects into the registrar (tests can inject their own and need no network).
import type { JsonObject, JsonValue } from '../../protocol/responses.js';
import {
  type CustomAllocationDefinition,
  DEFAULT_REPROVISION_POLICY,
  isIotHubHostName,
} from '../enrollments/config.js';
import { type Attested, certificateInfo } from '../enrollments/enrollment-book.js';

/**
 * DPS's codes for a failed custom allocation: 400207 CustomAllocationFailed (any other status), 400208
 * CustomAllocationIotHubNotSpecified (no hub in the answer), 400209 CustomAllocationUnauthorizedAccess
 * (the webhook answered 401). A timeout, an unreachable webhook, an answer that is not a JSON object or
 * that names an unlinked hub are 400207 here: the emulator's choice, DPS documents none for them.
 */
export const CUSTOM_ALLOCATION_ERROR_CODES = {
  failed: 400207,
  hubNotSpecified: 400208,
  unauthorized: 400209,
} as const;

/** The body POSTed to the webhook (Microsoft Learn, "Understand custom allocation policies"). */
export interface CustomAllocationRequest {
  individualEnrollment?: JsonObject;
  enrollmentGroup?: JsonObject;
  deviceRuntimeContext: JsonObject;
  linkedHubs: string[];
}

/** What came back, as the HTTP client saw it. */
export type WebhookReply =
  | { kind: 'answered'; statusCode: number; body: string }
  | { kind: 'timedOut'; timeoutMs: number }
  | { kind: 'unreachable'; reason: string };

/** POSTs `request` to `webhookUrl`; never rejects: every failure is a reply. */
export type AllocationWebhookCaller = (
  webhookUrl: string,
  request: CustomAllocationRequest,
) => Promise<WebhookReply>;

export type CustomAllocationDecision =
  | { ok: true; iotHubHostName: string; initialTwin: JsonObject | undefined; payload: JsonValue | undefined }
  | { ok: false; errorCode: number; errorMessage: string };

export interface AllocationRequestInput {
  registrationId: string;
  attested: Attested;
  definition: CustomAllocationDefinition;
  /** The hubs the webhook may choose from (only the current one when the device may not move). */
  linkedHubs: string[];
  /** The register body's `payload`, when the device sent one. */
  payload: JsonValue | undefined;
  /** Where the device is, when it has been assigned before. */
  current: { assignedHub: string; deviceId: string } | undefined;
}

export function buildAllocationRequest(input: AllocationRequestInput): CustomAllocationRequest {
  const { attested, definition } = input;
  const matched = attested.matched;
  const enrollment = matched.enrollment;
  // The enrollment as the service API shows it, without keys or certificates (DPS sends the type only).
  const enrollmentDocument: JsonObject = {
    ...(matched.kind === 'individual'
      ? {
          registrationId: matched.enrollment.registrationId,
          ...(matched.enrollment.deviceId === undefined ? {} : { deviceId: matched.enrollment.deviceId }),
        }
      : { enrollmentGroupId: matched.enrollment.enrollmentGroupId }),
    attestation: { type: enrollment.attestation.type },
    capabilities: { iotEdge: false },
    provisioningStatus: enrollment.enabled ? 'enabled' : 'disabled',
    reprovisionPolicy: { ...(enrollment.reprovisionPolicy ?? DEFAULT_REPROVISION_POLICY) },
    allocationPolicy: 'custom',
    ...(enrollment.iotHubs.length > 0 ? { iotHubs: [...enrollment.iotHubs] } : {}),
    ...(enrollment.initialTwin === undefined ? {} : { initialTwin: enrollment.initialTwin }),
    customAllocationDefinition: { webhookUrl: definition.webhookUrl, apiVersion: definition.apiVersion },
  };
  const context: JsonObject = { registrationId: input.registrationId };
  if (input.current !== undefined) {
    context.currentIotHubHostName = input.current.assignedHub;
    context.currentDeviceId = input.current.deviceId;
  }
  if (attested.attestation === 'symmetricKey') {
    context.symmetricKey = {};
  } else {
    const x509: JsonObject = {};
    if (attested.certificate !== undefined) {
      x509.certificateInfo = certificateInfo(attested.certificate) as unknown as JsonObject;
    }
    if (attested.signingCertificate !== undefined) {
      x509.signingCertificateInfo = certificateInfo(attested.signingCertificate) as unknown as JsonObject;
    }
    context.x509 = x509;
  }
  if (input.payload !== undefined) context.payload = input.payload;
  return {
    ...(matched.kind === 'individual'
      ? { individualEnrollment: enrollmentDocument }
      : { enrollmentGroup: enrollmentDocument }),
    deviceRuntimeContext: context,
    linkedHubs: [...input.linkedHubs],
  };
}

/**
 * The webhook's URL for messages and logs: scheme, host and path only. The query string often carries a
 * secret (an Azure Functions `?code=` key), so it is never shown.
 */
export function webhookLabel(webhookUrl: string): string {
  try {
    const url = new URL(webhookUrl);
    return `${url.origin}${url.pathname}`;
  } catch {
    return 'the webhook';
  }
}

/** What the reply means: a hub (and initial twin, payload) for the device, or why the registration failed. */
export function interpretWebhookReply(
  reply: WebhookReply,
  linkedHubs: readonly string[],
  webhookUrl: string,
): CustomAllocationDecision {
  const label = `the custom allocation webhook ${webhookLabel(webhookUrl)}`;
  const failed = (errorMessage: string, errorCode: number = CUSTOM_ALLOCATION_ERROR_CODES.failed) => ({
    ok: false as const,
    errorCode,
    errorMessage,
  });
  if (reply.kind === 'timedOut') return failed(`${label} did not answer within ${reply.timeoutMs} ms`);
  if (reply.kind === 'unreachable') return failed(`${label} could not be reached: ${reply.reason}`);
  if (reply.statusCode === 401) {
    return failed(`${label} answered 401 Unauthorized`, CUSTOM_ALLOCATION_ERROR_CODES.unauthorized);
  }
  if (reply.statusCode < 200 || reply.statusCode > 299) {
    return failed(`${label} answered ${reply.statusCode}`);
  }
  let answer: unknown;
  try {
    answer = JSON.parse(reply.body);
  } catch {
    return failed(`${label} answered ${reply.statusCode} with a body that is not JSON`);
  }
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
    return failed(`${label} answered with JSON that is not an object: expected { "iotHubHostName": "..." }`);
  }
  const { iotHubHostName, initialTwin, payload } = answer as Record<string, unknown>;
  if (iotHubHostName === undefined || iotHubHostName === null || iotHubHostName === '') {
    return failed(`${label} answered no iotHubHostName`, CUSTOM_ALLOCATION_ERROR_CODES.hubNotSpecified);
  }
  if (typeof iotHubHostName !== 'string' || !isIotHubHostName(iotHubHostName)) {
    return failed(`${label} answered an iotHubHostName that is not a host name`);
  }
  if (!linkedHubs.includes(iotHubHostName)) {
    return failed(
      `${label} chose ${iotHubHostName}, which is not linked to the enrollment (linked: ${linkedHubs.join(', ')})`,
    );
  }
  if (initialTwin !== undefined && initialTwin !== null) {
    if (typeof initialTwin !== 'object' || Array.isArray(initialTwin)) {
      return failed(`${label} answered an initialTwin that is not a JSON object`);
    }
  }
  return {
    ok: true,
    iotHubHostName,
    initialTwin: (initialTwin ?? undefined) as JsonObject | undefined,
    payload: payload === null ? undefined : (payload as JsonValue | undefined),
  };
}
