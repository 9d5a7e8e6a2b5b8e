// Step 4, TLS: the handshake on its own (version, cipher, the server's chain), then whether the chain
// verifies against the trust in use and names the host. The handshake runs without verification so that
// an untrusted chain can still be shown; nothing is sent over that connection. A full handshake always:
// a resumed session carries no certificate chain to show.
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import { openTls } from '../io/tls.js';
import { summariseChain } from './certificates.js';
import { type DiagnoseContext, ioOptions } from './context.js';
import { failureFrom, type StepOutcome } from './step.js';

const NAME_ERRORS = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  "Hostname/IP does not match certificate's altnames",
]);
const VALIDITY_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

export async function tlsStep(context: DiagnoseContext): Promise<StepOutcome> {
  let socket: TLSSocket;
  try {
    socket = await openTls(ioOptions(context, { insecureSkipVerify: true, tlsSessionResumption: false }));
  } catch (error) {
    const reason = (error as { reason?: unknown }).reason;
    const causes =
      reason === 'not-tls'
        ? [
            'the port serves plain HTTP or another protocol without TLS',
            'the port is not a DPS port (443 for --transport mqtt-ws, 8883 for --transport mqtt)',
          ]
        : reason === 'client-certificate-refused'
          ? [
              'the server refused the device certificate during the handshake (expired, or an issuer it does not trust)',
            ]
          : undefined;
    return failureFrom(error, causes === undefined ? {} : { causes });
  }
  try {
    const chain = summariseChain(socket.getPeerCertificate(true));
    context.peerChain = chain;
    const version = socket.getProtocol() ?? 'unknown';
    const cipher = socket.getCipher()?.name ?? 'unknown';
    const verifyError = socket.authorized ? undefined : String(socket.authorizationError ?? 'not verified');
    const leaf = chain[0];
    const identityError =
      leaf === undefined ? undefined : checkServerIdentity(context.host, socket.getPeerCertificate(false));
    const details = {
      version,
      cipher,
      chain: chain.map((certificate) => ({
        subject: certificate.subject,
        issuer: certificate.issuer,
        validTo: certificate.validTo,
        ...(certificate.altNames === undefined ? {} : { altNames: certificate.altNames }),
      })),
      verified: verifyError === undefined,
      ...(verifyError === undefined ? {} : { verifyError }),
    };
    const handshake = `${version}, ${cipher}, server certificate "${leaf?.subjectCommonName ?? leaf?.subject ?? 'none'}" issued by "${leaf?.issuerCommonName ?? leaf?.issuer ?? '?'}"`;
    if (identityError !== undefined || (verifyError !== undefined && NAME_ERRORS.has(verifyError))) {
      return {
        status: context.insecure ? 'warn' : 'fail',
        summary: `${handshake}; the certificate is not issued for "${context.host}": it names ${leaf?.altNames ?? 'no alternative names'}`,
        details,
        causes: [
          `the endpoint host is not the name the server is known by (--endpoint ${context.host})`,
          'a middlebox answered with a certificate for another name',
        ],
        hint: 'check the host in --endpoint (the global endpoint is global.azure-devices-provisioning.net)',
      };
    }
    if (verifyError !== undefined && VALIDITY_ERRORS.has(verifyError)) {
      return {
        status: context.insecure ? 'warn' : 'fail',
        summary: `${handshake}; the certificate is outside its validity period (${verifyError}; valid ${leaf?.validFrom} to ${leaf?.validTo}, this machine reads ${new Date().toISOString()})`,
        details,
        causes: ["this machine's clock is wrong", "the server's certificate expired"],
        hint: "check this machine's clock (NTP)",
      };
    }
    if (verifyError !== undefined) {
      // Whether a middlebox replaced the chain is the next step's question.
      context.untrusted = verifyError;
      return {
        status: 'warn',
        summary: `${handshake}; the chain is NOT trusted (${verifyError}): see tls-inspection`,
        details,
      };
    }
    return { status: 'ok', summary: `${handshake}; trusted, names "${context.host}"`, details };
  } finally {
    socket.destroy();
  }
}
