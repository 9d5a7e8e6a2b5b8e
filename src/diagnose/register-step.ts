// Step 8 (with --register), a full registration through the library, as `register` would run it.
import { register } from '../client/register.js';
import type { ProvisioningClientOptions } from '../client/types.js';
import { hostPort } from '../io/host-port.js';
import type { DiagnoseContext } from './context.js';
import { failureFrom, type StepOutcome } from './step.js';

export async function registerStep(context: DiagnoseContext): Promise<StepOutcome> {
  const { options } = context;
  const clientOptions: ProvisioningClientOptions = {
    idScope: context.idScope,
    registrationId: context.registrationId,
    security: options.security,
    endpoint: hostPort(context.host, context.port),
    transport: context.transport,
    apiVersion: context.apiVersion,
    proxy: context.proxy ?? false,
    trustMode: context.trustMode,
    // A registration polls and may be throttled: more time than one exchange.
    timeoutMs: context.stepTimeoutMs * 3,
    ...(context.trustedCa === undefined ? {} : { trustedCa: context.trustedCa }),
    ...(context.insecure ? { insecureSkipVerify: true } : {}),
    ...(options.payload === undefined ? {} : { payload: options.payload }),
  };
  try {
    const result = await register(
      clientOptions,
      context.signal === undefined ? {} : { signal: context.signal },
    );
    return {
      status: 'ok',
      summary: `assigned to ${result.assignedHub} as ${result.deviceId} in ${result.timings.totalMs} ms`,
      details: {
        assignedHub: result.assignedHub,
        deviceId: result.deviceId,
        status: result.status,
        operationId: result.operationId,
      },
    };
  } catch (error) {
    return failureFrom(error);
  }
}
