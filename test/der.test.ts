// The DER writer and reader (src/protocol/der.ts) and the CSR reader, checked against openssl (an
// independent producer and parser) and by round-trip properties.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { CsrFormatError, csrDerFrom, readCsr } from '../src/protocol/csr-reader.js';
import {
  DerError,
  decodeOid,
  derBitString,
  derChildren,
  derCommonNameOnly,
  derInteger,
  derOid,
  derSequence,
  derSet,
  derTime,
  derUtf8String,
  readDer,
  Tag,
} from '../src/protocol/der.js';

const runs = Number(process.env.FUZZ_RUNS ?? 100);

function asn1parse(der: Uint8Array): string {
  return execFileSync('openssl', ['asn1parse', '-inform', 'DER'], { input: der }).toString();
}

describe('DER writer, read by openssl', () => {
  test('integers get a leading zero when the top bit is set, and lose redundant zeros', () => {
    const text = asn1parse(
      derSequence(derInteger(0x80n), derInteger(Uint8Array.of(0, 0, 0x7f)), derInteger(0n)),
    );
    assert.match(text, /INTEGER\s+:80\n/);
    assert.match(text, /INTEGER\s+:7F\n/);
    assert.match(text, /INTEGER\s+:00\n/);
    assert.deepEqual([...derInteger(0x80n)], [0x02, 0x02, 0x00, 0x80]);
  });

  test('times are UTCTime before 2050 and GeneralizedTime from 2050 (RFC 5280)', () => {
    const text = asn1parse(
      derSequence(derTime(new Date('2026-12-01T05:06:07Z')), derTime(new Date('2050-01-01T00:00:00Z'))),
    );
    assert.match(text, /UTCTIME\s+:261201050607Z/);
    assert.match(text, /GENERALIZEDTIME\s+:20500101000000Z/);
  });

  test('a SET OF is sorted, and long lengths use the multi-byte form', () => {
    const text = asn1parse(
      derSequence(derSet(derInteger(5n), derInteger(1n)), derBitString(new Uint8Array(300))),
    );
    assert.ok(text.indexOf(':01') < text.indexOf(':05'), text);
    assert.match(text, /hl=4 l= 301 prim: BIT STRING/);
  });

  test('a CN-only name and well-known OIDs read back as openssl names them', () => {
    const text = asn1parse(derCommonNameOnly('sensor-042'));
    assert.match(text, /OBJECT\s+:commonName/);
    assert.match(text, /UTF8STRING\s+:sensor-042/);
  });
});

describe('DER reader', () => {
  test('object identifiers round-trip (property)', () => {
    const arc = fc.bigInt({ min: 0n, max: 2n ** 64n });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 39 }),
        fc.array(arc, { maxLength: 8 }),
        (a, b, rest) => {
          const dotted = [a, b, ...rest].join('.');
          assert.equal(decodeOid(readDer(derOid(dotted))), dotted);
        },
      ),
      { numRuns: runs },
    );
  });

  test('nested sequences of strings round-trip (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 300 }), { maxLength: 20 }), (texts) => {
        const children = derChildren(readDer(derSequence(...texts.map(derUtf8String))));
        assert.deepEqual(
          children.map((child) => child.content.toString('utf8')),
          texts.map((text) => Buffer.from(text, 'utf8').toString('utf8')),
        );
      }),
      { numRuns: runs },
    );
  });

  test('arbitrary bytes either parse or throw DerError, never anything else (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const node = readDer(bytes);
          if (node.constructed) derChildren(node);
        } catch (error) {
          assert.ok(error instanceof DerError, String(error));
        }
      }),
      { numRuns: runs * 10 },
    );
  });

  test('non-DER encodings are refused: indefinite length, non-minimal length, trailing bytes, overrun', () => {
    for (const bytes of [
      [0x30, 0x80, 0x00, 0x00],
      [0x04, 0x81, 0x01, 0x00],
      [0x05, 0x00, 0x00],
      [0x04, 0x05, 0x00],
      [0x30, 0x82, 0x00, 0x80],
    ]) {
      assert.throws(() => readDer(Uint8Array.from(bytes)), DerError, JSON.stringify(bytes));
    }
    assert.equal(readDer(Uint8Array.of(Tag.null, 0)).content.length, 0);
  });
});

describe('CSR reader, on requests made by openssl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dps-mqtt-der-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function opensslCsr(keyArgs: string[], subject: string): Buffer {
    const out = join(dir, `csr-${Math.random().toString(16).slice(2)}.der`);
    execFileSync(
      'openssl',
      [
        'req',
        '-new',
        ...keyArgs,
        '-nodes',
        '-keyout',
        `${out}.key`,
        '-subj',
        subject,
        '-outform',
        'DER',
        '-out',
        out,
      ],
      {
        stdio: 'ignore',
      },
    );
    return readFileSync(out);
  }

  const cases = [
    { keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], keyType: 'ec-p384' },
    { keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], keyType: 'ec-p256' },
    { keyArgs: ['-newkey', 'rsa:2048'], keyType: 'rsa-2048' },
  ];
  for (const { keyArgs, keyType } of cases) {
    test(`reads the subject, key type and a valid signature (${keyType})`, () => {
      const csr = readCsr(opensslCsr(keyArgs, '/CN=sensor-042'));
      assert.deepEqual(csr.commonNames, ['sensor-042']);
      assert.equal(csr.subjectAttributeCount, 1);
      assert.equal(csr.keyType, keyType);
      assert.equal(csr.signatureValid, true);
    });
  }

  test('a changed byte in the signed part makes the signature invalid', () => {
    const der = opensslCsr(cases[0]!.keyArgs, '/CN=sensor-042/O=lab');
    const index = der.indexOf(Buffer.from('sensor-042'));
    der[index] = 'S'.charCodeAt(0);
    const csr = readCsr(der);
    assert.deepEqual(csr.commonNames, ['Sensor-042']);
    assert.equal(csr.subjectAttributeCount, 2);
    assert.equal(csr.signatureValid, false);
  });

  test('PEM, base64 and raw DER forms give the same bytes; other text is refused', () => {
    const der = opensslCsr(cases[1]!.keyArgs, '/CN=a');
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    assert.deepEqual(csrDerFrom(pem), der);
    assert.deepEqual(csrDerFrom(der.toString('base64')), der);
    assert.deepEqual(csrDerFrom(der), der);
    assert.throws(() => csrDerFrom('not a csr!'), CsrFormatError);
    assert.throws(() => readCsr(Buffer.from('hello')), CsrFormatError);
  });
});
