// One device connection: the MQTT 3.1.1 state machine DPS runs over a TLS socket or a WebSocket stream.
// awaiting CONNECT -> (CONNACK 0) connected -> closed. DPS is not a broker: only its own topics,
// QoS 0/1, and answers only to a connection that subscribed.
import type { X509Certificate } from 'node:crypto';
import {
  type ClientPacket,
  ClientPacketDecoder,
  encodeConnack,
  encodePingresp,
  encodePuback,
  encodePublish,
  encodeSuback,
  encodeUnsuback,
} from '../../mqtt/server-codec.js';
import { ProtocolError } from '../../protocol/errors.js';
import { parseRequestTopic, responseTopic, SUBSCRIBE_TOPIC } from '../../protocol/topics.js';
import { parseUsername } from '../../protocol/username.js';
import { isValidApiVersion, isValidRegistrationId } from '../../protocol/validate.js';
import { CONNACK_BAD_USERNAME_OR_PASSWORD, type EnrollmentBook } from '../enrollments/enrollment-book.js';
import type { FaultPlan } from '../faults.js';
import { type EmulatorLogger, silentLogger } from '../log.js';
import { answerDeviceRequest, attestDevice } from '../registrar/device-requests.js';
import type { AuthenticatedDevice, DpsResponse, Registrar } from '../registrar/registrar.js';

/** Answers queued for a device that does not read them; above this the connection is closed. */
export const MAX_UNREAD_RESPONSE_BYTES = 1024 * 1024;

export const CONNACK_ACCEPTED = 0;
export const CONNACK_UNACCEPTABLE_PROTOCOL_VERSION = 1;
export const CONNACK_IDENTIFIER_REJECTED = 2;

export interface SessionPeer {
  transport: 'mqtt' | 'wss' | 'https';
  remoteAddress: string | undefined;
  /** The certificate chain the device presented in the TLS handshake, leaf first; empty without one. */
  clientCertificates(): X509Certificate[];
}

export interface SessionContext {
  book: EnrollmentBook;
  registrar: Registrar;
  faults: FaultPlan;
  logger: EmulatorLogger;
  maxPacketBytes: number;
  /** A connection that sends no CONNECT within this time is closed. */
  connectTimeoutMs: number;
  /** Default retry-after, used for throttling answers too unless the throttle has its own. */
  retryAfterSeconds: number;
}

/**
 * What a session needs of its connection: a TLS socket (a Duplex), or a WebSocket
 * (network/websocket-stream.ts). `cork`/`uncork` let the answers to one chunk leave as one write.
 */
export interface SessionStream {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  once(event: 'close', listener: () => void): unknown;
  write(chunk: Buffer): unknown;
  end(): unknown;
  destroy(): unknown;
  cork(): void;
  uncork(): void;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  readonly writableLength: number;
}

type State = 'awaitingConnect' | 'connected' | 'closed';

let connectionCounter = 0;

export class MqttSession {
  readonly connectionId = `c${++connectionCounter}`;
  private state: State = 'awaitingConnect';
  private device: AuthenticatedDevice | undefined;
  /** The QoS granted to the response subscription; undefined until the device subscribes. */
  private responseQos: 0 | 1 | undefined;
  private nextMessageId = 1;
  private readonly decoder: ClientPacketDecoder;
  private idleTimer: NodeJS.Timeout;
  private idleTimeoutMs: number;
  private readonly pendingResponses = new Set<NodeJS.Timeout>();
  private readonly startedAt = Date.now();
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;
  /** False with the silent logger: entries are then neither built nor sent. */
  private readonly logging: boolean;
  /** True while the answers to one chunk are collected in the corked stream. */
  private batching = false;

  constructor(
    private readonly stream: SessionStream,
    private readonly peer: SessionPeer,
    private readonly context: SessionContext,
  ) {
    this.closedPromise = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.logging = context.logger !== silentLogger;
    this.decoder = new ClientPacketDecoder({ maxPacketBytes: context.maxPacketBytes });
    this.idleTimeoutMs = context.connectTimeoutMs;
    this.idleTimer = setTimeout(() => this.close('no packet within the time limit'), this.idleTimeoutMs);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (error) => this.close(`stream error: ${error.message}`));
    stream.on('close', () => this.close('closed by the device'));
    stream.on('end', () => this.close('closed by the device'));
    // remoteAddress costs a getpeername() call: read only when it is logged.
    if (this.logging) this.log({ event: 'connection', remoteAddress: peer.remoteAddress });
  }

  /** Resolves when the connection is closed, whoever closed it. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  get registrationId(): string | undefined {
    return this.device?.registrationId;
  }

  isClosed(): boolean {
    return this.state === 'closed';
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.idleTimer);
    for (const timer of this.pendingResponses) clearTimeout(timer);
    this.pendingResponses.clear();
    this.flushAnswers(); // what was answered before the close still leaves, as it did unbatched
    this.stream.destroy();
    this.log({ event: 'close', reason, durationMs: Date.now() - this.startedAt });
    this.resolveClosed();
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    // Any packet shows a connected device is alive: the keep-alive clock restarts. Before CONNECT the
    // limit is absolute, or a client trickling one byte at a time would hold the connection forever.
    if (this.state === 'connected') this.idleTimer.refresh();
    // The answers to the packets of one chunk (SUBACK, PUBACK, response...) leave as one write: one TLS
    // record and one system call instead of one per packet; the bytes are the same.
    this.stream.cork();
    this.batching = true;
    try {
      // Packets are handled as they are decoded: those before a malformed one are still answered.
      for (const packet of this.decoder.decode(chunk)) {
        this.onPacket(packet);
        if (this.isClosed()) return;
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.close(error.message);
    } finally {
      this.flushAnswers();
    }
  }

  /** Sends what was written while batching. */
  private flushAnswers(): void {
    if (!this.batching) return;
    this.batching = false;
    this.stream.uncork();
  }

  private onPacket(packet: ClientPacket): void {
    if (this.state === 'closed') return;
    if (this.state === 'awaitingConnect') {
      if (packet.type !== 'connect' && packet.type !== 'connectUnsupported') {
        this.close(`the first packet must be CONNECT, not ${packet.type.toUpperCase()}`);
        return;
      }
      this.onConnect(packet);
      return;
    }
    switch (packet.type) {
      case 'subscribe':
        this.onSubscribe(packet);
        return;
      case 'unsubscribe':
        this.responseQos = undefined;
        this.send(encodeUnsuback(packet.messageId));
        return;
      case 'publish':
        this.onPublish(packet);
        return;
      case 'puback':
        return; // the device acknowledged a QoS 1 response; nothing is retransmitted, so nothing to do
      case 'pingreq':
        this.send(encodePingresp());
        return;
      case 'disconnect':
        this.close('DISCONNECT');
        return;
      default:
        // MQTT-3.1.0-2: a second CONNECT is a protocol violation.
        this.close(`unsupported packet ${packet.type.toUpperCase()}`);
    }
  }

  private onConnect(packet: Extract<ClientPacket, { type: 'connect' | 'connectUnsupported' }>): void {
    const connectFate = this.context.faults.nextConnect();
    if (connectFate.drop) {
      this.log({ event: 'drop', fault: 'beforeConnack', sequence: connectFate.sequence });
      this.close(`fault injected: drop before CONNACK ${connectFate.sequence}`);
      return;
    }
    if (packet.type === 'connectUnsupported') {
      // MQTT-3.1.2-2: an unsupported protocol level is answered with return code 1, then closed.
      this.refuse(
        CONNACK_UNACCEPTABLE_PROTOCOL_VERSION,
        `protocol ${packet.protocolName} level ${packet.protocolLevel}: DPS speaks MQTT 3.1.1 (MQTT level 4)`,
      );
      return;
    }
    const clientId = packet.clientId;
    if (!isValidRegistrationId(clientId)) {
      this.refuse(CONNACK_IDENTIFIER_REJECTED, `client id "${clientId}" is not a valid registration id`);
      return;
    }
    const username = parseUsername(packet.username ?? '');
    if (username === undefined || !isValidApiVersion(username.apiVersion)) {
      this.refuse(
        CONNACK_BAD_USERNAME_OR_PASSWORD,
        'the user name must be {idScope}/registrations/{registrationId}/api-version={YYYY-MM-DD}',
      );
      return;
    }
    if (username.registrationId !== clientId) {
      this.refuse(
        CONNACK_IDENTIFIER_REJECTED,
        `client id "${clientId}" is not the user name's registration id`,
      );
      return;
    }
    // The ID scope, then the password's SAS token or else the TLS client certificate (as over HTTPS).
    const attestation = attestDevice(this.context.book, {
      idScope: username.idScope,
      registrationId: clientId,
      sasToken: packet.password?.toString('utf8'),
      clientCertificates: () => this.peer.clientCertificates(),
    });
    if (!attestation.ok) {
      this.refuse(attestation.returnCode, attestation.reason, clientId);
      return;
    }
    this.device = { registrationId: clientId, attested: attestation, apiVersion: username.apiVersion };
    this.state = 'connected';
    // MQTT 3.1.1 section 3.1.2.10: a server may close a connection idle for 1.5 times the keep-alive.
    const keepAliveSeconds = packet.keepAliveSeconds;
    this.idleTimeoutMs = keepAliveSeconds > 0 ? keepAliveSeconds * 1500 : 0;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.close('keep-alive expired'), this.idleTimeoutMs || 2 ** 31 - 1);
    if (this.idleTimeoutMs === 0) this.idleTimer.unref();
    this.send(encodeConnack(CONNACK_ACCEPTED));
    this.log({
      event: 'connack',
      returnCode: CONNACK_ACCEPTED,
      apiVersion: username.apiVersion,
      clientVersion: username.clientVersion,
      attestation: attestation.attestation,
      credential: attestation.credential,
      enrollment:
        attestation.matched.kind === 'group'
          ? attestation.matched.enrollment.enrollmentGroupId
          : 'individual',
    });
  }

  private onSubscribe(packet: Extract<ClientPacket, { type: 'subscribe' }>): void {
    const granted = packet.subscriptions.map((subscription) => {
      if (subscription.topic !== SUBSCRIBE_TOPIC) return 0x80; // DPS serves its response topic only
      const qos: 0 | 1 = subscription.qos === 0 ? 0 : 1;
      this.responseQos = qos;
      return qos;
    });
    this.send(encodeSuback(packet.messageId, granted));
    const subscribeFate = this.context.faults.nextSubscribe();
    if (subscribeFate.drop) {
      this.log({ event: 'drop', fault: 'afterSuback', sequence: subscribeFate.sequence });
      this.close(`fault injected: drop after SUBACK ${subscribeFate.sequence}`);
    }
  }

  private onPublish(packet: Extract<ClientPacket, { type: 'publish' }>): void {
    if (packet.qos === 2) {
      this.close('QoS 2 is not supported');
      return;
    }
    const request = parseRequestTopic(packet.topic);
    if (request === undefined) {
      this.close(`unknown topic ${JSON.stringify(packet.topic.slice(0, 200))}`);
      return;
    }
    const fate = this.context.faults.nextRequest();
    if (fate.dropBefore) {
      this.log({
        event: 'drop',
        when: 'beforeRequest',
        sequence: fate.sequence,
        requestId: request.requestId,
      });
      this.close(`fault injected: drop before request ${fate.sequence}`);
      return;
    }
    if (packet.qos === 1 && packet.messageId !== undefined) this.send(encodePuback(packet.messageId));
    const device = this.device!;
    const payload = packet.payload;
    const response = answerDeviceRequest(
      this.context,
      device,
      request.kind === 'register'
        ? { kind: 'register', body: payload }
        : { kind: 'operationStatus', operationId: request.operationId },
      fate,
    );
    this.log({
      event: 'request',
      kind: request.kind,
      requestId: request.requestId,
      operationId: request.kind === 'operationStatus' ? request.operationId : undefined,
      sequence: fate.sequence,
      statusCode: response.statusCode,
      status: 'status' in response.body ? response.body.status : undefined,
      errorCode: 'errorCode' in response.body ? response.body.errorCode : undefined,
      answered: this.responseQos !== undefined,
    });
    if (this.responseQos === undefined) return; // DPS answers subscribed connections only
    const reply = (): void => {
      this.publishResponse(request.requestId, response);
      if (fate.dropAfter) {
        this.log({
          event: 'drop',
          when: 'afterResponse',
          sequence: fate.sequence,
          requestId: request.requestId,
        });
        this.close(`fault injected: drop after response ${fate.sequence}`);
      }
    };
    const delay = this.context.faults.responseDelayMs;
    if (delay <= 0) {
      reply();
      return;
    }
    const timer = setTimeout(() => {
      this.pendingResponses.delete(timer);
      reply();
    }, delay);
    this.pendingResponses.add(timer);
  }

  private publishResponse(requestId: string, response: DpsResponse): void {
    const qos = this.responseQos ?? 0;
    this.send(
      encodePublish({
        topic: responseTopic(response.statusCode, requestId, response.retryAfterSeconds),
        payload: JSON.stringify(response.body),
        qos,
        ...(qos === 1 ? { messageId: this.takeMessageId() } : {}),
      }),
    );
  }

  /** Answers CONNECT with a refusal and closes: never a silent close or a timeout. */
  private refuse(returnCode: number, reason: string, registrationId?: string): void {
    this.send(encodeConnack(returnCode), { evenIfClosed: true });
    this.flushAnswers();
    this.log({ event: 'connack', returnCode, reason, registrationId });
    this.state = 'closed';
    clearTimeout(this.idleTimer);
    // end() flushes the CONNACK before closing; destroy if the device does not close its side.
    this.stream.end();
    const timer = setTimeout(() => this.stream.destroy(), 2000);
    timer.unref();
    this.stream.once('close', () => clearTimeout(timer));
    this.log({ event: 'close', reason: `refused: ${reason}`, durationMs: Date.now() - this.startedAt });
    this.resolveClosed();
  }

  private takeMessageId(): number {
    const messageId = this.nextMessageId;
    this.nextMessageId = messageId >= 0xffff ? 1 : messageId + 1;
    return messageId;
  }

  private send(packet: Buffer, options: { evenIfClosed?: boolean } = {}): void {
    if (this.state === 'closed' && options.evenIfClosed !== true) return;
    if (this.stream.destroyed || this.stream.writableEnded) return;
    // A device that sends requests but never reads the answers would grow the write buffer without end.
    if (this.stream.writableLength > MAX_UNREAD_RESPONSE_BYTES) {
      this.close(`the device does not read its answers (${this.stream.writableLength} bytes unread)`);
      return;
    }
    this.stream.write(packet);
  }

  private log(entry: { event: string; [field: string]: unknown }): void {
    if (!this.logging) return;
    this.context.logger({
      ...entry,
      connectionId: this.connectionId,
      transport: this.peer.transport,
      registrationId: entry.registrationId ?? this.device?.registrationId,
    });
  }
}
