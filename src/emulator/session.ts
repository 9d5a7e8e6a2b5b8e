// One device connection: the MQTT 3.1.1 state machine DPS runs over a TLS socket or a WebSocket stream.
// awaiting CONNECT -> (CONNACK 0) connected -> closed. DPS is not a broker: only its own topics,
// QoS 0/1, and answers only to a connection that subscribed.
import type { X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import mqttPacket, {
  type IConnectPacket,
  type IPublishPacket,
  type ISubscribePacket,
  type Packet,
} from 'mqtt-packet';
import { parseRequestTopic, responseTopic, SUBSCRIBE_TOPIC } from '../protocol/topics.js';
import { parseUsername } from '../protocol/username.js';
import { isValidApiVersion, isValidRegistrationId } from '../protocol/validate.js';
import {
  CONNACK_BAD_USERNAME_OR_PASSWORD,
  CONNACK_NOT_AUTHORIZED,
  type EnrollmentBook,
} from './enrollments.js';
import type { FaultPlan } from './faults.js';
import { FrameSplitter } from './frames.js';
import type { EmulatorLogger } from './log.js';
import type { AuthenticatedDevice, DpsResponse, Registrar } from './registrar.js';

// The number cache costs 38 ms and 17 MB on the first generate(); the emulator does not need it.
mqttPacket.writeToStream.cacheNumbers = false;

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

type State = 'awaitingConnect' | 'connected' | 'closed';

let connectionCounter = 0;

export class MqttSession {
  readonly connectionId = `c${++connectionCounter}`;
  private state: State = 'awaitingConnect';
  private device: AuthenticatedDevice | undefined;
  /** The QoS granted to the response subscription; undefined until the device subscribes. */
  private responseQos: 0 | 1 | undefined;
  private nextMessageId = 1;
  private readonly frames: FrameSplitter;
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  private idleTimer: NodeJS.Timeout;
  private idleTimeoutMs: number;
  private readonly pendingResponses = new Set<NodeJS.Timeout>();
  private readonly startedAt = Date.now();
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  constructor(
    private readonly stream: Duplex,
    private readonly peer: SessionPeer,
    private readonly context: SessionContext,
  ) {
    this.closedPromise = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.frames = new FrameSplitter(context.maxPacketBytes);
    this.idleTimeoutMs = context.connectTimeoutMs;
    this.idleTimer = setTimeout(() => this.close('no packet within the time limit'), this.idleTimeoutMs);
    this.parser.on('packet', (packet) => this.onPacket(packet));
    this.parser.on('error', (error: unknown) => this.onParseError(error));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (error) => this.close(`stream error: ${error.message}`));
    stream.on('close', () => this.close('closed by the device'));
    stream.on('end', () => this.close('closed by the device'));
    this.log({ event: 'connection', remoteAddress: peer.remoteAddress });
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
    this.stream.destroy();
    this.log({ event: 'close', reason, durationMs: Date.now() - this.startedAt });
    this.resolveClosed();
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    // Any packet shows a connected device is alive: the keep-alive clock restarts. Before CONNECT the
    // limit is absolute, or a client trickling one byte at a time would hold the connection forever.
    if (this.state === 'connected') this.idleTimer.refresh();
    const result = this.frames.push(chunk);
    if (result.kind === 'tooLarge') {
      this.close(
        `packet of ${result.remainingLength} bytes exceeds the ${this.context.maxPacketBytes}-byte limit`,
      );
      return;
    }
    if (result.kind === 'malformed') {
      this.close(`malformed packet: ${result.reason}`);
      return;
    }
    for (const frame of result.frames) {
      if (this.isClosed()) return;
      this.parser.parse(frame);
    }
  }

  private onParseError(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    if (this.state === 'awaitingConnect' && /protocol (version|id)/i.test(message)) {
      // MQTT 3.1.1 section 3.2.2.3: answer an unsupported protocol level with return code 1, then close.
      this.refuse(CONNACK_UNACCEPTABLE_PROTOCOL_VERSION, message);
      return;
    }
    this.close(`malformed packet: ${message}`);
  }

  private onPacket(packet: Packet): void {
    if (this.state === 'closed') return;
    if (this.state === 'awaitingConnect') {
      if (packet.cmd !== 'connect') {
        this.close(`the first packet must be CONNECT, not ${packet.cmd.toUpperCase()}`);
        return;
      }
      this.onConnect(packet);
      return;
    }
    switch (packet.cmd) {
      case 'subscribe':
        this.onSubscribe(packet);
        return;
      case 'unsubscribe':
        this.responseQos = undefined;
        this.send({ cmd: 'unsuback', messageId: packet.messageId ?? 0, granted: [] });
        return;
      case 'publish':
        this.onPublish(packet);
        return;
      case 'puback':
        return; // the device acknowledged a QoS 1 response; nothing is retransmitted, so nothing to do
      case 'pingreq':
        this.send({ cmd: 'pingresp' });
        return;
      case 'disconnect':
        this.close('DISCONNECT');
        return;
      default:
        this.close(`unsupported packet ${packet.cmd.toUpperCase()}`);
    }
  }

  private onConnect(packet: IConnectPacket): void {
    const connectFate = this.context.faults.nextConnect();
    if (connectFate.drop) {
      this.log({ event: 'drop', fault: 'beforeConnack', sequence: connectFate.sequence });
      this.close(`fault injected: drop before CONNACK ${connectFate.sequence}`);
      return;
    }
    if (packet.protocolVersion !== 4) {
      this.refuse(
        CONNACK_UNACCEPTABLE_PROTOCOL_VERSION,
        `protocol level ${packet.protocolVersion}: DPS speaks MQTT 3.1.1 (4)`,
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
    if (username.idScope !== this.context.book.idScope) {
      this.refuse(CONNACK_NOT_AUTHORIZED, `ID scope "${username.idScope}" is not this service's`);
      return;
    }
    const now = new Date();
    const attestation =
      packet.password !== undefined && packet.password.length > 0
        ? this.context.book.attestSasToken(
            clientId,
            packet.password.toString('utf8'),
            Math.floor(now.getTime() / 1000),
          )
        : this.context.book.attestCertificate(clientId, this.peer.clientCertificates(), now);
    if (!attestation.ok) {
      this.refuse(attestation.returnCode, attestation.reason, clientId);
      return;
    }
    this.device = { registrationId: clientId, attested: attestation, apiVersion: username.apiVersion };
    this.state = 'connected';
    // MQTT 3.1.1 section 3.1.2.10: a server may close a connection idle for 1.5 times the keep-alive.
    const keepAliveSeconds = packet.keepalive ?? 0;
    this.idleTimeoutMs = keepAliveSeconds > 0 ? keepAliveSeconds * 1500 : 0;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.close('keep-alive expired'), this.idleTimeoutMs || 2 ** 31 - 1);
    if (this.idleTimeoutMs === 0) this.idleTimer.unref();
    this.send({ cmd: 'connack', returnCode: CONNACK_ACCEPTED, sessionPresent: false });
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

  private onSubscribe(packet: ISubscribePacket): void {
    const granted = packet.subscriptions.map((subscription) => {
      if (subscription.topic !== SUBSCRIBE_TOPIC) return 0x80; // DPS serves its response topic only
      const qos: 0 | 1 = subscription.qos === 0 ? 0 : 1;
      this.responseQos = qos;
      return qos;
    });
    this.send({ cmd: 'suback', messageId: packet.messageId ?? 0, granted });
    const subscribeFate = this.context.faults.nextSubscribe();
    if (subscribeFate.drop) {
      this.log({ event: 'drop', fault: 'afterSuback', sequence: subscribeFate.sequence });
      this.close(`fault injected: drop after SUBACK ${subscribeFate.sequence}`);
    }
  }

  private onPublish(packet: IPublishPacket): void {
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
    if (packet.qos === 1) this.send({ cmd: 'puback', messageId: packet.messageId ?? 0 });
    const device = this.device!;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const response: DpsResponse = fate.throttled
      ? this.context.registrar.throttled(
          this.context.faults.throttleRetryAfterSeconds(this.context.retryAfterSeconds),
        )
      : request.kind === 'register'
        ? this.context.registrar.register(device, payload)
        : this.context.registrar.operationStatus(device, request.operationId);
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
    this.send({
      cmd: 'publish',
      topic: responseTopic(response.statusCode, requestId, response.retryAfterSeconds),
      payload: Buffer.from(JSON.stringify(response.body)),
      qos,
      retain: false,
      dup: false,
      ...(qos === 1 ? { messageId: this.takeMessageId() } : {}),
    });
  }

  /** Answers CONNECT with a refusal and closes: never a silent close or a timeout. */
  private refuse(returnCode: number, reason: string, registrationId?: string): void {
    this.send({ cmd: 'connack', returnCode, sessionPresent: false });
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

  private send(packet: Packet): void {
    if (this.state === 'closed' && packet.cmd !== 'connack') return;
    if (this.stream.destroyed || this.stream.writableEnded) return;
    // A device that sends requests but never reads the answers would grow the write buffer without end.
    if (this.stream.writableLength > MAX_UNREAD_RESPONSE_BYTES) {
      this.close(`the device does not read its answers (${this.stream.writableLength} bytes unread)`);
      return;
    }
    this.stream.write(mqttPacket.generate(packet));
  }

  private log(entry: { event: string; [field: string]: unknown }): void {
    this.context.logger({
      ...entry,
      connectionId: this.connectionId,
      transport: this.peer.transport,
      registrationId: entry.registrationId ?? this.device?.registrationId,
    });
  }
}
