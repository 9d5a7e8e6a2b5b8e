// A node:test reporter for CI logs: one line per test file (passed, failed, skipped, duration), every
// failure in full (test path, message, diff, stack, and the file's own output), then the totals.
// scripts/run-tests.mjs selects it when CI is set (or TEST_REPORTER=summary); the exit code is the
// runner's, so a failing test still fails the run.
import { relative } from 'node:path';
import { inspect } from 'node:util';

const NO_DETAILS = new Set(['subtestsFailed', 'cancelledByParent']);

function newFile(name) {
  return {
    name,
    passed: 0,
    failed: 0,
    skipped: 0,
    todo: 0,
    durationMs: undefined,
    topLevelMs: 0,
    failures: [],
    output: [],
    stack: [],
    printed: false,
    fileFailed: false,
  };
}

function displayPath(file) {
  if (file === undefined) return '(no file)';
  const path = relative(process.cwd(), file);
  return path.startsWith('..') ? file : path;
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

function counts(record) {
  const parts = [`${record.passed} passed`];
  if (record.failed > 0) parts.push(`${record.failed} failed`);
  if (record.skipped > 0) parts.push(`${record.skipped} skipped`);
  if (record.todo > 0) parts.push(`${record.todo} todo`);
  return parts.join(', ');
}

function indent(text, prefix) {
  return text
    .replace(/\s+$/, '')
    .split('\n')
    .map((line) => `${prefix}${line}`)
    .join('\n');
}

/** The assertion or exception a failed test ended with, with its stack and diff, as text. */
export function describeError(error) {
  if (error === undefined || error === null) return 'failed (no error given)';
  const cause = error.code === 'ERR_TEST_FAILURE' && error.cause !== undefined ? error.cause : error;
  if (cause instanceof Error) return inspect(cause, { depth: 4, colors: false, breakLength: 100 });
  return typeof cause === 'string' ? cause : inspect(cause, { depth: 4, colors: false });
}

function isFileLevel(data) {
  // With several files each one is a test of its own, named after the file (absolute path).
  return data.nesting === 0 && data.file !== undefined && data.name === data.file;
}

export default async function* summaryReporter(source) {
  const files = new Map();
  const order = [];
  const startedAt = Date.now();
  const fileOf = (file) => {
    const key = file ?? '';
    let record = files.get(key);
    if (record === undefined) {
      record = newFile(displayPath(file));
      files.set(key, record);
      order.push(record);
    }
    return record;
  };

  const render = (record) => {
    record.printed = true;
    const failed = record.failed > 0 || record.fileFailed;
    const duration = seconds(record.durationMs ?? record.topLevelMs);
    let text = `${failed ? 'FAIL' : 'ok  '} ${record.name}  ${counts(record)}  ${duration}\n`;
    if (!failed) return text;
    for (const failure of record.failures)
      text += `  ✖ ${failure.path}\n${indent(failure.error, '      ')}\n`;
    if (record.fileFailed && record.failures.length === 0) {
      text += '  ✖ the file failed outside any test (see its output below)\n';
    }
    if (record.output.length > 0)
      text += `  output of ${record.name}:\n${indent(record.output.join(''), '  | ')}\n`;
    return text;
  };

  for await (const event of source) {
    const data = event.data ?? {};
    switch (event.type) {
      case 'test:start': {
        if (isFileLevel(data)) break;
        const record = fileOf(data.file);
        record.stack.length = data.nesting;
        record.stack.push(data.name);
        break;
      }
      case 'test:pass':
      case 'test:fail': {
        const record = fileOf(data.file);
        const details = data.details ?? {};
        if (isFileLevel(data)) {
          // Only a file without tests reports itself as passed or failed; see test:complete.
          record.durationMs ??= details.duration_ms;
          if (event.type === 'test:fail') record.fileFailed = true;
          if (!record.printed) yield render(record);
          break;
        }
        if (data.nesting === 0) record.topLevelMs += details.duration_ms ?? 0;
        if (details.type === 'suite') {
          // A suite fails when a test in it does (already counted), or when its own hooks fail.
          const failureType = details.error?.failureType;
          if (event.type === 'test:fail' && !NO_DETAILS.has(failureType)) {
            record.failed += 1;
            record.failures.push({
              path: [...record.stack.slice(0, data.nesting), data.name].join(' > '),
              error: describeError(details.error),
            });
          }
          break;
        }
        if (data.skip !== undefined && data.skip !== false) record.skipped += 1;
        else if (data.todo !== undefined && data.todo !== false) record.todo += 1;
        else if (event.type === 'test:pass') record.passed += 1;
        else {
          record.failed += 1;
          const failureType = details.error?.failureType;
          const path = [...record.stack.slice(0, data.nesting), data.name].join(' > ');
          record.failures.push({
            path,
            error:
              failureType === 'cancelledByParent'
                ? 'cancelled: its parent test or the file ended first'
                : describeError(details.error),
          });
        }
        break;
      }
      case 'test:complete':
        // A file's own completion follows the reports of all its tests: its summary line is due.
        if (isFileLevel(data)) {
          const record = fileOf(data.file);
          record.durationMs = data.details?.duration_ms;
          if (data.details?.passed === false) record.fileFailed = true;
          if (!record.printed) yield render(record);
        }
        break;
      case 'test:stdout':
      case 'test:stderr':
        if (data.file !== undefined) fileOf(data.file).output.push(data.message);
        break;
      case 'test:diagnostic':
        // The runner's own totals (nesting 0, no file) are replaced by ours below.
        if (data.file !== undefined) fileOf(data.file).output.push(`# ${data.message}\n`);
        break;
      default:
        break;
    }
  }

  let text = '';
  for (const record of order) if (!record.printed && record.name !== '(no file)') text += render(record);
  const total = { passed: 0, failed: 0, skipped: 0, todo: 0 };
  let failedFiles = 0;
  for (const record of order) {
    for (const key of Object.keys(total)) total[key] += record[key];
    if (record.failed > 0 || record.fileFailed) failedFiles += 1;
  }
  const fileCount = order.filter((record) => record.name !== '(no file)').length;
  text += `\n${failedFiles > 0 || total.failed > 0 ? 'FAILED' : 'passed'}: ${counts(total)} in ${fileCount} files (${failedFiles} failed) in ${seconds(Date.now() - startedAt)}\n`;
  yield text;
}
