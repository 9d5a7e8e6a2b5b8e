// Step 6, MQTT CONNECT: the CONNACK in words and, for a refusal, the likely causes for the credential in
// use, most likely first. A refused key is tried once more as the other kind of key (a group key given
// as a device key, or the reverse): only trying tells, and the answer is the most common fix.
import type { Duplex } from 'node:stream';
import { openTls } from '../io/tls.js';
import { openWebSocket } from '../io/websocket.js';
import { encodeConnect } from '../mqtt/codec.js';
import { createSasToken, DEFAULT_SAS_LIFETIME_SECONDS, deriveDeviceKey } from '../protocol/sas.js';
import { buildUsername } from '../protocol/username.js';
import { DEFAULT_USER_AGENT } from '../transport/common.js';
import { type DiagnoseContext, ioOptions } from './context.js';
import { MqttProbe, type ProbeAnswer } from './mqtt-probe.js';
import { failureFrom, type StepOutcome } from './step.js';

export const CONNACK_WORDS: Readonly<Record<number, string>> = {
  0: 'accepted',
  1: 'unacceptable protocol version',
  2: 'identifier rejected (the client id must be the registration id)',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

async function openStream(context: DiagnoseContext): Promise<Duplex> {
  return context.transport === 'mqtt-ws' ? openWebSocket(ioOptions(context)) : openTls(ioOptions(context));
}

/** One CONNECT with `deviceKey` (or the certificate); the answer, and the open probe when accepted. */
async function tryConnect(
  context: DiagnoseContext,
  deviceKey: string | undefined,
): Promise<{ answer: ProbeAnswer; probe: MqttProbe }> {
  const stream = await openStream(context);
  const probe = new MqttProbe(stream, context.stepTimeoutMs);
  const password =
    deviceKey === undefined
      ? undefined
      : createSasToken({
          idScope: context.idScope,
          registrationId: context.registrationId,
          key: deviceKey,
          expiresAtSeconds: Math.floor(Date.now() / 1000) + DEFAULT_SAS_LIFETIME_SECONDS,
        });
  probe.send(
    encodeConnect({
      clientId: context.registrationId,
      username: buildUsername({
        idScope: context.idScope,
        registrationId: context.registrationId,
        apiVersion: context.apiVersion,
        userAgent: DEFAULT_USER_AGENT,
      }),
      ...(password === undefined ? {} : { password }),
      keepAliveSeconds: 60,
      cleanSession: true,
    }),
  );
  const answer = await probe.next();
  if (!(answer.kind === 'packet' && answer.packet.type === 'connack' && answer.packet.returnCode === 0)) {
    probe.close();
  }
  return { answer, probe };
}

function deviceKeyOf(context: DiagnoseContext): string | undefined {
  return context.security.kind === 'symmetricKey' ? context.security.deviceKey : undefined;
}

export async function connectStep(context: DiagnoseContext): Promise<StepOutcome> {
  let result: { answer: ProbeAnswer; probe: MqttProbe };
  try {
    result = await tryConnect(context, deviceKeyOf(context));
  } catch (error) {
    return failureFrom(error);
  }
  const { answer, probe } = result;
  if (answer.kind === 'packet' && answer.packet.type === 'connack') {
    const code = answer.packet.returnCode;
    if (code === 0) {
      context.probe = probe;
      return { status: 'ok', summary: 'CONNACK 0: accepted', details: { returnCode: 0 } };
    }
    return refusal(context, code);
  }
  return unexpectedAnswer(context, answer);
}

async function refusal(context: DiagnoseContext, returnCode: number): Promise<StepOutcome> {
  const words = CONNACK_WORDS[returnCode] ?? 'refused';
  const summary = `DPS refused the connection: CONNACK ${returnCode} (${words})`;
  const details = { returnCode };
  if (returnCode === 3) {
    return {
      status: 'fail',
      summary,
      details,
      causes: ['the service is busy or in maintenance'],
      hint: 'try again later; register retries this by itself',
    };
  }
  const otherKind = await triedAsOtherKind(context);
  const causes = likelyCauses(context, otherKind);
  let hint: string;
  if (otherKind === 'works-as-group-key') {
    hint = `the key works as a group key for "${context.registrationId}": use --group-key instead of --symmetric-key`;
  } else if (otherKind === 'works-as-device-key') {
    hint = `the key works as this device's own key: use --symmetric-key instead of --group-key`;
  } else if (context.credential === 'x509') {
    hint = 'check the enrollment of this certificate (or of its CA) in the DPS instance, and --id-scope';
  } else {
    hint =
      'check the key against the enrollment (primary or secondary key), --id-scope and --registration-id';
  }
  return {
    status: 'fail',
    summary,
    details: { ...details, ...(otherKind === 'untried' ? {} : { otherKeyKind: otherKind }) },
    causes,
    hint,
  };
}

type OtherKind = 'works-as-group-key' | 'works-as-device-key' | 'refused-too' | 'untried';

/** A refused key, tried as the other kind: the derived key of a "device key", or a "group key" as is. */
async function triedAsOtherKind(context: DiagnoseContext): Promise<OtherKind> {
  if (context.givenKey === undefined) return 'untried';
  const otherKey =
    context.credential === 'symmetricKey'
      ? deriveDeviceKey(context.givenKey, context.registrationId)
      : context.givenKey;
  try {
    const { answer, probe } = await tryConnect(context, otherKey);
    probe.close();
    const accepted =
      answer.kind === 'packet' && answer.packet.type === 'connack' && answer.packet.returnCode === 0;
    if (!accepted) return 'refused-too';
    return context.credential === 'symmetricKey' ? 'works-as-group-key' : 'works-as-device-key';
  } catch {
    return 'untried';
  }
}

function likelyCauses(context: DiagnoseContext, otherKind: OtherKind): string[] {
  const scope = `the ID scope ${context.idScope} is not this DPS instance's (it is on the instance's overview page)`;
  const clock =
    "this machine's clock is more than an hour off, so the SAS token has expired for DPS (see the clock step over --transport mqtt-ws)";
  if (context.credential === 'symmetricKey') {
    return [
      ...(otherKind === 'works-as-group-key'
        ? [
            `the key is a group enrollment's key: its derived device key for "${context.registrationId}" was accepted`,
          ]
        : []),
      "the key is not the individual enrollment's primary or secondary key (mistyped, regenerated, or a group key: then use --group-key)",
      scope,
      `no enrollment has the registration id "${context.registrationId}" (registration ids are case-sensitive)`,
      'the enrollment is disabled',
      clock,
    ];
  }
  if (context.credential === 'groupKey') {
    return [
      ...(otherKind === 'works-as-device-key'
        ? ["the key is this device's own (individual enrollment) key: given as is, it was accepted"]
        : []),
      "the group key is not the enrollment group's primary or secondary key (or it is a device key: then use --symmetric-key)",
      scope,
      `an individual enrollment for "${context.registrationId}" takes precedence over the group, with another key or disabled`,
      'the enrollment group is disabled',
      clock,
    ];
  }
  const certificate = context.clientCertificate;
  const now = Date.now();
  const outOfValidity =
    certificate !== undefined &&
    (Date.parse(certificate.notAfter) < now || Date.parse(certificate.notBefore) > now);
  return [
    ...(outOfValidity && certificate !== undefined
      ? [
          `the device certificate is outside its validity period (${certificate.notBefore} to ${certificate.notAfter}; this machine reads ${new Date(now).toISOString()}): it has expired, or a clock is wrong`,
        ]
      : []),
    'the certificate is not enrolled: no individual enrollment has its thumbprint and no enrollment group its (verified) CA',
    `the certificate's subject CN "${certificate?.commonName ?? ''}" is not the registration id "${context.registrationId}"`,
    scope,
    'the enrollment is disabled',
    ...(context.proxy === undefined
      ? []
      : ['a TLS-inspecting proxy strips the device certificate: X.509 cannot pass through inspection']),
  ];
}

function unexpectedAnswer(context: DiagnoseContext, answer: ProbeAnswer): StepOutcome {
  switch (answer.kind) {
    case 'http':
      return {
        status: 'fail',
        summary: `the server answered CONNECT in HTTP ("${answer.statusLine}"), not MQTT: the port probably speaks MQTT over WebSocket, the other transport`,
        causes: ['this port serves HTTPS (MQTT over WebSocket, usually 443), not MQTT over TLS (8883)'],
        hint: 'the port probably speaks the other transport: use --transport mqtt-ws for this port, or port 8883 with --transport mqtt',
      };
    case 'timeout':
      return {
        status: 'fail',
        summary: `no CONNACK within ${context.stepTimeoutMs} ms`,
        causes: [
          'the server is not a DPS endpoint',
          'the network path stalls (a firewall holding the connection)',
        ],
        hint: 'check --endpoint; raise --timeout on slow links',
      };
    case 'malformed':
      return {
        status: 'fail',
        summary: `the server's answer to CONNECT is not MQTT: ${answer.message}`,
        causes: ['the port serves another protocol'],
        hint: 'check the port in --endpoint and --transport',
      };
    case 'closed':
      return {
        status: 'fail',
        summary: `the server closed the connection without a CONNACK (${answer.message})`,
        causes: [
          context.credential === 'x509'
            ? 'the server refused the device certificate'
            : 'the server does not accept this CONNECT (user name, client id)',
          'the port is not a DPS port',
        ],
        hint: 'check --endpoint, --id-scope and the credentials',
      };
    default:
      return { status: 'fail', summary: 'the server sent a packet other than CONNACK first' };
  }
}
