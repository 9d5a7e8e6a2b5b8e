// Drives a transport provider through one registration the way a minimal upper layer would:
// register, poll when told "assigning", stop at the first outcome.
import type { MqttTransportHandle } from '../../src/transport/common.js';
import type {
  RegisterOptions,
  RegistrationOutcome,
  TransportProvider,
  TransportStatus,
} from '../../src/transport/types.js';

export function driveRegistration(
  provider: TransportProvider<MqttTransportHandle>,
  handle: MqttTransportHandle,
  register: RegisterOptions,
  statuses: TransportStatus[] = [],
): Promise<RegistrationOutcome> {
  return new Promise((resolve) => {
    provider.open(handle, {
      onRegistrationData: resolve,
      onStatus: (status) => {
        statuses.push(status);
        if (status.status === 'assigning') {
          setTimeout(() => {
            provider.getOperationStatus(handle);
            provider.doWork(handle);
          }, status.retryAfterMs);
        }
      },
    });
    provider.registerDevice(handle, register);
    provider.doWork(handle);
  });
}
