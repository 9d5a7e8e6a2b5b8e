// diagnose(): walks the path from this machine to DPS one step at a time, per transport, and stops at
// the first step that fails, with what it saw and what to do (docs/cli.md, "Troubleshooting").
import type { TransportKind } from '../client/types.js';
import { hostPort } from '../io/host-port.js';
import { clockStep } from './clock-step.js';
import { connectStep } from './connect-step.js';
import type { DiagnoseContext } from './context.js';
import { dnsStep } from './dns-step.js';
import { DEFAULT_DIAGNOSE_ENDPOINT, inputStep, transportsOf } from './input-step.js';
import { proxyStep } from './proxy-step.js';
import { registerStep } from './register-step.js';
import { type StepOutcome, skipped, timedStep } from './step.js';
import { subscribeStep } from './subscribe-step.js';
import { tcpStep } from './tcp-step.js';
import { tlsInspectionStep } from './tls-inspection-step.js';
import { tlsStep } from './tls-step.js';
import type { DiagnoseOptions, DiagnosisReport, StepName, StepResult, TransportDiagnosis } from './types.js';
import { webSocketStep } from './websocket-step.js';

type StepRunner = [StepName, (context: DiagnoseContext) => StepOutcome | Promise<StepOutcome>];

const NETWORK_STEPS: StepRunner[] = [
  ['dns', dnsStep],
  ['tcp', tcpStep],
  ['proxy', proxyStep],
  ['tls', tlsStep],
  ['tls-inspection', tlsInspectionStep],
  ['websocket', webSocketStep],
  ['clock', (context) => clockStep(context)],
  ['connect', connectStep],
  ['subscribe', subscribeStep],
  ['register', registerStep],
];

export async function diagnose(options: DiagnoseOptions): Promise<DiagnosisReport> {
  const input = inputStep(options);
  if (input.result.status === 'fail' || input.contexts.length === 0) {
    const transports = safeTransports(options).map(
      (transport): TransportDiagnosis => ({
        transport,
        endpoint: options.endpoint ?? DEFAULT_DIAGNOSE_ENDPOINT,
        ok: false,
        failedStep: 'input',
        steps: [input.result],
      }),
    );
    for (const transport of transports)
      options.onStep?.(transport.transport, input.result, transport.endpoint);
    return { ok: false, failedStep: 'input', working: [], transports };
  }
  const transports: TransportDiagnosis[] = [];
  for (const context of input.contexts) {
    transports.push(await diagnoseTransport(context, input.result));
  }
  const failed = transports.find((transport) => !transport.ok);
  return {
    ok: failed === undefined,
    ...(failed?.failedStep === undefined ? {} : { failedStep: failed.failedStep }),
    working: transports.filter((transport) => transport.ok).map((transport) => transport.transport),
    transports,
  };
}

async function diagnoseTransport(context: DiagnoseContext, input: StepResult): Promise<TransportDiagnosis> {
  const endpoint = hostPort(context.host, context.port);
  const report = (result: StepResult): void => context.options.onStep?.(context.transport, result, endpoint);
  const steps: StepResult[] = [input];
  report(input);
  let failedStep: StepName | undefined;
  try {
    for (const [name, run] of NETWORK_STEPS) {
      const result = notApplicable(name, context) ?? (await timedStep(name, () => run(context)));
      steps.push(result);
      report(result);
      if (result.status === 'fail') {
        failedStep = name;
        break;
      }
    }
  } finally {
    context.probe?.close();
  }
  return {
    transport: context.transport,
    endpoint,
    ok: failedStep === undefined,
    ...(failedStep === undefined ? {} : { failedStep }),
    steps,
  };
}

function notApplicable(name: StepName, context: DiagnoseContext): StepResult | undefined {
  if (name === 'websocket' && context.transport === 'mqtt') {
    return skipped(name, 'MQTT over TLS has no WebSocket upgrade');
  }
  if (name === 'register' && context.options.register !== true) {
    return skipped(name, 'not asked for (--register runs a full registration)');
  }
  return undefined;
}

function safeTransports(options: DiagnoseOptions): TransportKind[] {
  try {
    return transportsOf(options).filter((kind) => kind === 'mqtt' || kind === 'mqtt-ws');
  } catch {
    return ['mqtt-ws'];
  }
}
