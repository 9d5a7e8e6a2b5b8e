// What `dps-mqtt diagnose` prints: a checklist, one line per step as it settles (with its causes and
// hint under a failure), and a verdict; or, with --json, one object. Everything passes through redact().
import type { TransportKind } from '../client/types.js';
import type { DiagnosisReport, StepResult, StepStatus } from '../diagnose/types.js';
import { redact } from '../protocol/redact.js';
import { DIAGNOSE_EXIT_CODES } from './diagnose-exit-codes.js';

const MARKS: Record<StepStatus, string> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };
const TRANSPORT_NAMES: Record<TransportKind, string> = {
  'mqtt-ws': 'MQTT over WebSocket',
  mqtt: 'MQTT over TLS',
};

export function transportHeading(transport: TransportKind, endpoint: string): string {
  return `${endpoint} over ${TRANSPORT_NAMES[transport]} (--transport ${transport})\n`;
}

/** One step of the checklist: `  ✓ tcp          3 ms  connected to ...`, then causes and hint. */
export function formatStep(result: StepResult, secrets: readonly string[]): string {
  const time = result.status === 'skip' ? '' : `${result.durationMs} ms`;
  let text = `  ${MARKS[result.status]} ${result.step.padEnd(15)}${time.padStart(8)}  ${result.summary}\n`;
  if (result.causes !== undefined && result.causes.length > 0) {
    text += `      likely causes, most likely first:\n`;
    result.causes.forEach((cause, index) => {
      text += `        ${index + 1}. ${cause}\n`;
    });
  }
  if (result.hint !== undefined && result.status !== 'ok') text += `      what to do: ${result.hint}\n`;
  return redact(text, secrets);
}

export function exitCodeOf(report: DiagnosisReport): number {
  return report.failedStep === undefined ? 0 : DIAGNOSE_EXIT_CODES[report.failedStep];
}

/** The closing lines: which transports work from here, or where the path broke. */
export function formatVerdict(report: DiagnosisReport, secrets: readonly string[]): string {
  const lines: string[] = [''];
  if (report.transports.length > 1) {
    for (const transport of report.transports) {
      lines.push(
        transport.ok
          ? `${TRANSPORT_NAMES[transport.transport]} (${transport.endpoint}) works from here`
          : `${TRANSPORT_NAMES[transport.transport]} (${transport.endpoint}) fails at "${transport.failedStep}"`,
      );
    }
  }
  if (report.ok) lines.push('every check passed');
  else
    lines.push(
      `first failing step: ${report.failedStep} (exit code ${exitCodeOf(report)}; https://github.com/dps-mqtt/dps-mqtt/blob/main/docs/cli.md#troubleshooting-dps-mqtt-diagnose)`,
    );
  return redact(`${lines.join('\n')}\n`, secrets);
}

/** The --json object: the report and its exit code, redacted. */
export function formatJson(report: DiagnosisReport, secrets: readonly string[]): string {
  return `${redact(JSON.stringify({ ...report, exitCode: exitCodeOf(report) }), secrets)}\n`;
}
