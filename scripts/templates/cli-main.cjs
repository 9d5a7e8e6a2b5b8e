#!/usr/bin/env node
// The `dps-mqtt` bin of the package (copied to dist/cli/main.cjs by scripts/build.mjs). CommonJS, so a
// command-line run never starts Node's ES module loader (about 20 ms and 2 MB of a cold start), and
// with a V8 code cache of the bundle, so a run after the first does not compile its 460 KiB again:
// - Node 22.1 and later: Node's own compile cache (module.enableCompileCache(), in the system's
//   temporary directory);
// - Node 20 and 21: a cache file next to the bundle, `dps-mqtt.cjs.v8-cache-<node version>-<arch>`,
//   written once (atomically, by rename) when missing or refused by V8, and skipped without a word where
//   the package directory is not writable. V8 checks the file against the source and its own version.
// NODE_DISABLE_COMPILE_CACHE=1 (Node's own switch) turns both off.
'use strict';
const { readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const bundlePath = path.join(__dirname, '..', 'dps-mqtt.cjs');

function loadBundle() {
  if (process.env.NODE_DISABLE_COMPILE_CACHE) return require(bundlePath);
  if (typeof Module.enableCompileCache === 'function') {
    Module.enableCompileCache();
    return require(bundlePath);
  }
  const cachePath = `${bundlePath}.v8-cache-${process.version}-${process.arch}`;
  let cachedData;
  try {
    cachedData = readFileSync(cachePath);
  } catch {
    // No cache yet: this run compiles as usual, and leaves one for the next.
  }
  const script = new vm.Script(Module.wrap(readFileSync(bundlePath, 'utf8')), {
    filename: bundlePath,
    cachedData,
  });
  const bundle = { exports: {} };
  script.runInThisContext()(
    bundle.exports,
    Module.createRequire(bundlePath),
    bundle,
    bundlePath,
    path.dirname(bundlePath),
  );
  if (cachedData === undefined || script.cachedDataRejected) {
    // At exit, so the cache also holds the functions this run compiled lazily.
    process.once('exit', () => {
      const partial = `${cachePath}.${process.pid}.partial`;
      try {
        writeFileSync(partial, script.createCachedData());
        renameSync(partial, cachePath);
      } catch {
        try {
          rmSync(partial, { force: true });
        } catch {}
      }
    });
  }
  return bundle.exports;
}

loadBundle().runCliProcess();
