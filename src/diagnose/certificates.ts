// Certificates as a diagnosis shows them: subject, issuer, names and validity, nothing secret.
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';

export interface PeerCertificateSummary {
  subject: string;
  subjectCommonName: string | undefined;
  subjectOrganization: string | undefined;
  issuer: string;
  issuerCommonName: string | undefined;
  issuerOrganization: string | undefined;
  /** subjectAltName as Node reports it: `DNS:a, IP Address:1.2.3.4`. */
  altNames: string | undefined;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
}

type Name = PeerCertificate['subject'];

function field(name: Name | undefined, key: 'CN' | 'O'): string | undefined {
  const value = (name as Record<string, string | string[] | undefined> | undefined)?.[key];
  return Array.isArray(value) ? value[0] : value;
}

function describeName(name: Name | undefined): string {
  if (name === undefined) return '';
  return Object.entries(name as Record<string, string | string[]>)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : value}`)
    .join(', ');
}

/** The chain as the server sent it, leaf first, stopping at a self-signed certificate or a loop. */
export function summariseChain(leaf: DetailedPeerCertificate | undefined): PeerCertificateSummary[] {
  const chain: PeerCertificateSummary[] = [];
  const seen = new Set<string>();
  let current: DetailedPeerCertificate | undefined = leaf;
  while (current !== undefined && current.fingerprint256 !== undefined && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push({
      subject: describeName(current.subject),
      subjectCommonName: field(current.subject, 'CN'),
      subjectOrganization: field(current.subject, 'O'),
      issuer: describeName(current.issuer),
      issuerCommonName: field(current.issuer, 'CN'),
      issuerOrganization: field(current.issuer, 'O'),
      altNames: current.subjectaltname,
      validFrom: new Date(current.valid_from).toISOString(),
      validTo: new Date(current.valid_to).toISOString(),
      fingerprint256: current.fingerprint256,
    });
    current = current.issuerCertificate;
  }
  return chain;
}
