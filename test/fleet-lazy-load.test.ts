// Issue 15: `registerFleet` is exported from dps-mqtt, but a plain register() import must not pay for the
// fleet: this walks every static import from src/index.ts (as test/certificate-lazy-load.test.ts does)
// and proves the scheduler, the workers and the certificate builder are reached through import() only.
import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { code, dynamicImports, ROOT, resolveSource, staticClosure } from './support/import-graph.js';

const FLEET_MODULES = [
  'src/fleet/fleet-run.ts',
  'src/fleet/device-executor.ts',
  'src/fleet/fleet-worker.ts',
  'src/fleet/run-device.ts',
  'src/fleet/device-source.ts',
  'src/fleet/device-file.ts',
  'src/fleet/group-ca-issuer.ts',
  'src/fleet/fleet-stats.ts',
  'src/fleet/token-bucket.ts',
  'src/fleet/back-pressure.ts',
  'src/protocol/certificate-builder.ts',
];

describe('the fleet loads lazily', () => {
  test('importing dps-mqtt (src/index.ts) statically reaches only the light registerFleet entry and its option checks', () => {
    const closure = staticClosure(join(ROOT, 'src/index.ts'));
    assert.ok(closure.has(join(ROOT, 'src/fleet/register-fleet.ts')), 'registerFleet is exported');
    for (const module of FLEET_MODULES) {
      const chain = closure.get(join(ROOT, module));
      assert.equal(
        chain,
        undefined,
        `${module} is imported statically: ${chain?.map((file) => relative(ROOT, file)).join(' -> ')}`,
      );
    }
  });

  test('registerFleet reaches the scheduler through a dynamic import(), and the scheduler reaches the rest', () => {
    const entry = join(ROOT, 'src/fleet/register-fleet.ts');
    const targets = dynamicImports(code(entry)).map((specifier) => resolveSource(entry, specifier));
    assert.deepEqual(targets, [join(ROOT, 'src/fleet/fleet-run.ts')]);
    const closure = staticClosure(join(ROOT, 'src/fleet/fleet-run.ts'));
    for (const module of FLEET_MODULES.filter((name) => !/fleet-worker|device-file|fleet-run/.test(name))) {
      assert.ok(closure.has(join(ROOT, module)), module);
    }
  });

  test('the CLI loads the fleet command only when it runs', () => {
    const main = join(ROOT, 'src/cli/run-cli.ts');
    const closure = staticClosure(join(ROOT, 'src/cli/main.ts'));
    assert.ok(!closure.has(join(ROOT, 'src/cli/commands/fleet.ts')));
    assert.ok(dynamicImports(code(main)).includes('./commands/fleet.js'));
  });
});
