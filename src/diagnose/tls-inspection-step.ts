// Step 4b, TLS inspection: does the server's chain lead to the roots expected here (the --ca file, or
// the roots Azure uses)? When it does not, a middlebox (Zscaler and the like) probably replaced it.
import { X509Certificate } from 'node:crypto';
import { AZURE_ROOT_CAS, type ExpectedRoot, isAzureDpsHost, isExpectedRoot } from './azure-roots.js';
import type { DiagnoseContext } from './context.js';
import type { StepOutcome } from './step.js';

function caFileRoots(pem: string): ExpectedRoot[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => {
    const subject = new X509Certificate(block).subject;
    return {
      commonName: /(?:^|\n)CN=([^\n]*)/.exec(subject)?.[1] ?? '',
      organization: /(?:^|\n)O=([^\n]*)/.exec(subject)?.[1] ?? '',
    };
  });
}

export function tlsInspectionStep(context: DiagnoseContext): StepOutcome {
  const chain = context.peerChain ?? [];
  const useCaFile = context.trustedCa !== undefined;
  const expected = [
    ...(useCaFile ? caFileRoots(context.trustedCa as string) : []),
    ...(!useCaFile || context.trustMode === 'extend' ? AZURE_ROOT_CAS : []),
  ];
  const expectedText = useCaFile ? 'the CA given with --ca' : 'a root Azure uses';
  const top = chain.at(-1);
  const leadsToExpected =
    chain.some((certificate) =>
      isExpectedRoot(
        { commonName: certificate.subjectCommonName, organization: certificate.subjectOrganization },
        expected,
      ),
    ) ||
    (top !== undefined &&
      isExpectedRoot({ commonName: top.issuerCommonName, organization: top.issuerOrganization }, expected));
  const root = top?.issuerCommonName ?? top?.issuer ?? 'nothing';
  const details = { expectedRoots: expected.map((entry) => entry.commonName), chainRoot: root };

  if (leadsToExpected) {
    if (context.untrusted !== undefined) {
      return {
        status: 'fail',
        summary: `the chain leads to "${root}" (${expectedText}) but does not verify (${context.untrusted})`,
        details,
        causes: ['the server sends an incomplete chain', 'the CA file is not the one that issued this chain'],
        hint: 'check the --ca file (or leave --ca out to use the public roots)',
      };
    }
    return {
      status: 'ok',
      summary: `not inspected: the chain leads to "${root}" (${expectedText})`,
      details,
    };
  }
  const azure = isAzureDpsHost(context.host);
  const middleboxWords =
    `the server's certificate chain leads to "${root}", not to ${expectedText}: ` +
    (azure || context.proxy !== undefined || useCaFile
      ? 'a middlebox (a TLS-inspecting proxy or firewall such as Zscaler) probably replaced it'
      : 'a middlebox (a TLS-inspecting proxy or firewall) replaced it, or the endpoint is a private server');
  const x509Note =
    context.credential === 'x509'
      ? 'X.509 device authentication cannot pass through TLS inspection at all: the device certificate never reaches DPS; an exemption is the only way'
      : 'symmetric keys work through inspection once its CA is trusted; X.509 device authentication cannot pass through it at all';
  if (context.untrusted === undefined) {
    // Trusted anyway: this machine already trusts the middlebox (NODE_EXTRA_CA_CERTS, a corporate store).
    return {
      status: context.credential === 'x509' ? 'fail' : 'warn',
      summary: `${middleboxWords}; this machine trusts its issuer`,
      details,
      causes: [x509Note],
      hint: `ask for a TLS-inspection exemption for ${context.host}`,
    };
  }
  return {
    status: context.insecure ? 'warn' : 'fail',
    summary: `${middleboxWords}; issued by "${chain[0]?.issuerCommonName ?? chain[0]?.issuer ?? '?'}"`,
    details,
    causes: [
      'TLS inspection on this network re-signs TLS connections with its own CA',
      ...(useCaFile
        ? ['the --ca file holds another CA than the one that issued this server certificate']
        : []),
      ...(azure || useCaFile
        ? []
        : ['the endpoint is a private server (an emulator) whose CA was not given with --ca']),
      x509Note,
    ],
    hint:
      `trust the issuing CA with --ca FILE (or NODE_EXTRA_CA_CERTS), or ask for an exemption for ${context.host}` +
      (azure ? '' : '; for the emulator, pass its ca.pem with --ca'),
  };
}
