// The certificate chain a device sent, for attestation, on full and on resumed TLS sessions alike.
// A resumed session keeps the client's leaf certificate (bound to the session, so still proven) but not
// the intermediates it sent with it: a group X.509 device whose leaf is issued by an intermediate would
// fail attestation on its second connection. So the intermediates seen with a leaf at a full handshake
// are remembered by the leaf's fingerprint, and added back when that leaf comes back on a resumed session.
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/**
 * Leaves remembered at most (least recently seen forgotten first). Tickets live for the server's session
 * timeout (300 s by default), so this bounds the devices that can resume with a remembered chain within
 * that time; a device beyond it still registers whenever its chain needs no intermediate.
 */
export const MAX_REMEMBERED_CHAINS = 10_000;

export interface PeerChains {
  /** The chain the device sent, leaf first; empty when it sent no certificate. Computed once per socket. */
  chainOf(socket: TLSSocket): X509Certificate[];
  /** Remembers the chain of a full handshake now (call on `secureConnection`); cheap without a certificate. */
  record(socket: TLSSocket): void;
}

export function createPeerChains(maxEntries = MAX_REMEMBERED_CHAINS): PeerChains {
  /** Leaf SHA-256 fingerprint -> the DER of the certificates sent after it. */
  const issuersByLeaf = new Map<string, Buffer[]>();
  const chains = new WeakMap<TLSSocket, X509Certificate[]>();

  const chainOf = (socket: TLSSocket): X509Certificate[] => {
    let chain = chains.get(socket);
    if (chain !== undefined) return chain;
    const raw = peerChainDer(socket);
    const leaf = raw[0];
    chain = raw.map((der) => new X509Certificate(der));
    if (leaf !== undefined) {
      const fingerprint = chain[0]?.fingerprint256 ?? '';
      if (!socket.isSessionReused()) {
        // Only a holder of the leaf's key can make a full handshake with it: what it sent is its chain.
        if (raw.length > 1) {
          issuersByLeaf.delete(fingerprint);
          issuersByLeaf.set(fingerprint, raw.slice(1));
          if (issuersByLeaf.size > maxEntries) {
            const oldest = issuersByLeaf.keys().next().value;
            if (oldest !== undefined) issuersByLeaf.delete(oldest);
          }
        }
      } else if (raw.length === 1) {
        const issuers = issuersByLeaf.get(fingerprint);
        if (issuers !== undefined) {
          issuersByLeaf.delete(fingerprint);
          issuersByLeaf.set(fingerprint, issuers);
          chain = [chain[0] as X509Certificate, ...issuers.map((der) => new X509Certificate(der))];
        }
      }
    }
    chains.set(socket, chain);
    return chain;
  };

  return {
    chainOf,
    record(socket) {
      if (socket.isSessionReused()) return;
      // Without a client certificate there is nothing to remember; the chain (empty) is memoized anyway.
      chainOf(socket);
    },
  };
}

/** The DER of each certificate the peer's chain holds, leaf first, each once. */
function peerChainDer(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let current: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (current?.raw !== undefined && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(current.raw);
    current = current.issuerCertificate;
  }
  return chain;
}
