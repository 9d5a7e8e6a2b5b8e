// Shared test helpers: an emulator on ephemeral loopback ports with one PKI per test process, and a raw
// MQTT client (mqtt-packet) for the paths no SDK takes. Other test files may import these.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet';
import { createWebSocketStream, WebSocket } from 'ws';
import { type EmulatorOptions, type RunningEmulator, startEmulator } from '../../src/emulator/index.js';
import { type CertificateAndKey, type EmulatorPki, ensureEmulatorPki } from '../../src/emulator/pki/pki.js';
import { createSasToken } from '../../src/protocol/sas.js';
import { buildUsername, DEFAULT_API_VERSION } from '../../src/protocol/username.js';

mqttPacket.writeToStream.cacheNumbers = false;

let sharedPki: Promise<EmulatorPki> | undefined;

/** One emulator CA + server certificate for the whole test process, in a temporary directory. */
export function testPki(): Promise<EmulatorPki> {
  if (sharedPki === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'dps-mqtt-test-pki-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    sharedPki = ensureEmulatorPki({ dataDir: dir });
  }
  return sharedPki;
}

export interface TestEmulator extends RunningEmulator {
  pki: EmulatorPki;
}

/**
 * An emulator on 127.0.0.1 with ephemeral ports, the shared test PKI, and `retry-after` 0 so tests do not
 * wait; any option can be overridden. Close it with `close()` (an `after` hook or `t.after`).
 */
export async function startTestEmulator(options: EmulatorOptions = {}): Promise<TestEmulator> {
  const pki = await testPki();
  const emulator = await startEmulator({
    host: '127.0.0.1',
    mqttPort: 0,
    wssPort: 0,
    retryAfterSeconds: 0,
    pki,
    ...options,
  });
  return Object.assign(emulator, { pki });
}

/** A temporary directory, removed by the returned function. */
export async function temporaryDirectory(
  prefix = 'dps-mqtt-test-',
): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export interface RawConnectOptions {
  port: number;
  host?: string;
  transport: 'mqtt' | 'wss';
  /** The CA to trust (PEM). */
  ca: string;
  /** A client certificate (X.509 attestation). */
  clientCertificate?: CertificateAndKey;
  /** WebSocket path; /$iothub/websocket by default. */
  path?: string;
  /** WebSocket subprotocols; ['mqtt'] by default. */
  protocols?: string[];
}

/**
 * A bare MQTT connection that sends exactly the packets a test writes and records every packet the
 * emulator sends back, so a test can say "CONNECT with an expired token gets CONNACK 5".
 */
export class RawMqttClient {
  private readonly received: Packet[] = [];
  private readonly waiters: Array<(packet: Packet | undefined) => void> = [];
  private isClosed = false;
  readonly closed: Promise<void>;

  private constructor(private readonly stream: Duplex) {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet: Packet) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter(packet);
      else this.received.push(packet);
    });
    stream.on('data', (chunk: Buffer) => parser.parse(chunk));
    stream.on('error', () => {});
    this.closed = new Promise((resolve) => {
      const onClose = (): void => {
        if (this.isClosed) return;
        this.isClosed = true;
        for (const waiter of this.waiters.splice(0)) waiter(undefined);
        resolve();
      };
      stream.once('close', onClose);
      stream.once('end', onClose);
    });
  }

  static async connect(options: RawConnectOptions): Promise<RawMqttClient> {
    const host = options.host ?? '127.0.0.1';
    const tlsOptions = {
      ca: options.ca,
      servername: 'localhost',
      ...(options.clientCertificate
        ? { cert: options.clientCertificate.certPem, key: options.clientCertificate.keyPem }
        : {}),
    };
    if (options.transport === 'mqtt') {
      const socket = tlsConnect({ host, port: options.port, ...tlsOptions });
      await once(socket, 'secureConnect');
      return new RawMqttClient(socket);
    }
    // The server certificate names 127.0.0.1 and ::1 as well as localhost.
    const urlHost = host.includes(':') ? `[${host}]` : host;
    const webSocket = new WebSocket(
      `wss://${urlHost}:${options.port}${options.path ?? '/$iothub/websocket'}`,
      options.protocols ?? ['mqtt'],
      tlsOptions,
    );
    await once(webSocket, 'open');
    return new RawMqttClient(createWebSocketStream(webSocket));
  }

  send(packet: Packet): void {
    this.stream.write(mqttPacket.generate(packet));
  }

  /** Writes raw bytes (malformed packets). */
  sendBytes(bytes: Buffer): void {
    this.stream.write(bytes);
  }

  /** The next packet from the emulator, or undefined when the connection closes first. */
  nextPacket(): Promise<Packet | undefined> {
    const packet = this.received.shift();
    if (packet !== undefined) return Promise.resolve(packet);
    if (this.isClosed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next packet, which must be of `cmd`; fails with what arrived instead. */
  async expect<C extends Packet['cmd']>(cmd: C): Promise<Extract<Packet, { cmd: C }>> {
    const packet = await this.nextPacket();
    if (packet?.cmd !== cmd) {
      throw new Error(
        `expected ${cmd.toUpperCase()}, got ${packet === undefined ? 'the connection closed' : JSON.stringify(packet)}`,
      );
    }
    return packet as Extract<Packet, { cmd: C }>;
  }

  /** Resolves true if the emulator closes the connection with no further packet. */
  async closesWithoutAnswer(): Promise<boolean> {
    const packet = await this.nextPacket();
    return packet === undefined;
  }

  close(): void {
    this.stream.destroy();
  }
}

export interface SasConnectOptions {
  idScope: string;
  registrationId: string;
  /** The device key (base64). */
  key: string;
  expiresAtSeconds?: number;
  resourceEncoding?: 'encoded' | 'raw';
  apiVersion?: string;
  keepalive?: number;
}

/** A CONNECT as a symmetric-key device sends it. */
export function sasConnectPacket(options: SasConnectOptions): IConnectPacket {
  const password = createSasToken({
    idScope: options.idScope,
    registrationId: options.registrationId,
    key: options.key,
    expiresAtSeconds: options.expiresAtSeconds ?? Math.floor(Date.now() / 1000) + 3600,
    resourceEncoding: options.resourceEncoding ?? 'encoded',
  });
  return {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    keepalive: options.keepalive ?? 60,
    clientId: options.registrationId,
    username: buildUsername({
      idScope: options.idScope,
      registrationId: options.registrationId,
      apiVersion: options.apiVersion ?? DEFAULT_API_VERSION,
      userAgent: 'dps-mqtt-tests/1.0',
    }),
    password: Buffer.from(password),
  };
}

/** SUBSCRIBE to the DPS response topic. */
export function subscribePacket(messageId = 1): Packet {
  return {
    cmd: 'subscribe',
    messageId,
    subscriptions: [{ topic: '$dps/registrations/res/#', qos: 1 }],
  };
}

/** PUBLISH at QoS 1 (or 0) of a request topic and body. */
export function publishPacket(
  topic: string,
  body: string | object,
  options: { qos?: 0 | 1; messageId?: number } = {},
): Packet {
  const qos = options.qos ?? 1;
  return {
    cmd: 'publish',
    topic,
    payload: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    qos,
    dup: false,
    retain: false,
    ...(qos === 1 ? { messageId: options.messageId ?? 10 } : {}),
  };
}

/** The status and parsed body of a DPS response PUBLISH. */
export function parseResponse(packet: Packet): {
  statusCode: number;
  requestId: string;
  retryAfter: string | null;
  body: Record<string, unknown>;
} {
  if (packet.cmd !== 'publish') throw new Error(`expected a PUBLISH, got ${packet.cmd}`);
  const match = /^\$dps\/registrations\/res\/(\d{3})\/\?(.*)$/.exec(packet.topic);
  if (!match) throw new Error(`not a DPS response topic: ${packet.topic}`);
  const query = new URLSearchParams(match[2]);
  return {
    statusCode: Number(match[1]),
    requestId: query.get('$rid') ?? '',
    retryAfter: query.get('retry-after'),
    body: JSON.parse(packet.payload.toString()) as Record<string, unknown>,
  };
}
