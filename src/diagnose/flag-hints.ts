// What to do about a connection failure, in the command line's words (its flags, not library options).
// Shared by `register`'s error line and `diagnose`'s steps.
import type { TransportFailureReason } from '../protocol/errors.js';

export function flagHintForReason(reason: TransportFailureReason | undefined): string | undefined {
  switch (reason) {
    case 'untrusted-certificate':
      return (
        'pass the CA that issued the server certificate with --ca FILE (the emulator prints its CA path; ' +
        "without --ca the public roots are trusted); behind a TLS-inspecting proxy, that is the proxy's CA"
      );
    case 'certificate-name-mismatch':
      return 'check the host in --endpoint: the server certificate names other hosts';
    case 'certificate-expired':
      return "check this machine's clock; if it is right, the server's certificate has expired";
    case 'client-certificate-refused':
      return 'check --cert: the server does not accept it (expired, or an issuer it does not trust)';
    case 'not-tls':
      return 'the endpoint does not speak TLS: check the host and port in --endpoint (443 for --transport mqtt-ws, 8883 for --transport mqtt)';
    case 'no-common-tls-version':
      return 'the server offers no TLS version of 1.2 or newer: check --endpoint';
    case 'wrong-transport':
      return 'the port probably speaks the other transport: switch --transport (mqtt-ws for a WebSocket port such as 443, mqtt for 8883) or use the other port in --endpoint';
    case 'connection-refused':
      return 'nothing listens there: check the host and port in --endpoint (443 for --transport mqtt-ws, 8883 for --transport mqtt)';
    case 'host-not-found':
      return 'the host name does not resolve: check --endpoint and DNS';
    default:
      return undefined;
  }
}
