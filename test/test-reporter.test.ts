// `npm test` output stays readable (issue 10): in CI the summary reporter prints one line per test file
// and every failure in full, and a failure still fails the run.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const FIXTURES = 'test/fixtures/reporter';

function runWithReporter(files: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--test',
        '--test-reporter=./scripts/test-reporter.mjs',
        '--test-reporter-destination=stdout',
        ...files.map((file) => `${FIXTURES}/${file}`),
      ],
      // Without NODE_TEST_CONTEXT, which would make the inner runner report to this one instead.
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_TEST_CONTEXT: undefined } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('a passing run prints one line per file and the totals, and exits 0', async () => {
  const { code, stdout } = await runWithReporter(['passing.test.mjs']);
  assert.equal(code, 0, stdout);
  const lines = stdout.trim().split('\n').filter(Boolean);
  assert.match(
    lines[0]!,
    /^ok {3}test\/fixtures\/reporter\/passing\.test\.mjs {2}2 passed, 1 skipped {2}\d+\.\d s$/,
  );
  assert.match(lines.at(-1)!, /^passed: 2 passed, 1 skipped in 1 files \(0 failed\) in \d+\.\d s$/);
  assert.equal(lines.length, 2, stdout);
  assert.doesNotMatch(stdout, /chatter/, 'a passing file keeps its output to itself');
});

test('a failure is printed in full (test path, message, stack, output) and the run exits non-zero', async () => {
  const { code, stdout } = await runWithReporter(['passing.test.mjs', 'failing.test.mjs', 'broken.test.mjs']);
  assert.equal(code, 1, stdout);
  assert.match(stdout, /^ok {3}test\/fixtures\/reporter\/passing\.test\.mjs {2}2 passed, 1 skipped/m);
  assert.match(stdout, /^FAIL test\/fixtures\/reporter\/failing\.test\.mjs {2}1 passed, 1 failed/m);
  assert.match(stdout, /^ {2}✖ parser > reads the answer$/m);
  assert.match(stdout, /AssertionError \[ERR_ASSERTION\]: the answer is off by one/);
  assert.match(stdout, /actual: 42,\s+expected: 41/);
  assert.match(stdout, /at .*failing\.test\.mjs:9:12/, 'the stack points at the failing line');
  assert.match(stdout, /\| output printed because the file fails/);
  assert.match(stdout, /^FAIL test\/fixtures\/reporter\/broken\.test\.mjs {2}0 passed/m);
  assert.match(stdout, /Error: this fixture cannot even load/);
  assert.match(stdout, /^FAILED: 3 passed, 1 failed, 1 skipped in 3 files \(2 failed\) in \d+\.\d s$/m);
  assert.ok(stdout.split('\n').length < 80, 'no TAP noise');
});

test('run-tests.mjs selects the summary reporter in CI', () => {
  const runner = readFileSync('scripts/run-tests.mjs', 'utf8');
  assert.match(runner, /process\.env\.CI \? 'summary'/);
  assert.match(runner, /test-reporter\.mjs/);
});
