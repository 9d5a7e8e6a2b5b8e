// What DPS does with a register request and a status query, independent of MQTT: operations, assignment,
// the registration state and the service's error bodies.
import { randomUUID } from 'node:crypto';
import { randomFromPool } from '../../protocol/random-pool.js';
import type {
  JsonValue,
  OperationStatus,
  RegistrationState,
  ServiceErrorBody,
} from '../../protocol/responses.js';
import { DEFAULT_REPROVISION_POLICY, effectiveCertificateIssuance } from '../enrollments/config.js';
import { type Attested, certificateInfo, type EnrollmentBook } from '../enrollments/enrollment-book.js';
import { type CertificateIssuer, checkCsr } from './certificate-issuer.js';
import {
  type AllocationWebhookCaller,
  buildAllocationRequest,
  CUSTOM_ALLOCATION_ERROR_CODES,
  type CustomAllocationDecision,
  interpretWebhookReply,
} from './custom-allocation.js';
import type { RegistrationRecord, RegistrationStore } from './registration-store.js';
import { type Allocation, placeRegistration } from './reprovisioning.js';

export interface DpsResponse {
  statusCode: number;
  body: OperationStatus | ServiceErrorBody;
  retryAfterSeconds?: number | undefined;
}

/** A device that passed CONNECT: who it is and how it proved it. */
export interface AuthenticatedDevice {
  registrationId: string;
  attested: Attested;
  apiVersion: string;
}

export interface RegistrarOptions {
  book: EnrollmentBook;
  store: RegistrationStore;
  /** Sent with every 202 (and 429 unless the throttle has its own). */
  retryAfterSeconds: number;
  /** Status queries answered 202 `assigning` before the one that returns the assignment. */
  pollsBeforeAssignment: number;
  /** And no assignment before this long after the register request (milliseconds). */
  assignmentDelayMs: number;
  /** Signs the certificate a register request with `csr` asks for; startEmulator always gives one. */
  issuer?: CertificateIssuer | undefined;
  /**
   * Calls a custom allocation webhook (registrar/allocation-webhook.ts in startEmulator). Without one, an
   * enrollment with allocationPolicy "custom" fails its registrations (400207).
   */
  callAllocationWebhook?: AllocationWebhookCaller | undefined;
  now?: () => Date;
}

interface Operation {
  operationId: string;
  device: AuthenticatedDevice;
  requestPayload: JsonValue | undefined;
  /** The checked CSR's public key, when the device asked for a certificate; signed at assignment. */
  csrPublicKeySpkiDer: Buffer | undefined;
  createdAtMs: number;
  pollsAnswered: number;
  /** Custom allocation: the webhook's decision, once it has answered (status queries wait for it). */
  customAllocation?: { decision: CustomAllocationDecision | undefined };
  /** Set once assigned (or failed): later queries for the same operation get the same answer. */
  result?: OperationStatus;
}

// Six-digit error codes: the HTTP status followed by a sequence number, as DPS sends them.
export const ERROR_CODES = {
  badRequest: 400004,
  unauthorized: 401002,
  operationNotFound: 404201,
  throttled: 429001,
} as const;

/** Operations kept for status queries; the oldest are forgotten beyond this. */
const MAX_OPERATIONS = 100_000;

export class Registrar {
  private readonly operations = new Map<string, Operation>();
  private readonly now: () => Date;

  constructor(private readonly options: RegistrarOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** `$dps/registrations/PUT/iotdps-register/?$rid=...` */
  register(device: AuthenticatedDevice, body: Buffer): DpsResponse {
    const request = parseRegisterBody(body);
    if (typeof request === 'string') return serviceError(400, ERROR_CODES.badRequest, request);
    if (request.registrationId !== undefined && request.registrationId !== device.registrationId) {
      return serviceError(
        400,
        ERROR_CODES.badRequest,
        `the body's registrationId "${request.registrationId}" is not the connection's "${device.registrationId}"`,
      );
    }
    if (!device.attested.matched.enrollment.enabled) {
      return serviceError(
        401,
        ERROR_CODES.unauthorized,
        `the enrollment for "${device.registrationId}" is disabled`,
      );
    }
    let csrPublicKeySpkiDer: Buffer | undefined;
    if (request.csr !== undefined) {
      if (this.options.issuer === undefined) {
        return serviceError(
          400,
          ERROR_CODES.badRequest,
          'this registrar has no issuing CA: it cannot sign a csr',
        );
      }
      // Certificate issuance: a CSR that cannot be signed is refused now, never after a 202.
      const checked = checkCsr({
        csr: request.csr,
        registrationId: device.registrationId,
        apiVersion: device.apiVersion,
        policy: effectiveCertificateIssuance(this.options.book.config, device.attested.matched.enrollment),
      });
      if (!checked.ok) return serviceError(400, checked.errorCode, checked.message);
      csrPublicKeySpkiDer = checked.publicKeySpkiDer;
    }
    const operation: Operation = {
      operationId: newOperationId(),
      device,
      requestPayload: request.payload,
      csrPublicKeySpkiDer,
      createdAtMs: this.now().getTime(),
      pollsAnswered: 0,
    };
    this.remember(operation);
    if (this.options.book.allocationPolicy(device.attested.matched) === 'custom') {
      this.startCustomAllocation(operation);
    }
    return {
      statusCode: 202,
      body: { operationId: operation.operationId, status: 'assigning' },
      retryAfterSeconds: this.options.retryAfterSeconds,
    };
  }

  /** `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=...&operationId=...` */
  operationStatus(device: AuthenticatedDevice, operationId: string): DpsResponse {
    const operation = this.operations.get(operationId);
    // Another device's operation is as unknown as one that never existed.
    if (operation === undefined || operation.device.registrationId !== device.registrationId) {
      return serviceError(404, ERROR_CODES.operationNotFound, `operation "${operationId}" was not found`);
    }
    if (operation.result !== undefined) return { statusCode: 200, body: operation.result };
    const ready =
      operation.pollsAnswered >= this.options.pollsBeforeAssignment &&
      this.now().getTime() - operation.createdAtMs >= this.options.assignmentDelayMs &&
      (operation.customAllocation === undefined || operation.customAllocation.decision !== undefined);
    if (!ready) {
      operation.pollsAnswered++;
      // As the service answers a status query that is still assigning.
      return {
        statusCode: 202,
        body: {
          operationId,
          status: 'assigning',
          registrationState: { registrationId: device.registrationId, status: 'assigning' },
        },
        retryAfterSeconds: this.options.retryAfterSeconds,
      };
    }
    operation.result = this.assign(operation);
    return { statusCode: 200, body: operation.result };
  }

  /** The 429 a throttled request gets. */
  throttled(retryAfterSeconds: number): DpsResponse {
    return {
      ...serviceError(429, ERROR_CODES.throttled, 'too many requests: retry after the retry-after interval'),
      retryAfterSeconds,
    };
  }

  /**
   * Custom allocation runs while the device polls: the webhook is called now, and status queries answer
   * `assigning` until it has answered (or timed out).
   */
  private startCustomAllocation(operation: Operation): void {
    const state: { decision: CustomAllocationDecision | undefined } = { decision: undefined };
    operation.customAllocation = state;
    const { registrationId, attested } = operation.device;
    const enrollment = attested.matched.enrollment;
    const definition = enrollment.customAllocationDefinition;
    const call = this.options.callAllocationWebhook;
    if (definition === undefined || call === undefined) {
      state.decision = {
        ok: false,
        errorCode: CUSTOM_ALLOCATION_ERROR_CODES.failed,
        errorMessage:
          definition === undefined
            ? 'the enrollment has allocationPolicy "custom" but no customAllocationDefinition'
            : 'this emulator calls no custom allocation webhooks',
      };
      return;
    }
    const existing = this.options.store.get(registrationId);
    const policy = enrollment.reprovisionPolicy ?? DEFAULT_REPROVISION_POLICY;
    // A device that may not move is offered only the hub it is on (as DPS does).
    const linkedHubs =
      existing !== undefined && !policy.updateHubAssignment
        ? [existing.assignedHub]
        : this.options.book.linkedHubs(attested.matched);
    const request = buildAllocationRequest({
      registrationId,
      attested,
      definition,
      linkedHubs,
      payload: operation.requestPayload,
      current:
        existing === undefined
          ? undefined
          : { assignedHub: existing.assignedHub, deviceId: existing.deviceId },
    });
    void call(definition.webhookUrl, request).then(
      (reply) => {
        state.decision = interpretWebhookReply(reply, linkedHubs, definition.webhookUrl);
      },
      (error: unknown) => {
        state.decision = {
          ok: false,
          errorCode: CUSTOM_ALLOCATION_ERROR_CODES.failed,
          errorMessage: `the custom allocation webhook call failed: ${error instanceof Error ? error.message : String(error)}`,
        };
      },
    );
  }

  private assign(operation: Operation): OperationStatus {
    const { device } = operation;
    const { registrationId, attested } = device;
    const nowUtc = this.now().toISOString();
    const existing = this.options.store.get(registrationId);
    const enrollment = attested.matched.enrollment;
    const { book } = this.options;

    // What the enrollment's allocation chooses now, and the payload for the device.
    let allocation: Allocation;
    let payload: JsonValue | undefined;
    const decision = operation.customAllocation?.decision;
    if (decision !== undefined) {
      if (!decision.ok) return this.failed(operation, decision, nowUtc);
      allocation = {
        assignedHub: decision.iotHubHostName,
        deviceId: book.deviceIdFor(registrationId, attested.matched),
        // The webhook's twin, or else the enrollment's (used on a first assignment and on a reset).
        initialTwin: decision.initialTwin ?? enrollment.initialTwin,
      };
      payload = decision.payload;
    } else {
      allocation = {
        ...book.allocate(registrationId, attested.matched),
        initialTwin: enrollment.initialTwin,
      };
      // The enrollment's payload, or else the device's own echoed back (the emulator's stand-in).
      payload = enrollment.payload ?? operation.requestPayload;
    }
    const placement = placeRegistration(
      existing,
      allocation,
      enrollment.reprovisionPolicy ?? DEFAULT_REPROVISION_POLICY,
    );

    // A new certificate for every registration with a CSR: re-registering with a new CSR is renewal.
    const { issuer } = this.options;
    const issued =
      operation.csrPublicKeySpkiDer === undefined || issuer === undefined
        ? undefined
        : issuer.issue({
            registrationId,
            publicKeySpkiDer: operation.csrPublicKeySpkiDer,
            validityDays: effectiveCertificateIssuance(book.config, enrollment).validityDays,
            now: this.now(),
          });
    const record: RegistrationRecord = {
      ...existing,
      registrationId,
      deviceId: placement.deviceId,
      assignedHub: placement.assignedHub,
      createdDateTimeUtc: existing?.createdDateTimeUtc ?? nowUtc,
      lastUpdatedDateTimeUtc: nowUtc,
      etag: newEtag(),
      substatus: placement.substatus,
      enrollment:
        attested.matched.kind === 'individual'
          ? { kind: 'individual', id: registrationId }
          : { kind: 'group', id: attested.matched.enrollment.enrollmentGroupId },
      initialTwin: placement.initialTwin,
      hubHistory: placement.hubHistory,
    };
    if (issued !== undefined) {
      // What was issued, for registrations(); the certificate itself is not kept (the device has it).
      record.issuedCertificate = {
        serialNumber: issued.serialNumber,
        notBeforeUtc: issued.notBefore.toISOString(),
        notAfterUtc: issued.notAfter.toISOString(),
      };
    }
    this.options.store.put(record);

    const state: RegistrationState = {
      registrationId,
      createdDateTimeUtc: record.createdDateTimeUtc,
      assignedHub: record.assignedHub,
      deviceId: record.deviceId,
      status: 'assigned',
      substatus: record.substatus,
      lastUpdatedDateTimeUtc: record.lastUpdatedDateTimeUtc,
      etag: record.etag,
    };
    addAttestation(state, attested);
    if (payload !== undefined) state.payload = payload;
    if (issued !== undefined) state.issuedCertificateChain = issued.chain;
    return { operationId: operation.operationId, status: 'assigned', registrationState: state };
  }

  /**
   * A registration the custom allocation refused: status `failed` with the error in the registration
   * state (a 200, as DPS answers). The device's registration record, if any, is left as it was, so
   * it can register again later.
   */
  private failed(
    operation: Operation,
    failure: { errorCode: number; errorMessage: string },
    nowUtc: string,
  ): OperationStatus {
    const { registrationId, attested } = operation.device;
    const existing = this.options.store.get(registrationId);
    const state: RegistrationState = {
      registrationId,
      createdDateTimeUtc: existing?.createdDateTimeUtc ?? nowUtc,
      status: 'failed',
      errorCode: failure.errorCode,
      errorMessage: failure.errorMessage,
      lastUpdatedDateTimeUtc: nowUtc,
      etag: newEtag(),
    };
    addAttestation(state, attested);
    return { operationId: operation.operationId, status: 'failed', registrationState: state };
  }

  private remember(operation: Operation): void {
    this.operations.set(operation.operationId, operation);
    if (this.operations.size > MAX_OPERATIONS) {
      const oldest = this.operations.keys().next().value;
      if (oldest !== undefined) this.operations.delete(oldest);
    }
  }
}

/** `symmetricKey { enrollmentGroupId? }` or `x509 { certificateInfo, ... }`: how the device attested. */
function addAttestation(state: RegistrationState, attested: Attested): void {
  const enrollmentGroupId =
    attested.matched.kind === 'group' ? attested.matched.enrollment.enrollmentGroupId : undefined;
  if (attested.attestation === 'symmetricKey') {
    state.symmetricKey = enrollmentGroupId === undefined ? {} : { enrollmentGroupId };
    return;
  }
  state.x509 = {};
  if (attested.certificate !== undefined) state.x509.certificateInfo = certificateInfo(attested.certificate);
  if (enrollmentGroupId !== undefined) state.x509.enrollmentGroupId = enrollmentGroupId;
  if (attested.signingCertificate !== undefined) {
    state.x509.signingCertificateInfo = certificateInfo(attested.signingCertificate);
  }
}

export function serviceError(statusCode: number, errorCode: number, message: string): DpsResponse {
  return {
    statusCode,
    body: { errorCode, trackingId: randomUUID(), message, timestampUtc: new Date().toISOString() },
  };
}

/** Operation ids look like the service's: `4.` + 16 hex digits + `.` + a UUID. */
function newOperationId(): string {
  return `4.${randomFromPool(8).toString('hex')}.${randomUUID()}`;
}

function newEtag(): string {
  return Buffer.from(JSON.stringify(randomUUID())).toString('base64');
}

/** The register body, or a message saying why it is malformed. An empty body is accepted. */
function parseRegisterBody(
  body: Buffer,
): { registrationId?: string; payload?: JsonValue; csr?: unknown } | string {
  const text = body.toString('utf8').trim();
  if (text === '') return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return 'the register request body is not JSON: send {"registrationId":"...","payload":{...}}';
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return 'the register request body must be a JSON object: {"registrationId":"...","payload":{...}}';
  }
  const object = json as Record<string, unknown>;
  if (object.registrationId !== undefined && typeof object.registrationId !== 'string') {
    return 'the register request body has a registrationId that is not a string';
  }
  const result: { registrationId?: string; payload?: JsonValue; csr?: unknown } = {};
  if (typeof object.registrationId === 'string') result.registrationId = object.registrationId;
  if (object.payload !== undefined) result.payload = object.payload as JsonValue;
  // Checked by checkCsr, which knows the api-version and the enrollment's policy.
  // null is "no CSR", as serializers that write every property send it.
  if (object.csr !== undefined && object.csr !== null) result.csr = object.csr;
  return result;
}
