// Step 7, SUBSCRIBE to the DPS response topic on the connection the connect step opened.
import { encodeSubscribe } from '../mqtt/codec.js';
import type { DiagnoseContext } from './context.js';
import type { StepOutcome } from './step.js';

const RESPONSE_TOPIC = '$dps/registrations/res/#';

export async function subscribeStep(context: DiagnoseContext): Promise<StepOutcome> {
  const probe = context.probe;
  if (probe === undefined) return { status: 'fail', summary: 'no MQTT connection to subscribe on' };
  try {
    probe.send(encodeSubscribe(1, [{ topic: RESPONSE_TOPIC, qos: 1 }]));
    const answer = await probe.next();
    if (answer.kind === 'packet' && answer.packet.type === 'suback') {
      const granted = answer.packet.granted[0];
      if (granted === undefined || granted === 0x80) {
        return {
          status: 'fail',
          summary: `DPS refused the subscription to ${RESPONSE_TOPIC} (SUBACK 0x80)`,
          causes: ['the server is not DPS, or it does not accept this topic'],
          hint: 'check --endpoint',
        };
      }
      return {
        status: 'ok',
        summary: `SUBACK: ${RESPONSE_TOPIC} granted at QoS ${granted}`,
        details: { grantedQos: granted },
      };
    }
    return {
      status: 'fail',
      summary:
        answer.kind === 'timeout'
          ? `no SUBACK within ${context.stepTimeoutMs} ms`
          : answer.kind === 'packet'
            ? `expected SUBACK, got ${answer.packet.type.toUpperCase()}`
            : `no SUBACK: ${'message' in answer ? answer.message : answer.kind}`,
      hint: 'check --endpoint: the server does not behave as DPS',
    };
  } finally {
    probe.close();
    context.probe = undefined;
  }
}
