// Issue 10, item 8: every option name that a code example in the documentation passes to register(),
// new ProvisioningClient(), client.register() or startEmulator() is one the library accepts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { type OptionShapes, optionShapesFromSources, unknownDocOptions } from './support/doc-options.js';

const DOCS = [
  'README.md',
  ...readdirSync('docs')
    .filter((name) => name.endsWith('.md'))
    .map((name) => join('docs', name)),
];

let shapes: OptionShapes;
before(() => {
  shapes = optionShapesFromSources();
});

test('the option types are read from the sources (register, client.register, startEmulator)', () => {
  for (const name of ['idScope', 'registrationId', 'security', 'trustedCa', 'proxy', 'timeoutMs']) {
    assert.ok(shapes.client.names.has(name), `register() option ${name}`);
  }
  assert.ok(shapes.client.nested.get('security')?.names.has('groupKey'));
  assert.ok(shapes.call.names.has('signal'));
  for (const name of ['mqttPort', 'wssPort', 'retryAfterSeconds', 'pki', 'throttle']) {
    assert.ok(shapes.emulator.names.has(name), `startEmulator() option ${name}`);
  }
  assert.ok(!shapes.client.names.has('ca'));
});

test('a doc example with an option the library does not have is caught (ca: instead of trustedCa:)', () => {
  const markdown = [
    '```ts',
    "const result = await register({ idScope: 'x', registrationId: 'y', security: { groupKey: 'k' }, ca: 'ca.pem' });",
    'await startEmulator({ mqttPort: 0, retryAfter: 1, throttle: { firstRequest: 2 } });',
    'const client = new ProvisioningClient({',
    "  idScope: 'x',",
    "  security: { symetricKey: 'k' },",
    "  // endpoint: 'localhost:8883',   // note: for the emulator",
    "  // cert: 'ca.pem', payload: { a: 1 },",
    '});',
    'await client.register({ signal, timeout: 5 });',
    '```',
    'Trust it with the `ca` option (library).',
  ].join('\n');
  const found = unknownDocOptions(markdown, 'example.md', shapes).map(
    (problem) => `${problem.line} ${problem.call} ${problem.option}`,
  );
  assert.deepEqual(
    found.sort(),
    [
      '12 prose ca',
      '2 register() ca',
      '3 startEmulator() retryAfter',
      '3 startEmulator() throttle.firstRequest',
      '4 new ProvisioningClient() cert',
      '6 new ProvisioningClient() security.symetricKey',
      '10 client.register() timeout',
    ].sort(),
  );
});

test('commented-out options and nested options that exist pass', () => {
  const markdown = [
    '```ts',
    'await register({',
    "  idScope: 'x', security: { certificate: 'c.pem', privateKey: 'k.pem', passphrase: 'p' },",
    "  // trustedCa: 'ca.pem', payload: { anything: 1 }, apiVersion: '2021-06-01',",
    "  // proxy: 'http://user:password@proxy:3128',          // default: HTTPS_PROXY",
    '  retry: { initialDelayMs: 10 },',
    '});',
    '```',
  ].join('\n');
  assert.deepEqual(unknownDocOptions(markdown, 'example.md', shapes), []);
});

for (const file of DOCS) {
  test(`${file}: every option in its code examples exists`, () => {
    assert.deepEqual(unknownDocOptions(readFileSync(file, 'utf8'), file, shapes), []);
  });
}
