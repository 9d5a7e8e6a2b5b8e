// A small certificate authority run by the `openssl` binary, independent of our DER code and of the
// emulator's PKI: it signs CSRs the way a DPS issuing CA would (leaf, issuing CA, root), so the client's
// chain checks are tested against certificates nobody in this project encoded.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export async function openssl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync('openssl', args, { encoding: 'utf8', timeout: 20_000 });
}

export interface OpensslCa {
  dir: string;
  rootPem: string;
  issuingPem: string;
  /** A second issuing CA under the same root: certificates it signs do not chain to `issuingPem`. */
  otherIssuingPem: string;
  /** A TLS server certificate (localhost, 127.0.0.1) signed by the root, and its key. */
  serverPem: string;
  serverKeyPem: string;
  /** Signs a CSR (DER) with the issuing CA (or the other one): the leaf as DER. */
  signCsr(csrDer: Uint8Array, options?: { days?: number; other?: boolean }): Promise<Buffer>;
  /** The chain DPS would return for a CSR: base64 DER of leaf, issuing CA, root. */
  issueChain(csrDer: Uint8Array): Promise<string[]>;
  close(): Promise<void>;
}

const EC_P384 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'];

export async function createOpensslCa(): Promise<OpensslCa> {
  const dir = await mkdtemp(join(tmpdir(), 'dps-mqtt-openssl-ca-'));
  const path = (name: string) => join(dir, name);
  await writeFile(
    path('ca.ext'),
    'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  await writeFile(
    path('leaf.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n',
  );
  await writeFile(
    path('server.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n',
  );
  await openssl([
    'req',
    '-x509',
    ...EC_P384,
    '-nodes',
    '-subj',
    '/CN=test DPS root',
    '-days',
    '3',
    '-keyout',
    path('root.key'),
    '-out',
    path('root.pem'),
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const serial = () => `0x${randomBytes(12).toString('hex')}`;
  const issueCa = async (name: string) => {
    await openssl([
      'req',
      '-new',
      ...EC_P384,
      '-nodes',
      '-subj',
      `/CN=test DPS ${name}`,
      '-keyout',
      path(`${name}.key`),
      '-out',
      path(`${name}.csr`),
    ]);
    await openssl([
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path('root.pem'),
      '-CAkey',
      path('root.key'),
      '-set_serial',
      serial(),
      '-days',
      '3',
      '-sha384',
      '-extfile',
      path('ca.ext'),
      '-out',
      path(`${name}.pem`),
    ]);
  };
  await issueCa('issuing');
  await issueCa('other-issuing');
  await openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    path('server.key'),
    '-out',
    path('server.csr'),
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    path('server.csr'),
    '-CA',
    path('root.pem'),
    '-CAkey',
    path('root.key'),
    '-set_serial',
    serial(),
    '-days',
    '3',
    '-extfile',
    path('server.ext'),
    '-out',
    path('server.pem'),
  ]);

  const [rootPem, issuingPem, otherIssuingPem, serverPem, serverKeyPem] = await Promise.all(
    ['root.pem', 'issuing.pem', 'other-issuing.pem', 'server.pem', 'server.key'].map((name) =>
      readFile(path(name), 'utf8'),
    ),
  );
  let count = 0;
  const signCsr: OpensslCa['signCsr'] = async (csrDer, options = {}) => {
    count += 1;
    const issuer = options.other ? 'other-issuing' : 'issuing';
    const csrPath = path(`leaf-${count}.csr.der`);
    const leafPath = path(`leaf-${count}.der`);
    await writeFile(csrPath, csrDer);
    await openssl([
      'x509',
      '-req',
      '-inform',
      'DER',
      '-in',
      csrPath,
      '-CA',
      path(`${issuer}.pem`),
      '-CAkey',
      path(`${issuer}.key`),
      '-set_serial',
      serial(),
      '-days',
      String(options.days ?? 30),
      '-sha384',
      '-extfile',
      path('leaf.ext'),
      '-outform',
      'DER',
      '-out',
      leafPath,
    ]);
    return readFile(leafPath);
  };
  return {
    dir,
    rootPem: rootPem as string,
    issuingPem: issuingPem as string,
    otherIssuingPem: otherIssuingPem as string,
    serverPem: serverPem as string,
    serverKeyPem: serverKeyPem as string,
    signCsr,
    async issueChain(csrDer) {
      const leaf = await signCsr(csrDer);
      return [leaf.toString('base64'), pemBody(issuingPem as string), pemBody(rootPem as string)];
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Base64 DER of a PEM certificate. */
export function pemBody(pem: string): string {
  return pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
}
