// The emulator's PKI: certificates made by openssl that Node's TLS accepts, generated once and reused.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, createServer } from 'node:tls';
import {
  certificateThumbprints,
  createRootCa,
  createSelfSignedCertificate,
  ensureEmulatorPki,
  issueCertificate,
} from '../src/emulator/pki/pki.js';
import { temporaryDirectory } from './helpers/emulator.js';

test('a root CA is a self-signed CA certificate with its key', async () => {
  const ca = await createRootCa({ commonName: 'pki test root' });
  const certificate = new X509Certificate(ca.certPem);
  assert.equal(certificate.ca, true);
  assert.equal(certificate.subject, 'CN=pki test root');
  assert.ok(certificate.checkIssued(certificate));
  assert.match(ca.keyPem, /-----BEGIN PRIVATE KEY-----/);
});

test('a server certificate names its hosts and IPs, is signed by the issuer, and serves TLS to a client trusting the CA', async () => {
  const ca = await createRootCa({ commonName: 'pki test root' });
  const server = await issueCertificate({
    issuer: ca,
    commonName: 'localhost',
    altNames: ['localhost', '127.0.0.1', '::1', 'dps.test'],
    usage: 'server',
  });
  const certificate = new X509Certificate(server.certPem);
  assert.equal(certificate.ca, false);
  assert.ok(certificate.verify(new X509Certificate(ca.certPem).publicKey));
  assert.ok(certificate.checkHost('dps.test'));
  assert.ok(certificate.checkIP('127.0.0.1'));
  assert.ok(certificate.checkIP('::1'));

  const tlsServer = createServer({ cert: server.certPem, key: server.keyPem }, (socket) =>
    socket.end('hello'),
  );
  tlsServer.listen(0, '127.0.0.1');
  await once(tlsServer, 'listening');
  try {
    const address = tlsServer.address() as { port: number };
    const socket = connect({
      host: '127.0.0.1',
      port: address.port,
      ca: ca.certPem,
      servername: 'localhost',
    });
    await once(socket, 'secureConnect');
    assert.equal(socket.authorized, true);
    socket.destroy();
  } finally {
    tlsServer.close();
  }
});

test('an intermediate CA issues client certificates that chain to the root', async () => {
  const root = await createRootCa({ commonName: 'pki root' });
  const intermediate = await issueCertificate({ issuer: root, commonName: 'pki intermediate', usage: 'ca' });
  const leaf = await issueCertificate({ issuer: intermediate, commonName: 'device-7', usage: 'client' });
  const leafCertificate = new X509Certificate(leaf.certPem);
  const intermediateCertificate = new X509Certificate(intermediate.certPem);
  assert.equal(intermediateCertificate.ca, true);
  assert.ok(leafCertificate.checkIssued(intermediateCertificate));
  assert.ok(leafCertificate.verify(intermediateCertificate.publicKey));
  assert.ok(intermediateCertificate.verify(new X509Certificate(root.certPem).publicKey));
  assert.equal(leafCertificate.subject, 'CN=device-7');
});

test('a self-signed certificate is its own issuer', async () => {
  const selfSigned = await createSelfSignedCertificate({ commonName: 'lonely-device', usage: 'client' });
  const certificate = new X509Certificate(selfSigned.certPem);
  assert.equal(certificate.issuer, certificate.subject);
  assert.ok(certificate.verify(certificate.publicKey));
  assert.equal(certificate.ca, false);
});

test('thumbprints are upper-case hex without colons', async () => {
  const selfSigned = await createSelfSignedCertificate({ commonName: 'thumb', usage: 'client' });
  const { sha1, sha256 } = certificateThumbprints(selfSigned.certPem);
  assert.match(sha1, /^[0-9A-F]{40}$/);
  assert.match(sha256, /^[0-9A-F]{64}$/);
});

test('ensureEmulatorPki generates once and reuses afterwards; a new server name reissues only the server certificate', async () => {
  const dir = await temporaryDirectory();
  try {
    const first = await ensureEmulatorPki({ dataDir: dir.path });
    assert.equal(first.caPath, join(dir.path, 'ca.pem'));
    assert.equal(await readFile(first.caPath, 'utf8'), first.ca.certPem);
    const second = await ensureEmulatorPki({ dataDir: dir.path });
    assert.equal(second.ca.certPem, first.ca.certPem);
    assert.equal(second.server.certPem, first.server.certPem);

    const widened = await ensureEmulatorPki({ dataDir: dir.path, extraNames: ['dps.example.test'] });
    assert.equal(widened.ca.certPem, first.ca.certPem, 'the CA devices trust stays the same');
    assert.notEqual(widened.server.certPem, first.server.certPem);
    assert.ok(new X509Certificate(widened.server.certPem).checkHost('dps.example.test'));
  } finally {
    await dir.remove();
  }
});
