// The configuration file as docs/emulator.md shows it, comments included, goes through the loader; and
// the comment stripper's vectors: comments go, strings (with // or /* inside, escaped quotes) stay, and
// positions (lines, columns) are kept for JSON.parse's messages.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EmulatorConfigError, loadEmulatorConfigFile } from '../src/emulator/enrollments/config.js';
import { stripJsonComments } from '../src/emulator/enrollments/strip-json-comments.js';
import { createRootCa, issueCertificate } from '../src/emulator/index.js';
import { temporaryDirectory } from './helpers/emulator.js';

test('stripJsonComments: vectors', () => {
  const vectors: Array<[string, string, string]> = [
    ['no comments', '{"a": 1}', '{"a": 1}'],
    ['line comment', '{"a": 1} // note', '{"a": 1}        '],
    ['line comment keeps the newline', '{\n"a": 1, // x\n"b": 2}', '{\n"a": 1,     \n"b": 2}'],
    ['block comment', '{/* c */"a": 1}', '{       "a": 1}'],
    ['block comment over lines keeps them', '{/* a\nb */"a": 1}', '{    \n    "a": 1}'],
    ['// inside a string', '{"url": "https://x//y"}', '{"url": "https://x//y"}'],
    ['/* inside a string', '{"a": "/* no */"}', '{"a": "/* no */"}'],
    ['escaped quote then //', '{"a": "q\\"//"} // c', '{"a": "q\\"//"}     '],
    ['escaped backslash ends the string', '{"a": "\\\\"} // c', '{"a": "\\\\"}     '],
    ['comment at the end without a newline', '[1]//', '[1]  '],
    ['CRLF kept', '[1] // c\r\n', '[1]     \r\n'],
  ];
  for (const [name, input, expected] of vectors) {
    assert.equal(stripJsonComments(input), expected, name);
    assert.equal(stripJsonComments(input).length, input.length, `${name}: positions kept`);
  }
  assert.throws(() => stripJsonComments('{\n/* open'), /a \/\* comment opened on line 2 is never closed/);
});

test('a JSON error in a commented file still points at the right line', async (t) => {
  const dir = await temporaryDirectory('dps-mqtt-jsonc-');
  t.after(() => dir.remove());
  const path = join(dir.path, 'config.jsonc');
  await writeFile(path, '{\n  // a comment\n  "idScope": "0ne00000A0A",,\n}\n');
  await assert.rejects(loadEmulatorConfigFile(path), (error: unknown) => {
    assert.ok(error instanceof EmulatorConfigError);
    assert.match(error.message, /not valid JSON \(\/\/ and \/\* \*\/ comments allowed\)/);
    return true;
  });
});

for (const [file, heading] of [
  ['docs/emulator.md', '## Configuration file'],
  ['README.md', 'Enrollment configuration'],
] as const) {
  test(`the configuration example of ${file} loads exactly as written`, async (t) => {
    const text = await readFile(fileURLToPath(new URL(`../${file}`, import.meta.url)), 'utf8');
    const section = text.slice(text.indexOf(heading));
    const match = /```jsonc\n([\s\S]*?)\n```/.exec(section);
    assert.ok(match, `${file} has a \`\`\`jsonc block under "${heading}"`);
    const example = match[1]!;
    assert.match(example, /\/\/ /, 'the example carries comments');

    // The certificate files it names, relative to the configuration file, are the user's: made here.
    const dir = await temporaryDirectory('dps-mqtt-docs-config-');
    t.after(() => dir.remove());
    await mkdir(join(dir.path, 'certs'));
    const root = await createRootCa({ commonName: 'docs example root' });
    const camera = await issueCertificate({ issuer: root, commonName: 'camera-7', usage: 'client' });
    await writeFile(join(dir.path, 'certs', 'root.pem'), root.certPem);
    await writeFile(join(dir.path, 'certs', 'camera-7.pem'), camera.certPem);
    const path = join(dir.path, 'emulator.jsonc');
    await writeFile(path, example);

    const config = await loadEmulatorConfigFile(path);
    assert.equal(config.idScope, '0ne00000A0A');
    assert.deepEqual(
      config.individualEnrollments.map((enrollment) => enrollment.registrationId),
      ['sensor-001', 'camera-7'],
    );
    assert.deepEqual(
      config.enrollmentGroups.map((group) => group.enrollmentGroupId),
      ['sensors', 'cameras'],
    );
  });
}
