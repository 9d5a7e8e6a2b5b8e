// The remembered TLS session leaves out the server's certificate (src/io/tls-session-der.ts): a session
// from a real handshake loses exactly that field and still resumes, verified; the DER walk is checked
// against an independent encoding of random field lists; anything that is not the expected DER (random
// bytes, any truncation of a real session) comes back unchanged.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import fc from 'fast-check';
import { type CertificateAndKey, createRootCa, issueCertificate } from '../src/emulator/pki/pki.js';
import { openTls } from '../src/io/index.js';
import { cachedTlsSession, tlsSessionKey } from '../src/io/tls-session-cache.js';
import { withoutServerCertificate } from '../src/io/tls-session-der.js';
import { closeServer, echoOnce, listenOnLoopback } from './support/net.js';

const PEER_TAG = 0xa3;

function derLength(length: number): number[] {
  if (length < 0x80) return [length];
  const octets: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest % 256);
  return [0x80 | octets.length, ...octets];
}

function derElement(tag: number, content: Uint8Array): Buffer {
  return Buffer.from([tag, ...derLength(content.length), ...content]);
}

/** A session as a client receives it over a real handshake, with the server's certificate DER. */
async function sessionFrom(
  port: number,
  ca: string,
  version: tls.SecureVersion,
): Promise<{ session: Buffer; serverCertificate: Buffer }> {
  return await new Promise((resolve, reject) => {
    const socket = tls.connect({ host: 'localhost', port, ca, maxVersion: version, minVersion: version });
    const sessions: Buffer[] = [];
    let serverCertificate: Buffer | undefined;
    socket.on('session', (session: Buffer) => sessions.push(session));
    socket.once('secureConnect', () => {
      serverCertificate = socket.getPeerCertificate().raw;
      socket.write('x');
    });
    socket.on('data', () => socket.end());
    socket.once('close', () => {
      const session = sessions.at(-1);
      if (session === undefined || serverCertificate === undefined) reject(new Error('no session arrived'));
      else resolve({ session, serverCertificate });
    });
    socket.once('error', reject);
  });
}

/** Offers `session` and reports whether the server resumed it and the client counts the server verified. */
async function offer(
  port: number,
  ca: string,
  version: tls.SecureVersion,
  session: Buffer,
): Promise<{ reused: boolean; authorized: boolean }> {
  return await new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: 'localhost',
      port,
      ca,
      session,
      maxVersion: version,
      minVersion: version,
    });
    socket.once('secureConnect', () => {
      resolve({ reused: socket.isSessionReused(), authorized: socket.authorized });
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

describe('the remembered TLS session', () => {
  let rootCa: CertificateAndKey;
  let server: tls.Server;
  let port: number;

  before(async () => {
    rootCa = await createRootCa({ commonName: 'session der test root' });
    const leaf = await issueCertificate({
      issuer: rootCa,
      commonName: 'localhost',
      altNames: ['localhost'],
      usage: 'server',
    });
    server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (socket) => socket.pipe(socket));
    port = await listenOnLoopback(server);
  });
  after(() => closeServer(server));

  test("TLS 1.3: loses the server's certificate, nothing else, and still resumes verified", async () => {
    const { session, serverCertificate } = await sessionFrom(port, rootCa.certPem, 'TLSv1.3');
    assert.ok(session.includes(serverCertificate), 'OpenSSL keeps the server certificate in the session');
    const stripped = withoutServerCertificate(session);
    assert.equal(stripped.includes(serverCertificate), false);
    // Gone: the certificate in its [3] header (4 bytes for any real one), and the byte the outer length
    // may need less.
    const removed = session.length - stripped.length;
    assert.ok(
      removed === serverCertificate.length + 4 || removed === serverCertificate.length + 5,
      `${removed}`,
    );
    assert.deepEqual(await offer(port, rootCa.certPem, 'TLSv1.3', stripped), {
      reused: true,
      authorized: true,
    });
    // Stripping is idempotent: a session without the field is returned as it is.
    assert.equal(withoutServerCertificate(stripped), stripped);
  });

  test('TLS 1.2: kept whole, as Node counts a resumption without the certificate as unverified', async () => {
    const { session } = await sessionFrom(port, rootCa.certPem, 'TLSv1.2');
    assert.equal(withoutServerCertificate(session), session);
    assert.deepEqual(await offer(port, rootCa.certPem, 'TLSv1.2', session), {
      reused: true,
      authorized: true,
    });
  });

  test('the process cache keeps what openTls remembered without the certificate', async () => {
    const options = { host: 'localhost', port, trustedCa: rootCa.certPem };
    const socket = await openTls(options);
    const serverCertificate = socket.getPeerCertificate().raw;
    assert.deepEqual(await echoOnce(socket, Buffer.from('ping')), Buffer.from('ping'));
    socket.destroy();
    const remembered = cachedTlsSession(tlsSessionKey(options, 'localhost'));
    assert.ok(remembered !== undefined);
    assert.equal(remembered.includes(serverCertificate), false);
    const resumed = await openTls(options);
    assert.equal(resumed.isSessionReused(), true);
    assert.equal(resumed.authorized, true);
    resumed.destroy();
  });

  test('any truncation of a real session comes back unchanged', async () => {
    const { session } = await sessionFrom(port, rootCa.certPem, 'TLSv1.3');
    for (let length = 0; length < session.length; length += 1) {
      const truncated = session.subarray(0, length);
      assert.equal(withoutServerCertificate(truncated), truncated, `truncated to ${length} bytes`);
    }
  });
});

describe('the DER walk', () => {
  const field = fc.record({
    tag: fc.constantFrom(0x02, 0x04, 0xa1, 0xa2, PEER_TAG, 0xa4, 0xaa, 0xb3),
    content: fc.uint8Array({ maxLength: 600 }),
  });

  test('drops every [3] field of a TLS 1.3 session and keeps the others in order, whatever their lengths', () => {
    fc.assert(
      fc.property(fc.constantFrom(0x0303, 0x0304), fc.array(field, { maxLength: 12 }), (sslVersion, rest) => {
        const fields = [
          { tag: 0x02, content: Uint8Array.of(1) }, // SSL_SESSION's format version
          { tag: 0x02, content: Uint8Array.of(sslVersion >> 8, sslVersion & 0xff) },
          ...rest,
        ];
        const encoded = fields.map(({ tag, content }) => derElement(tag, content));
        const session = derElement(0x30, Buffer.concat(encoded));
        const strips = sslVersion === 0x0304 && rest.some(({ tag }) => tag === PEER_TAG);
        const result = withoutServerCertificate(session);
        if (strips) {
          const kept = encoded.filter((_, index) => fields[index]!.tag !== PEER_TAG);
          assert.deepEqual(result, derElement(0x30, Buffer.concat(kept)));
        } else {
          assert.equal(result, session);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('random bytes never throw, and come back unchanged unless they are a SEQUENCE holding a [3]', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const input = Buffer.from(bytes);
        const result = withoutServerCertificate(input);
        if (result !== input) {
          assert.equal(input[0], 0x30);
          assert.ok(result.length < input.length);
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('a SEQUENCE with bytes after it, an indefinite length or a multi-byte tag is left alone', () => {
    const peer = derElement(PEER_TAG, Buffer.from([1, 2, 3]));
    const version = Buffer.concat([
      derElement(0x02, Buffer.from([1])),
      derElement(0x02, Buffer.from([3, 4])),
    ]);
    const session = derElement(0x30, Buffer.concat([version, peer]));
    assert.notEqual(withoutServerCertificate(session), session, 'the well-formed one is stripped');
    const trailing = Buffer.concat([session, Buffer.from([0])]);
    assert.equal(withoutServerCertificate(trailing), trailing);
    const indefinite = Buffer.from([0x30, 0x80, ...version, ...peer, 0, 0]);
    assert.equal(withoutServerCertificate(indefinite), indefinite);
    const longTag = Buffer.from([0x30, 0x05, 0x1f, 0x81, 0x01, 0x01, 0x00]);
    assert.equal(withoutServerCertificate(longTag), longTag);
  });
});
