// Runs `dps-mqtt diagnose` (or register) in-process with a captured CliIo, and checks output for secrets.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runDiagnose } from '../../src/cli/commands/diagnose.js';
import { runRegister } from '../../src/cli/commands/register.js';
import type { CliIo } from '../../src/cli/output.js';
import type { DiagnosisReport, StepResult } from '../../src/diagnose/types.js';
import { deriveDeviceKey } from '../../src/protocol/sas.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function captureIo(env: Record<string, string | undefined>): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    stderrIsTTY: false,
    env,
    signals: new EventEmitter() as unknown as CliIo['signals'],
  };
  return { io, out, err };
}

export async function runDiagnoseCli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliRun> {
  const { io, out, err } = captureIo(env);
  const code = await runDiagnose(args, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

export async function runRegisterCli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliRun> {
  const { io, out, err } = captureIo(env);
  const code = await runRegister(args, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

export type JsonReport = DiagnosisReport & { exitCode: number };

export function parseReport(stdout: string): JsonReport {
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, `--json prints one line:\n${stdout}`);
  return JSON.parse(lines[0] as string) as JsonReport;
}

/** The failing step of the (first) transport, which the test then asserts on. */
export function failedStepOf(report: JsonReport, transport = 0): StepResult {
  const diagnosis = report.transports[transport];
  assert.ok(diagnosis, 'a transport was diagnosed');
  const step = diagnosis.steps.find((result) => result.status === 'fail');
  assert.ok(step, `a step failed: ${JSON.stringify(diagnosis.steps)}`);
  return step;
}

/** Every text an explanation is made of: summary, causes and hint. */
export function wordsOf(step: StepResult): string {
  return [step.summary, ...(step.causes ?? []), step.hint ?? ''].join('\n');
}

/** No key, derived key, passphrase, proxy password or SAS signature in `text`. */
export function assertNoSecrets(text: string, secrets: readonly string[], registrationId?: string): void {
  for (const secret of secrets) {
    assert.ok(!text.includes(secret), `a secret leaked: ${secret.slice(0, 6)}...`);
    if (registrationId !== undefined && /^[A-Za-z0-9+/]+=*$/.test(secret)) {
      const derived = deriveDeviceKey(secret, registrationId);
      assert.ok(!text.includes(derived), 'a derived key leaked');
    }
  }
  assert.doesNotMatch(text, /sig=(?!<redacted>)[A-Za-z0-9%]/, 'a SAS signature leaked');
  assert.doesNotMatch(text, /PRIVATE KEY-----\n[A-Za-z0-9]/, 'a private key leaked');
}

export async function writeTemp(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}
