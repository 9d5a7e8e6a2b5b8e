// A small DER (ASN.1 Distinguished Encoding Rules) writer and reader: just what PKCS#10 requests and
// X.509 certificates need. Pure functions over bytes, shared by the device (which builds CSRs) and the
// emulator (which reads CSRs and signs certificates); `openssl` checks both sides in the tests.

/** Universal tags used by CSRs and certificates. */
export const Tag = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Bytes that are not the DER the reader expected; the message says where and what. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** Well-known object identifiers, by the names the rest of the code uses. */
export const Oid = {
  commonName: '2.5.4.3',
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extendedKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;

// ---------------------------------------------------------------------------------------------
// Writing

function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One tag-length-value element. */
export function derElement(tag: number, content: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(tag), encodeLength(content.length), content]);
}

export function derSequence(...children: Uint8Array[]): Uint8Array {
  return derElement(Tag.sequence, concatBytes(children));
}

/** A SET OF: DER sorts the encoded elements. */
export function derSet(...children: Uint8Array[]): Uint8Array {
  const sorted = [...children].sort(compareBytes);
  return derElement(Tag.set, concatBytes(sorted));
}

/** An INTEGER from a non-negative bigint, or from unsigned big-endian bytes (a serial number). */
export function derInteger(value: bigint | Uint8Array): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === 'bigint') {
    if (value < 0n) throw new RangeError('derInteger: negative integers are not needed here');
    const hex = value.toString(16);
    bytes = Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
  } else {
    let start = 0;
    while (start < value.length - 1 && value[start] === 0) start += 1;
    bytes = value.subarray(start);
    if (bytes.length === 0) bytes = Uint8Array.of(0);
  }
  // A set top bit would read as negative: DER prefixes a zero byte.
  const content = (bytes[0] ?? 0) & 0x80 ? concatBytes([Uint8Array.of(0), bytes]) : bytes;
  return derElement(Tag.integer, content);
}

export function derBoolean(value: boolean): Uint8Array {
  return derElement(Tag.boolean, Uint8Array.of(value ? 0xff : 0x00));
}

export function derNull(): Uint8Array {
  return Uint8Array.of(Tag.null, 0);
}

export function derOid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map((arc) => {
    if (!/^\d+$/.test(arc)) throw new RangeError(`derOid: ${JSON.stringify(dotted)} is not a dotted OID`);
    return BigInt(arc);
  });
  if (arcs.length < 2) throw new RangeError(`derOid: ${JSON.stringify(dotted)} needs two arcs or more`);
  const [first = 0n, second = 0n, ...rest] = arcs;
  const bytes: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    const base128: number[] = [Number(arc & 0x7fn)];
    for (let value = arc >> 7n; value > 0n; value >>= 7n) base128.unshift(Number(value & 0x7fn) | 0x80);
    bytes.push(...base128);
  }
  return derElement(Tag.oid, Uint8Array.from(bytes));
}

export function derUtf8String(text: string): Uint8Array {
  return derElement(Tag.utf8String, Buffer.from(text, 'utf8'));
}

/** A BIT STRING of whole bytes (keys and signatures), or with `unusedBits` for flag sets. */
export function derBitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  return derElement(Tag.bitString, concatBytes([Uint8Array.of(unusedBits), bytes]));
}

export function derOctetString(bytes: Uint8Array): Uint8Array {
  return derElement(Tag.octetString, bytes);
}

/** X.509 validity times: UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
export function derTime(date: Date): Uint8Array {
  const iso = date.toISOString(); // 2026-12-01T05:18:31.123Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050)
    return derElement(Tag.utcTime, Buffer.from(`${digits.slice(2)}Z`, 'ascii'));
  return derElement(Tag.generalizedTime, Buffer.from(`${digits}Z`, 'ascii'));
}

/** A context-specific tag `[number]`: explicit (constructed, wraps an element) or implicit. */
export function derContext(number: number, content: Uint8Array, constructed = true): Uint8Array {
  return derElement((constructed ? 0xa0 : 0x80) | number, content);
}

/** A distinguished name with one CN attribute: `CN={commonName}` as UTF8String. */
export function derCommonNameOnly(commonName: string): Uint8Array {
  return derSequence(derSet(derSequence(derOid(Oid.commonName), derUtf8String(commonName))));
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts.map((part) => (Buffer.isBuffer(part) ? part : Buffer.from(part))));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

// ---------------------------------------------------------------------------------------------
// Reading

/** One element as read: its tag, its content and its full encoding (for signatures over it). */
export interface DerNode {
  tag: number;
  constructed: boolean;
  content: Buffer;
  /** Tag, length and content: the bytes a signature covers. */
  encoded: Buffer;
}

const MAX_DEPTH = 32;

/** Reads the one element at `offset`; strict DER (definite, minimal lengths), bounds checked. */
export function readDerElement(bytes: Uint8Array, offset = 0): { node: DerNode; end: number } {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (offset + 2 > buffer.length) throw new DerError(`truncated element at byte ${offset}`);
  const tag = buffer[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tags are not supported (byte ${offset})`);
  const first = buffer[offset + 1] as number;
  let length: number;
  let headerLength: number;
  if (first < 0x80) {
    length = first;
    headerLength = 2;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError(`indefinite length is not DER (byte ${offset})`);
    if (count > 4) throw new DerError(`length of ${count} bytes is too large (byte ${offset})`);
    if (offset + 2 + count > buffer.length) throw new DerError(`truncated length at byte ${offset}`);
    length = 0;
    for (let index = 0; index < count; index += 1)
      length = length * 256 + (buffer[offset + 2 + index] as number);
    if (length < 0x80 || (buffer[offset + 2] as number) === 0) {
      throw new DerError(`length is not minimally encoded (byte ${offset})`);
    }
    headerLength = 2 + count;
  }
  const end = offset + headerLength + length;
  if (end > buffer.length) throw new DerError(`element at byte ${offset} runs past the end of the data`);
  return {
    node: {
      tag,
      constructed: (tag & 0x20) !== 0,
      content: buffer.subarray(offset + headerLength, end),
      encoded: buffer.subarray(offset, end),
    },
    end,
  };
}

/** Reads exactly one element that fills `bytes` (nothing may trail it). */
export function readDer(bytes: Uint8Array): DerNode {
  const { node, end } = readDerElement(bytes, 0);
  if (end !== bytes.length) throw new DerError(`${bytes.length - end} unexpected bytes after the element`);
  return node;
}

/** The elements inside a constructed element. */
export function derChildren(node: DerNode, depth = 0): DerNode[] {
  if (!node.constructed) throw new DerError(`tag 0x${node.tag.toString(16)} is not constructed`);
  if (depth > MAX_DEPTH) throw new DerError('nested too deeply');
  const children: DerNode[] = [];
  for (let offset = 0; offset < node.content.length; ) {
    const { node: child, end } = readDerElement(node.content, offset);
    children.push(child);
    offset = end;
  }
  return children;
}

/** Checks the tag of a node; `what` names the field for the error message. */
export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (node === undefined) throw new DerError(`${what} is missing`);
  if (node.tag !== tag) {
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  }
  return node;
}

export function decodeOid(node: DerNode): string {
  expectTag(node, Tag.oid, 'object identifier');
  const bytes = node.content;
  if (bytes.length === 0) throw new DerError('empty object identifier');
  const arcs: bigint[] = [];
  let value = 0n;
  for (let index = 0; index < bytes.length; index += 1) {
    const byte = bytes[index] as number;
    if (value === 0n && byte === 0x80) throw new DerError('object identifier arc is not minimally encoded');
    value = (value << 7n) | BigInt(byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0n;
    } else if (index === bytes.length - 1) {
      throw new DerError('truncated object identifier');
    }
  }
  const [head = 0n, ...rest] = arcs;
  const first = head < 80n ? head / 40n : 2n;
  return [first, head - first * 40n, ...rest].join('.');
}

/** The content of a BIT STRING with no unused bits (a key or a signature). */
export function decodeBitStringBytes(node: DerNode, what: string): Buffer {
  expectTag(node, Tag.bitString, what);
  if (node.content.length === 0 || node.content[0] !== 0) {
    throw new DerError(`${what}: expected a bit string of whole bytes`);
  }
  return node.content.subarray(1);
}

/** The text of a string element (UTF8String, PrintableString, IA5String). */
export function decodeString(node: DerNode, what: string): string {
  if (node.tag !== Tag.utf8String && node.tag !== Tag.printableString && node.tag !== Tag.ia5String) {
    throw new DerError(`${what}: expected a string, found tag 0x${node.tag.toString(16)}`);
  }
  return node.content.toString(node.tag === Tag.utf8String ? 'utf8' : 'latin1');
}
