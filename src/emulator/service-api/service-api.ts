// The service (enrollment management) API on the emulator's HTTPS listener: individual enrollments,
// enrollment groups and registration states, as the official service SDKs call them (api-version
// 2021-10-01; any well-formed api-version is accepted, a missing one is refused with 400). Every answer
// is JSON with the service's error body on failure; nothing is stored unless the whole request is good.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonObject } from '../../protocol/responses.js';
import { verifyServiceSasToken } from '../../protocol/service-sas.js';
import type { EnrollmentStore } from '../enrollments/enrollment-store.js';
import type { EmulatorLogger } from '../log.js';
import { type HttpsHandler, pathnameOf } from '../network/https-router.js';
import type { RegistrationRecord, RegistrationStore } from '../registrar/registration-store.js';
import type { ServiceCredentials } from './credentials.js';
import {
  DocumentError,
  parseGroupDocument,
  parseIndividualDocument,
  renderGroup,
  renderIndividual,
} from './schema.js';

/** The api-version the official service SDKs send. */
export const SERVICE_API_VERSION = '2021-10-01';
/** Request bodies above this size are refused with 413 (an enrollment with two certificates is a few KiB). */
export const MAX_SERVICE_BODY_BYTES = 256 * 1024;
export const DEFAULT_QUERY_PAGE_SIZE = 100;
export const MAX_QUERY_PAGE_SIZE = 1000;

// Six-digit error codes in the service's style: the HTTP status followed by a number.
export const SERVICE_ERROR_CODES = {
  badRequest: 400004,
  unauthorized: 401002,
  notFound: 404202,
  methodNotAllowed: 405000,
  preconditionFailed: 412002,
  payloadTooLarge: 413000,
  internal: 500000,
} as const;

export interface ServiceApiOptions {
  enrollments: EnrollmentStore;
  registrations: RegistrationStore;
  credentials: ServiceCredentials;
  logger: EmulatorLogger;
  now?: () => Date;
}

class ServiceError extends Error {
  constructor(
    readonly statusCode: number,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

interface Answer {
  statusCode: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Kind = 'enrollments' | 'enrollmentgroups' | 'registrations';

export function serviceApi(options: ServiceApiOptions): HttpsHandler {
  const now = options.now ?? (() => new Date());
  return (request, response, peer) => {
    const started = Date.now();
    handle(request, options, now)
      .catch((error: unknown) =>
        error instanceof ServiceError
          ? errorAnswer(error)
          : errorAnswer(
              new ServiceError(
                500,
                SERVICE_ERROR_CODES.internal,
                `internal error: ${error instanceof Error ? error.message : String(error)}`,
              ),
            ),
      )
      .then((answer) => {
        options.logger({
          event: 'serviceRequest',
          remoteAddress: peer.remoteAddress,
          method: request.method,
          path: pathnameOf(request.url),
          statusCode: answer.statusCode,
          durationMs: Date.now() - started,
        });
        send(response, answer);
      })
      .catch(() => response.destroy());
  };
}

async function handle(
  request: IncomingMessage,
  options: ServiceApiOptions,
  now: () => Date,
): Promise<Answer> {
  const url = new URL(request.url ?? '/', 'https://emulator');
  const segments = url.pathname.split('/').slice(1);
  if (segments.length > 1 && segments.at(-1) === '') segments.pop();
  let decoded: string[];
  try {
    decoded = segments.map((segment) => decodeURIComponent(segment));
  } catch {
    throw new ServiceError(400, SERVICE_ERROR_CODES.badRequest, 'the path is not validly percent-encoded');
  }
  const kind = decoded[0]?.toLowerCase() as Kind;
  const method = request.method ?? 'GET';
  const route = routeOf(kind, decoded.slice(1), method);
  const apiVersion = url.searchParams.get('api-version');
  if (apiVersion === null || apiVersion === '') {
    throw new ServiceError(
      400,
      SERVICE_ERROR_CODES.badRequest,
      `the api-version query parameter is required (e.g. ?api-version=${SERVICE_API_VERSION})`,
    );
  }
  if (!/^\d{4}-\d{2}-\d{2}(-preview)?$/.test(apiVersion)) {
    throw new ServiceError(
      400,
      SERVICE_ERROR_CODES.badRequest,
      `api-version ${JSON.stringify(apiVersion)} is not a version (YYYY-MM-DD, e.g. ${SERVICE_API_VERSION})`,
    );
  }
  const { credentials } = options;
  const host = String(request.headers.host ?? '')
    .replace(/:\d+$/, '')
    .replace(/^\[|\]$/g, '');
  const token = verifyServiceSasToken(headerValue(request, 'authorization'), {
    keyName: credentials.keyName,
    key: credentials.key,
    hostNames: [credentials.hostName, ...(host === '' ? [] : [host])],
    nowSeconds: Math.floor(now().getTime() / 1000),
  });
  if (!token.ok)
    throw new ServiceError(401, SERVICE_ERROR_CODES.unauthorized, `unauthorized: ${token.reason}`);
  const body = method === 'PUT' || method === 'POST' ? await readJsonBody(request) : undefined;
  return route(new Context(request, options, body));
}

class Context {
  constructor(
    readonly request: IncomingMessage,
    readonly options: ServiceApiOptions,
    readonly body: unknown,
  ) {}

  get enrollments(): EnrollmentStore {
    return this.options.enrollments;
  }

  get registrations(): RegistrationStore {
    return this.options.registrations;
  }

  ifMatch(): string | undefined {
    return headerValue(this.request, 'if-match');
  }
}

type Route = (context: Context) => Answer | Promise<Answer>;

function routeOf(kind: Kind, rest: string[], method: string): Route {
  const [id, action] = rest;
  const allow = (routes: Record<string, Route>): Route => {
    const route = routes[method];
    if (route === undefined) {
      throw new ServiceError(
        405,
        SERVICE_ERROR_CODES.methodNotAllowed,
        `${method} is not allowed here (allowed: ${Object.keys(routes).join(', ')})`,
      );
    }
    return route;
  };
  if (kind === 'enrollments' || kind === 'enrollmentgroups') {
    if (rest.length === 1 && id === 'query' && method === 'POST')
      return (context) => queryEnrollments(context, kind);
    if (rest.length === 1 && id !== undefined && id !== '') {
      return allow({
        GET: (context) => getEnrollment(context, kind, id),
        PUT: (context) => putEnrollment(context, kind, id),
        DELETE: (context) => deleteEnrollment(context, kind, id),
      });
    }
    if (rest.length === 2 && id && action?.toLowerCase() === 'attestationmechanism') {
      return allow({ POST: (context) => attestationMechanism(context, kind, id) });
    }
    if (rest.length === 0) {
      throw new ServiceError(
        405,
        SERVICE_ERROR_CODES.methodNotAllowed,
        'bulk enrollment operations are not available in the emulator: create, update and delete one at a time',
      );
    }
  } else if (kind === 'registrations') {
    if (rest.length === 1 && id) {
      return allow({
        GET: (context) => getRegistration(context, id),
        DELETE: (context) => deleteRegistration(context, id),
      });
    }
    if (rest.length === 2 && id && action === 'query') {
      return allow({ POST: (context) => queryRegistrations(context, id) });
    }
  }
  throw new ServiceError(404, SERVICE_ERROR_CODES.notFound, 'no such service API route');
}

function what(kind: 'enrollments' | 'enrollmentgroups', id: string): string {
  return kind === 'enrollments' ? `individual enrollment "${id}"` : `enrollment group "${id}"`;
}

function stored(context: Context, kind: 'enrollments' | 'enrollmentgroups', id: string) {
  return kind === 'enrollments' ? context.enrollments.getIndividual(id) : context.enrollments.getGroup(id);
}

function getEnrollment(context: Context, kind: 'enrollments' | 'enrollmentgroups', id: string): Answer {
  const record = stored(context, kind, id);
  if (record === undefined) throw notFound(what(kind, id));
  return ok(render(context, kind, record), record.etag);
}

async function putEnrollment(
  context: Context,
  kind: 'enrollments' | 'enrollmentgroups',
  id: string,
): Promise<Answer> {
  const { enrollments } = context;
  const existing = stored(context, kind, id);
  let record: Parameters<typeof renderIndividual>[0] | Parameters<typeof renderGroup>[0];
  // Everything is checked before anything is stored: a bad request changes nothing.
  if (kind === 'enrollments') {
    const parsed = parseDocument(() =>
      parseIndividualDocument(context.body, id, enrollments.getIndividual(id)),
    );
    checkIfMatch(context.ifMatch(), existing?.etag, what(kind, id));
    record = enrollments.putIndividual(parsed.enrollment, parsed.document);
  } else {
    const parsed = parseDocument(() => parseGroupDocument(context.body, id, enrollments.getGroup(id)));
    checkIfMatch(context.ifMatch(), existing?.etag, what(kind, id));
    record = enrollments.putGroup(parsed.enrollment, parsed.document);
  }
  await enrollments.flush();
  return ok(render(context, kind, record), record.etag);
}

async function deleteEnrollment(
  context: Context,
  kind: 'enrollments' | 'enrollmentgroups',
  id: string,
): Promise<Answer> {
  const record = stored(context, kind, id);
  if (record === undefined) throw notFound(what(kind, id));
  checkIfMatch(context.ifMatch(), record.etag, what(kind, id));
  if (kind === 'enrollments') context.enrollments.deleteIndividual(id);
  else context.enrollments.deleteGroup(id);
  await context.enrollments.flush();
  return { statusCode: 204 };
}

function attestationMechanism(
  context: Context,
  kind: 'enrollments' | 'enrollmentgroups',
  id: string,
): Answer {
  const record = stored(context, kind, id);
  if (record === undefined) throw notFound(what(kind, id));
  return ok(render(context, kind, record).attestation);
}

function queryEnrollments(context: Context, kind: 'enrollments' | 'enrollmentgroups'): Answer {
  checkQuery(context.body);
  const records =
    kind === 'enrollments' ? context.enrollments.listIndividuals() : context.enrollments.listGroups();
  const items = records.map((record) => ({
    id:
      kind === 'enrollments'
        ? (record.enrollment as { registrationId: string }).registrationId
        : (record.enrollment as { enrollmentGroupId: string }).enrollmentGroupId,
    document: render(context, kind, record),
  }));
  return page(context, items, kind === 'enrollments' ? 'Enrollment' : 'EnrollmentGroup');
}

function getRegistration(context: Context, registrationId: string): Answer {
  const record = context.registrations.get(registrationId);
  if (record === undefined) throw notFound(`registration "${registrationId}"`);
  return ok(registrationState(record), record.etag);
}

async function deleteRegistration(context: Context, registrationId: string): Promise<Answer> {
  const record = context.registrations.get(registrationId);
  if (record === undefined) throw notFound(`registration "${registrationId}"`);
  checkIfMatch(context.ifMatch(), record.etag, `registration "${registrationId}"`);
  context.registrations.delete(registrationId);
  await context.registrations.flush();
  return { statusCode: 204 };
}

function queryRegistrations(context: Context, enrollmentGroupId: string): Answer {
  checkQuery(context.body);
  const items = context.registrations
    .all()
    .filter((record) => record.enrollment.kind === 'group' && record.enrollment.id === enrollmentGroupId)
    .sort((a, b) => (a.registrationId < b.registrationId ? -1 : a.registrationId > b.registrationId ? 1 : 0))
    .map((record) => ({ id: record.registrationId, document: registrationState(record) }));
  return page(context, items, 'DeviceRegistration');
}

/** The DeviceRegistrationState the service returns. */
function registrationState(record: RegistrationRecord): JsonObject {
  return {
    registrationId: record.registrationId,
    createdDateTimeUtc: record.createdDateTimeUtc,
    assignedHub: record.assignedHub,
    deviceId: record.deviceId,
    status: 'assigned',
    substatus: record.substatus,
    lastUpdatedDateTimeUtc: record.lastUpdatedDateTimeUtc,
    etag: record.etag,
  };
}

function render(
  context: Context,
  kind: 'enrollments' | 'enrollmentgroups',
  record: Parameters<typeof renderIndividual>[0] | Parameters<typeof renderGroup>[0],
): JsonObject {
  if (kind === 'enrollmentgroups') return renderGroup(record as Parameters<typeof renderGroup>[0]);
  const document = renderIndividual(record as Parameters<typeof renderIndividual>[0]);
  const registration = context.registrations.get(document.registrationId as string);
  if (registration !== undefined && registration.enrollment.kind === 'individual') {
    document.registrationState = registrationState(registration);
  }
  return document;
}

/** `x-ms-max-item-count` items after the `x-ms-continuation` token (the last id of the previous page). */
function page(
  context: Context,
  items: Array<{ id: string; document: JsonObject }>,
  itemType: string,
): Answer {
  const countHeader = headerValue(context.request, 'x-ms-max-item-count');
  let pageSize = DEFAULT_QUERY_PAGE_SIZE;
  if (countHeader !== undefined) {
    if (!/^\d{1,6}$/.test(countHeader) || Number(countHeader) < 1) {
      throw new ServiceError(
        400,
        SERVICE_ERROR_CODES.badRequest,
        `x-ms-max-item-count ${JSON.stringify(countHeader)} is not a positive whole number`,
      );
    }
    pageSize = Math.min(Number(countHeader), MAX_QUERY_PAGE_SIZE);
  }
  const continuation = headerValue(context.request, 'x-ms-continuation');
  let after: string | undefined;
  if (continuation !== undefined && continuation !== '') {
    try {
      const parsed = JSON.parse(Buffer.from(continuation, 'base64url').toString('utf8')) as {
        after?: unknown;
      };
      if (typeof parsed.after !== 'string') throw new Error('no position');
      after = parsed.after;
    } catch {
      throw new ServiceError(
        400,
        SERVICE_ERROR_CODES.badRequest,
        'x-ms-continuation is not a token this service returned',
      );
    }
  }
  const remaining = after === undefined ? items : items.filter((item) => item.id > after);
  const pageItems = remaining.slice(0, pageSize);
  const headers: Record<string, string> = {
    'x-ms-item-type': itemType,
    'x-ms-max-item-count': String(pageSize),
  };
  const last = pageItems.at(-1);
  if (remaining.length > pageSize && last !== undefined) {
    headers['x-ms-continuation'] = Buffer.from(JSON.stringify({ after: last.id })).toString('base64url');
  }
  return { statusCode: 200, body: pageItems.map((item) => item.document), headers };
}

/** The query specification: `{"query":"*"}` (what the SDKs send) or `SELECT * FROM ...`. */
function checkQuery(body: unknown): void {
  const query =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>).query
      : undefined;
  if (typeof query !== 'string') {
    throw new ServiceError(400, SERVICE_ERROR_CODES.badRequest, 'query: expected {"query":"*"}');
  }
  if (query.trim() !== '*' && !/^\s*select\s+\*\s+from\s+[A-Za-z]+\s*$/i.test(query)) {
    throw new ServiceError(
      400,
      SERVICE_ERROR_CODES.badRequest,
      `query: ${JSON.stringify(query)} is not supported by the emulator: use "*" (every item, paged)`,
    );
  }
}

/** If-Match against the stored ETag: `*` matches anything stored; nothing stored matches no tag. */
function checkIfMatch(ifMatch: string | undefined, current: string | undefined, subject: string): void {
  if (ifMatch === undefined || ifMatch.trim() === '') return;
  const tags = ifMatch.split(',').map((tag) =>
    tag
      .trim()
      .replace(/^W\//, '')
      .replace(/^"(.*)"$/, '$1'),
  );
  if (current !== undefined && (tags.includes('*') || tags.includes(current.replace(/^"(.*)"$/, '$1'))))
    return;
  throw new ServiceError(
    412,
    SERVICE_ERROR_CODES.preconditionFailed,
    current === undefined
      ? `precondition failed: ${subject} does not exist, so If-Match ${JSON.stringify(ifMatch)} cannot match`
      : `precondition failed: the ETag ${JSON.stringify(ifMatch)} does not match the current one of ${subject}; read it again`,
  );
}

function parseDocument<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof DocumentError) {
      throw new ServiceError(400, SERVICE_ERROR_CODES.badRequest, `invalid document: ${error.message}`);
    }
    throw error;
  }
}

function notFound(subject: string): ServiceError {
  return new ServiceError(404, SERVICE_ERROR_CODES.notFound, `${subject} was not found`);
}

function ok(body: unknown, etag?: string): Answer {
  return { statusCode: 200, body, headers: etag === undefined ? {} : { etag: `"${etag}"` } };
}

function errorAnswer(error: ServiceError): Answer {
  return {
    statusCode: error.statusCode,
    body: {
      errorCode: error.errorCode,
      trackingId: randomUUID(),
      message: error.message,
      timestampUtc: new Date().toISOString(),
    },
    headers: error.statusCode === 413 ? { connection: 'close' } : {},
  };
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The body as JSON; an empty body is undefined. Refuses more than MAX_SERVICE_BODY_BYTES. */
async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const declared = Number(request.headers['content-length'] ?? 0);
  const tooLarge = (): ServiceError =>
    new ServiceError(
      413,
      SERVICE_ERROR_CODES.payloadTooLarge,
      `the request body is larger than ${MAX_SERVICE_BODY_BYTES} bytes`,
    );
  if (declared > MAX_SERVICE_BODY_BYTES) {
    request.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_SERVICE_BODY_BYTES) {
        request.removeAllListeners('data');
        request.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    request.once('end', () => resolve());
    request.once('error', reject);
  });
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ServiceError(
      400,
      SERVICE_ERROR_CODES.badRequest,
      `the request body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

function send(response: ServerResponse, answer: Answer): void {
  if (response.headersSent || response.destroyed) return;
  if (answer.body === undefined) {
    // 204 carries no body and no Content-Length.
    response.writeHead(answer.statusCode, {
      ...(answer.statusCode === 204 ? {} : { 'content-length': '0' }),
      ...answer.headers,
    });
    response.end();
    return;
  }
  const text = JSON.stringify(answer.body);
  response.writeHead(answer.statusCode, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...answer.headers,
  });
  response.end(text);
}
