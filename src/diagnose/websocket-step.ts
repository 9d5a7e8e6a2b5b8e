// Step 5, the WebSocket upgrade (MQTT over WebSocket only): its status, the subprotocol, and the
// server's Date header, which the clock step compares with this machine's clock.
import { openWebSocket, type UpgradeResponse } from '../io/websocket.js';
import { type DiagnoseContext, ioOptions } from './context.js';
import { failureFrom, type StepOutcome } from './step.js';

export async function webSocketStep(context: DiagnoseContext): Promise<StepOutcome> {
  let response: UpgradeResponse | undefined;
  try {
    const stream = await openWebSocket({
      ...ioOptions(context),
      onUpgradeResponse: (answer) => {
        response = answer;
      },
    });
    stream.destroy();
  } catch (error) {
    if (response?.headers.date !== undefined) context.serverDate = response.headers.date;
    const reason = (error as { reason?: unknown }).reason;
    const causes =
      reason === 'wrong-transport'
        ? [
            'the port speaks MQTT over TLS (8883): it does not answer HTTP',
            'a firewall or load balancer closes WebSocket upgrades',
          ]
        : response === undefined
          ? undefined
          : [
              `the server answered ${response.statusCode} ${response.statusMessage}: it does not serve MQTT over WebSocket at /$iothub/websocket`,
            ];
    return failureFrom(error, {
      ...(causes === undefined ? {} : { causes }),
      ...(response === undefined ? {} : { details: { statusCode: response.statusCode } }),
    });
  }
  const date = response?.headers.date;
  if (date !== undefined) context.serverDate = date;
  const protocol = response?.headers['sec-websocket-protocol'];
  return {
    status: 'ok',
    summary: `${response?.statusCode ?? 101} ${response?.statusMessage ?? 'Switching Protocols'}, subprotocol "${protocol ?? 'mqtt'}"${date === undefined ? ', no Date header' : `, server Date ${date}`}`,
    details: {
      statusCode: response?.statusCode ?? 101,
      subprotocol: String(protocol ?? 'mqtt'),
      ...(date === undefined ? {} : { serverDate: date }),
    },
  };
}
