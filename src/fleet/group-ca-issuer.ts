// `--issue-certs`: a device certificate made on the fly for each registration id, signed by the X.509
// group enrollment's CA the user gives (CN = registration id, client authentication, EC P-256 key).
// node:crypto signs a TBSCertificate from the shared builder: no process spawned per device.
import {
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import {
  assembleCertificate,
  buildDeviceTbsCertificate,
  type CertificateIssuerInfo,
  certificateIssuerInfo,
  serialNumberFrom,
} from '../protocol/certificate-builder.js';
import { Oid } from '../protocol/der.js';
import { InvalidInputError } from '../protocol/errors.js';
import type { GroupCaOptions } from './types.js';

/** A device certificate lives a year unless its CA ends sooner; backdated for clocks a little behind. */
const DEVICE_CERTIFICATE_DAYS = 365;
const CLOCK_SKEW_MS = 60_000;
const DAY_MS = 24 * 3600 * 1000;

export interface IssuedDeviceCertificate {
  /** The device certificate then the group CA certificate, PEM: what the device presents in TLS. */
  certificatePem: string;
  /** PKCS#8 PEM. */
  privateKeyPem: string;
}

export class GroupCaIssuer {
  private readonly caKey: KeyObject;
  private readonly caCertificatePem: string;
  private readonly issuer: CertificateIssuerInfo;
  private readonly caNotBeforeMs: number;
  private readonly caNotAfterMs: number;
  private readonly signatureAlgorithm: string;
  private readonly hash: 'sha256' | 'sha384';

  /** `options` holds PEM text (the CLI reads the files). */
  constructor(options: GroupCaOptions) {
    let ca: X509Certificate;
    try {
      ca = new X509Certificate(options.certificate);
    } catch {
      throw new InvalidInputError(
        'devices.groupCa.certificate',
        'the group CA certificate is not a PEM certificate',
      );
    }
    try {
      this.caKey = createPrivateKey(
        options.passphrase === undefined
          ? options.privateKey
          : { key: options.privateKey, passphrase: options.passphrase },
      );
    } catch {
      throw new InvalidInputError(
        'devices.groupCa.privateKey',
        'the group CA private key cannot be read: give a PEM private key (and its passphrase if it is encrypted)',
      );
    }
    if (!ca.checkPrivateKey(this.caKey)) {
      throw new InvalidInputError(
        'devices.groupCa.privateKey',
        'the group CA private key does not belong to the group CA certificate',
      );
    }
    if (!ca.ca) {
      throw new InvalidInputError(
        'devices.groupCa.certificate',
        'the group CA certificate is not a CA (basicConstraints cA is not set): give the CA of the X.509 enrollment group',
      );
    }
    const keyType = this.caKey.asymmetricKeyType;
    const curve = this.caKey.asymmetricKeyDetails?.namedCurve;
    if (keyType === 'ec' && curve === 'secp384r1') {
      [this.signatureAlgorithm, this.hash] = [Oid.ecdsaWithSha384, 'sha384'];
    } else if (keyType === 'ec' && curve === 'prime256v1') {
      [this.signatureAlgorithm, this.hash] = [Oid.ecdsaWithSha256, 'sha256'];
    } else if (keyType === 'rsa') {
      [this.signatureAlgorithm, this.hash] = [Oid.sha256WithRsa, 'sha256'];
    } else {
      throw new InvalidInputError(
        'devices.groupCa.privateKey',
        `the group CA key is ${keyType}${curve ? ` ${curve}` : ''}: use an EC P-256, EC P-384 or RSA key`,
      );
    }
    this.caCertificatePem = ca.toString();
    this.issuer = certificateIssuerInfo(ca.raw);
    this.caNotBeforeMs = Date.parse(ca.validFrom);
    this.caNotAfterMs = Date.parse(ca.validTo);
  }

  /** A new key pair and its certificate for `registrationId`. */
  issue(registrationId: string, now = new Date()): IssuedDeviceCertificate {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const nowMs = Math.floor(now.getTime() / 1000) * 1000;
    const notBefore = new Date(Math.max(nowMs - CLOCK_SKEW_MS, this.caNotBeforeMs));
    const notAfter = new Date(Math.min(nowMs + DEVICE_CERTIFICATE_DAYS * DAY_MS, this.caNotAfterMs));
    const tbs = buildDeviceTbsCertificate({
      serial: serialNumberFrom(randomBytes(16)),
      signatureAlgorithm: this.signatureAlgorithm,
      issuer: this.issuer,
      notBefore,
      notAfter,
      commonName: registrationId,
      publicKeySpkiDer: publicKey.export({ type: 'spki', format: 'der' }),
    });
    const signature = sign(this.hash, tbs, { key: this.caKey, dsaEncoding: 'der' });
    const der = assembleCertificate(tbs, this.signatureAlgorithm, signature);
    const base64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
    const leafPem = `-----BEGIN CERTIFICATE-----\n${base64.endsWith('\n') ? base64 : `${base64}\n`}-----END CERTIFICATE-----\n`;
    return {
      certificatePem: `${leafPem}${this.caCertificatePem}`,
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    };
  }
}
