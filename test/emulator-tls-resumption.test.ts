// TLS session resumption end to end: the emulator issues session tickets, our client resumes its
// second registration's session over both transports, and a group X.509 device whose leaf is issued by an
// intermediate is still attested on a resumed session (which keeps the leaf but not the intermediates it
// sent): over MQTT, MQTT over WebSocket and, with the official SDK's HTTPS transport, the device API.
import assert from 'node:assert/strict';
import { Agent as HttpsAgent } from 'node:https';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { type CertificateAndKey, createRootCa, issueCertificate } from '../src/emulator/pki/pki.js';
import { register } from '../src/index.js';
import { startTestEmulator, type TestEmulator } from './helpers/emulator.js';

const require = createRequire(import.meta.url);
const { ProvisioningDeviceClient } =
  require('azure-iot-provisioning-device') as typeof import('azure-iot-provisioning-device');
const { Http } =
  require('azure-iot-provisioning-device-http') as typeof import('azure-iot-provisioning-device-http');
const { X509Security } = require('azure-iot-security-x509') as typeof import('azure-iot-security-x509');
const { Http: HttpBase } = require('azure-iot-http-base') as {
  Http: new () => { setOptions(options: { ca?: string; http?: { agent?: HttpsAgent } }): void };
};

/**
 * Every client TLS socket this process opens from now on reports whether it resumed a session, once its
 * handshake is done. Our IO, Node's https.Agent and `ws` all call `tls.connect` on the module object.
 */
function watchClientHandshakes(): { resumed: boolean[]; restore(): void } {
  const resumed: boolean[] = [];
  const original = tls.connect;
  const patched = ((...args: Parameters<typeof tls.connect>) => {
    const socket = original(...args);
    socket.once('secureConnect', () => resumed.push(socket.isSessionReused()));
    return socket;
  }) as typeof tls.connect;
  tls.connect = patched;
  return {
    resumed,
    restore: () => {
      tls.connect = original;
    },
  };
}

describe('TLS session resumption against the emulator', () => {
  let emulator: TestEmulator;
  let intermediateCa: CertificateAndKey;
  let watch: ReturnType<typeof watchClientHandshakes>;

  before(async () => {
    const groupCa = await createRootCa({ commonName: 'resumption group CA' });
    intermediateCa = await issueCertificate({
      issuer: groupCa,
      commonName: 'resumption intermediate',
      usage: 'ca',
    });
    emulator = await startTestEmulator({
      config: {
        idScope: '0ne0000RES1',
        enrollmentGroups: [
          {
            enrollmentGroupId: 'resumption-x509-group',
            attestation: { type: 'x509', caCertificate: groupCa.certPem },
          },
        ],
      },
    });
    watch = watchClientHandshakes();
  });

  after(async () => {
    watch.restore();
    await emulator.close();
  });

  /** A device of the group: its leaf is issued by the intermediate, which it sends after the leaf. */
  async function groupDevice(registrationId: string): Promise<CertificateAndKey> {
    const leaf = await issueCertificate({
      issuer: intermediateCa,
      commonName: registrationId,
      usage: 'client',
    });
    return { certPem: leaf.certPem + intermediateCa.certPem, keyPem: leaf.keyPem };
  }

  for (const transport of ['mqtt', 'mqtt-ws'] as const) {
    test(`${transport}: a group X.509 device registers twice, the second time on a resumed session`, async () => {
      const registrationId = `resumption-${transport}`;
      const device = await groupDevice(registrationId);
      watch.resumed.length = 0;
      for (let round = 0; round < 2; round += 1) {
        const result = await register({
          idScope: emulator.idScope,
          security: { certificate: device.certPem, privateKey: device.keyPem },
          endpoint: `localhost:${transport === 'mqtt' ? emulator.mqttPort : emulator.wssPort}`,
          transport,
          trustedCa: emulator.caCertPem,
        });
        assert.equal(result.status, 'assigned');
        assert.equal(result.deviceId, registrationId);
      }
      assert.deepEqual(watch.resumed, [false, true]);
    });
  }

  test('mqtt: another device of the same group does not resume the first one’s session', async () => {
    const first = await groupDevice('resumption-identity-1');
    const second = await groupDevice('resumption-identity-2');
    watch.resumed.length = 0;
    for (const device of [first, second]) {
      const result = await register({
        idScope: emulator.idScope,
        security: { certificate: device.certPem, privateKey: device.keyPem },
        endpoint: `localhost:${emulator.mqttPort}`,
        transport: 'mqtt',
        trustedCa: emulator.caCertPem,
      });
      assert.equal(result.status, 'assigned');
    }
    assert.deepEqual(watch.resumed, [false, false]);
  });

  test('HTTPS device API (official SDK): the status poll resumes and the device is still attested', async () => {
    const registrationId = 'resumption-https';
    const device = await groupDevice(registrationId);
    // One agent for the registration, as the SDK's transport uses: it caches the TLS session, and it
    // opens a new connection for the status poll (no keep-alive).
    const base = new HttpBase();
    base.setOptions({
      ca: emulator.caCertPem,
      http: { agent: new HttpsAgent({ host: emulator.host, port: emulator.wssPort }) },
    });
    const client = ProvisioningDeviceClient.create(
      'localhost',
      emulator.idScope,
      new Http(base as ConstructorParameters<typeof Http>[0]) as unknown as Parameters<
        typeof ProvisioningDeviceClient.create
      >[2],
      new X509Security(registrationId, { cert: device.certPem, key: device.keyPem }),
    );
    watch.resumed.length = 0;
    const result = (await client.register()) as { status?: string; deviceId?: string };
    assert.equal(result.status, 'assigned');
    assert.equal(result.deviceId, registrationId);
    assert.equal(watch.resumed[0], false);
    assert.ok(watch.resumed.length >= 2, `expected a second connection, saw ${watch.resumed.length}`);
    assert.ok(watch.resumed.slice(1).every(Boolean), `connections resumed: ${watch.resumed.join(', ')}`);
  });
});
