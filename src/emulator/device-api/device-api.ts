// The device API over HTTPS, on the emulator's HTTPS (WebSocket) port, as the service's REST API defines
// it and the official `azure-iot-provisioning-device-http` transport sends it:
//   PUT /{idScope}/registrations/{registrationId}/register?api-version=...      body {registrationId, payload?, csr?}
//   GET /{idScope}/registrations/{registrationId}/operations/{operationId}?api-version=...
// Every request authenticates on its own: a SAS token in `Authorization`, or else the TLS client
// certificate. Attestation, throttling and the answers come from device-requests.ts and the registrar,
// shared with the MQTT session, so both transports behave the same. Of the fault knobs, the per-request
// ones apply here (dropBeforeRequest destroys the socket unanswered, dropAfterResponse closes it after
// the answer, responseDelayMs holds the answer back); dropBeforeConnack and dropAfterSuback name MQTT
// packets and apply to MQTT connections only.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isValidApiVersion, isValidRegistrationId } from '../../protocol/validate.js';
import type { EnrollmentBook } from '../enrollments/enrollment-book.js';
import type { EmulatorLogger } from '../log.js';
import type { SessionPeer } from '../mqtt/mqtt-session.js';
import type { HttpsHandler } from '../network/https-router.js';
import {
  answerDeviceRequest,
  attestDevice,
  type DeviceRequest,
  type DeviceRequestContext,
  responseLogFields,
} from '../registrar/device-requests.js';
import {
  type AuthenticatedDevice,
  type DpsResponse,
  ERROR_CODES,
  serviceError,
} from '../registrar/registrar.js';

export interface DeviceApiContext extends DeviceRequestContext {
  book: EnrollmentBook;
  logger: EmulatorLogger;
  /** Request bodies above this size are refused with 413 (the emulator's maxPacketBytes). */
  maxBodyBytes: number;
  /** A request body must arrive completely within this time (the emulator's connectTimeoutMs). */
  bodyTimeoutMs: number;
}

/** Error codes the emulator uses for HTTP failures DPS documents no code for (its own, six digits). */
export const DEVICE_API_ERROR_CODES = {
  methodNotAllowed: 405001,
  requestTimeout: 408001,
  payloadTooLarge: 413001,
  internalError: 500001,
} as const;

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** After an answer sent before the body was read, the device gets this long to close its side. */
const LINGER_MS = 2000;

const DEVICE_PATH = /^\/([^/]+)\/registrations\/([^/]+)\/(?:register|operations\/([^/]+))\/?$/;

/** Creates the device API's request handler (the router's `device`). */
export function deviceApi(context: DeviceApiContext): HttpsHandler {
  return (request, response, peer) => {
    const exchange = new DeviceApiExchange(context, request, response, peer);
    exchange.guarded(() => exchange.start());
  };
}

/** One HTTPS request and its answer. */
class DeviceApiExchange {
  private readonly startedAt = Date.now();
  private registrationId: string | undefined;
  private bodyRead = false;
  private delayTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly context: DeviceApiContext,
    private readonly request: IncomingMessage,
    private readonly response: ServerResponse,
    private readonly peer: SessionPeer,
  ) {
    // The device hung up (or the emulator is stopping): nothing is answered later.
    response.once('close', () => clearTimeout(this.delayTimer));
  }

  /** Runs a step; an exception becomes a 500 for this request, never one for the whole emulator. */
  guarded(step: () => void): void {
    try {
      step();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log({ event: 'internalError', error: message });
      if (!this.response.headersSent) {
        this.fail(500, DEVICE_API_ERROR_CODES.internalError, 'the emulator failed to handle the request');
      } else {
        this.request.socket.destroy();
      }
    }
  }

  start(): void {
    let url: URL;
    try {
      url = new URL(this.request.url ?? '/', 'https://emulator');
    } catch {
      this.fail(400, ERROR_CODES.badRequest, 'the request target is not a valid URL');
      return;
    }
    const match = DEVICE_PATH.exec(url.pathname);
    const idScope = decodeSegment(match?.[1]);
    const registrationId = decodeSegment(match?.[2]);
    const operationId = decodeSegment(match?.[3]);
    if (
      idScope === undefined ||
      registrationId === undefined ||
      (match?.[3] !== undefined && operationId === undefined)
    ) {
      this.fail(400, ERROR_CODES.badRequest, 'the request path is not a DPS device API path');
      return;
    }
    const kind = operationId === undefined ? 'register' : 'operationStatus';
    const method = kind === 'register' ? 'PUT' : 'GET';
    if (this.request.method !== method) {
      this.fail(
        405,
        DEVICE_API_ERROR_CODES.methodNotAllowed,
        `${kind === 'register' ? 'register' : 'an operation status query'} is a ${method}, not ${this.request.method}`,
        { allow: method },
      );
      return;
    }
    const apiVersion = url.searchParams.get('api-version') ?? '';
    if (!isValidApiVersion(apiVersion)) {
      this.fail(
        400,
        ERROR_CODES.badRequest,
        apiVersion === ''
          ? 'the query string has no api-version (for example ?api-version=2019-03-31)'
          : `api-version "${apiVersion.slice(0, 40)}" is not YYYY-MM-DD or YYYY-MM-DD-preview`,
      );
      return;
    }
    if (!isValidRegistrationId(registrationId)) {
      this.fail(
        400,
        ERROR_CODES.badRequest,
        `"${registrationId.slice(0, 140)}" is not a valid registration id (at most 128 of a-z 0-9 - . _ :)`,
      );
      return;
    }
    this.registrationId = registrationId;

    // Authentication first: nobody's body is read before they are known.
    const authorization = this.request.headers.authorization ?? '';
    const certificates = this.peer.clientCertificates();
    const refusal =
      authorization === '' && certificates.length === 0
        ? 'no Authorization header and no TLS client certificate: the device presented no credentials'
        : authorization !== '' && !authorization.startsWith('SharedAccessSignature ')
          ? 'the Authorization header is not a SharedAccessSignature token'
          : undefined;
    const attestation =
      refusal === undefined
        ? attestDevice(this.context.book, {
            idScope,
            registrationId,
            sasToken: authorization,
            clientCertificates: () => certificates,
          })
        : ({ ok: false, reason: refusal } as const);
    if (!attestation.ok) {
      this.fail(
        401,
        ERROR_CODES.unauthorized,
        `Unauthorized: ${attestation.reason}`,
        {},
        {
          kind,
          apiVersion,
        },
      );
      return;
    }
    const device: AuthenticatedDevice = { registrationId, attested: attestation, apiVersion };
    this.readBody((body) =>
      this.guarded(() => {
        const deviceRequest: DeviceRequest =
          operationId === undefined ? { kind: 'register', body } : { kind: 'operationStatus', operationId };
        this.answer(device, deviceRequest);
      }),
    );
  }

  private answer(device: AuthenticatedDevice, deviceRequest: DeviceRequest): void {
    const { faults } = this.context;
    const fate = faults.nextRequest();
    const logFields = {
      kind: deviceRequest.kind,
      operationId: deviceRequest.kind === 'operationStatus' ? deviceRequest.operationId : undefined,
      apiVersion: device.apiVersion,
      sequence: fate.sequence,
    };
    if (fate.dropBefore) {
      this.log({ event: 'drop', when: 'beforeRequest', ...logFields });
      this.request.socket.destroy();
      return;
    }
    const response = answerDeviceRequest(this.context, device, deviceRequest, fate);
    this.log({
      event: 'request',
      ...logFields,
      ...responseLogFields(response),
      attestation: device.attested.attestation,
      credential: device.attested.credential,
      enrollment:
        device.attested.matched.kind === 'group'
          ? device.attested.matched.enrollment.enrollmentGroupId
          : 'individual',
    });
    const reply = (): void => {
      this.send(response, fate.dropAfter ? { connection: 'close' } : {});
      if (fate.dropAfter) {
        this.response.once('finish', () => {
          this.log({ event: 'drop', when: 'afterResponse', ...logFields });
          this.request.socket.destroy();
        });
      }
    };
    const delay = faults.responseDelayMs;
    if (delay <= 0) reply();
    else this.delayTimer = setTimeout(() => this.guarded(reply), delay);
  }

  /** Collects the body, bounded in size and time; answers 413 or 408 itself when it must. */
  private readBody(onBody: (body: Buffer) => void): void {
    const { maxBodyBytes, bodyTimeoutMs } = this.context;
    const declared = Number(this.request.headers['content-length'] ?? 0);
    if (declared > maxBodyBytes) {
      this.fail(
        413,
        DEVICE_API_ERROR_CODES.payloadTooLarge,
        `the request body of ${declared} bytes exceeds the ${maxBodyBytes}-byte limit`,
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (): void => {
      done = true;
      clearTimeout(timer);
      this.request.off('data', onData);
    };
    const timer = setTimeout(() => {
      if (done) return;
      finish();
      this.fail(
        408,
        DEVICE_API_ERROR_CODES.requestTimeout,
        `the request body did not arrive within ${bodyTimeoutMs} ms`,
      );
    }, bodyTimeoutMs);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      if (done) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        finish();
        this.fail(
          413,
          DEVICE_API_ERROR_CODES.payloadTooLarge,
          `the request body exceeds the ${maxBodyBytes}-byte limit`,
        );
        return;
      }
      chunks.push(chunk);
    };
    this.request.on('data', onData);
    this.request.once('end', () => {
      if (done) return;
      finish();
      this.bodyRead = true;
      onBody(Buffer.concat(chunks));
    });
    // An aborted upload ends in 'close' without 'end': nothing to answer.
    this.request.once('close', () => {
      if (!done) finish();
    });
    this.request.once('error', () => {
      if (!done) finish();
    });
  }

  /** Answers with an error body; logs it. */
  private fail(
    statusCode: number,
    errorCode: number,
    message: string,
    headers: Record<string, string> = {},
    logFields: Record<string, unknown> = {},
  ): void {
    const response = serviceError(statusCode, errorCode, message);
    this.log({ event: 'request', ...logFields, ...responseLogFields(response), reason: message });
    this.send(response, headers);
  }

  private send(dps: DpsResponse, headers: Record<string, string>): void {
    const { response } = this;
    if (response.headersSent || response.destroyed || response.writableEnded) return;
    const body = JSON.stringify(dps.body);
    // An answer before the body was read: close the connection rather than read an unbounded rest.
    const closeAfter = !this.bodyRead && !this.request.complete;
    response.writeHead(dps.statusCode, {
      'content-type': JSON_CONTENT_TYPE,
      'content-length': Buffer.byteLength(body),
      ...(dps.retryAfterSeconds === undefined ? {} : { 'retry-after': String(dps.retryAfterSeconds) }),
      ...(closeAfter ? { connection: 'close' } : {}),
      ...headers,
    });
    response.end(body);
    if (closeAfter) {
      response.once('finish', () => {
        const timer = setTimeout(() => this.request.socket.destroy(), LINGER_MS);
        timer.unref();
        this.request.socket.once('close', () => clearTimeout(timer));
      });
    }
  }

  private log(entry: { event: string; [field: string]: unknown }): void {
    const requestId = this.request.headers['request-id'];
    this.context.logger({
      ...entry,
      transport: 'https',
      method: this.request.method,
      remoteAddress: this.peer.remoteAddress,
      registrationId: this.registrationId,
      requestId: typeof requestId === 'string' ? requestId.slice(0, 64) : undefined,
      durationMs: Date.now() - this.startedAt,
    });
  }
}

/** A percent-decoded path segment; undefined when absent or when it does not decode. */
function decodeSegment(segment: string | undefined): string | undefined {
  if (segment === undefined) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
