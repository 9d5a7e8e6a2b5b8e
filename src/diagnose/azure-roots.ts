// The root CAs that Azure IoT endpoints (DPS, IoT Hub) chain to: the one place `diagnose` learns what an
// untouched chain looks like. A chain that leads elsewhere was replaced on the way (TLS inspection) or
// comes from a private server (an emulator).
//
// Source: "Azure Certificate Authority details" (learn.microsoft.com/azure/security/fundamentals/
// azure-ca-details) and the IoT Hub / DPS TLS notes: since the 2023 migration away from Baltimore
// CyberTrust Root, DPS serves certificates under DigiCert Global Root G2; Microsoft's 2017 roots are the
// documented successors. Baltimore stays listed for sovereign or not-yet-migrated instances. Matched by
// subject (CN and O), which is all a diagnosis needs: the trust decision itself is TLS's.
export interface ExpectedRoot {
  commonName: string;
  organization: string;
}

export const AZURE_ROOT_CAS: readonly ExpectedRoot[] = [
  { commonName: 'DigiCert Global Root G2', organization: 'DigiCert Inc' },
  { commonName: 'DigiCert Global Root G3', organization: 'DigiCert Inc' },
  { commonName: 'DigiCert Global Root CA', organization: 'DigiCert Inc' },
  { commonName: 'Microsoft RSA Root Certificate Authority 2017', organization: 'Microsoft Corporation' },
  { commonName: 'Microsoft ECC Root Certificate Authority 2017', organization: 'Microsoft Corporation' },
  { commonName: 'Baltimore CyberTrust Root', organization: 'Baltimore' },
];

/** Host names served by Azure's DPS: for these, a chain that leads elsewhere is a replaced one. */
export function isAzureDpsHost(host: string): boolean {
  return /(^|\.)azure-devices-provisioning\.(net|cn|us|de)$/i.test(host);
}

/** True when a certificate subject (CN and O) is one of `roots`. */
export function isExpectedRoot(
  subject: { commonName?: string | undefined; organization?: string | undefined },
  roots: readonly ExpectedRoot[],
): boolean {
  return roots.some(
    (root) =>
      root.commonName === subject.commonName &&
      (subject.organization === undefined || root.organization === subject.organization),
  );
}
