// What a remembered TLS session needs to hold. Node hands a client its session as OpenSSL's SSL_SESSION in
// DER: a SEQUENCE of fields, one of which ([3], "peer") is the server's certificate. Offering the session
// again decodes it all, and on OpenSSL 3 decoding that certificate's public key is the dearest step of a
// resumed handshake (1.3 M of a fleet registration's 8.1 M instructions under callgrind). A resumed
// handshake checks no certificate (the first one did), so the remembered copy of a TLS 1.3 session leaves
// the certificate out: Node counts a resumed TLS 1.3 connection as verified without one (its
// VerifyPeerCertificate), but a resumed TLS 1.2 connection without one as unverified, so TLS 1.2 sessions
// are kept whole.

const SEQUENCE = 0x30;
/** Context-specific, constructed, tag 3: SSL_SESSION's `peer` field. */
const PEER_CERTIFICATE = 0xa3;
/** SSL_SESSION's second field, ssl_version, for TLS 1.3: INTEGER 0x0304. */
const TLS13_VERSION_FIELD = Buffer.from([0x02, 0x02, 0x03, 0x04]);

interface Element {
  tag: number;
  /** Where the tag byte is. */
  offset: number;
  /** Where the content starts and ends. */
  start: number;
  end: number;
}

/**
 * A TLS 1.3 session without the server's certificate. A TLS 1.2 session, and input that is not the DER
 * expected (another TLS library's format, a future field layout, a truncated buffer), comes back
 * unchanged: resumption then still works, only slower.
 */
export function withoutServerCertificate(session: Buffer): Buffer {
  const outer = readElement(session, 0);
  if (outer === undefined || outer.tag !== SEQUENCE || outer.end !== session.length) return session;
  const fields: Element[] = [];
  for (let offset = outer.start; offset < outer.end; ) {
    const field = readElement(session, offset, outer.end);
    if (field === undefined) return session;
    fields.push(field);
    offset = field.end;
  }
  const version = fields[1];
  if (version === undefined || !session.subarray(version.offset, version.end).equals(TLS13_VERSION_FIELD)) {
    return session;
  }
  const kept = fields.filter((field) => field.tag !== PEER_CERTIFICATE);
  if (kept.length === fields.length) return session;
  const body = Buffer.concat(kept.map((field) => session.subarray(field.offset, field.end)));
  return Buffer.concat([Buffer.from([SEQUENCE]), encodeLength(body.length), body]);
}

/**
 * One DER element at `offset`: its tag, and where its content starts and ends. Undefined for what DER does
 * not allow or this reader does not need (multi-byte tags, indefinite or overlong lengths, overruns).
 */
function readElement(buffer: Buffer, offset: number, limit = buffer.length): Element | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = buffer[offset]!;
  if ((tag & 0x1f) === 0x1f) return undefined;
  const first = buffer[offset + 1]!;
  let length = first;
  let start = offset + 2;
  if (first >= 0x80) {
    const octets = first & 0x7f;
    if (octets === 0 || octets > 3 || start + octets > limit) return undefined;
    length = 0;
    for (let index = 0; index < octets; index += 1) length = length * 256 + buffer[start + index]!;
    start += octets;
  }
  const end = start + length;
  return end > limit ? undefined : { tag, offset, start, end };
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const octets: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest % 256);
  return Buffer.from([0x80 | octets.length, ...octets]);
}
