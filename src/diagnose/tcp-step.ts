// Step 3, TCP: a connection to the endpoint, or to the proxy when one is used.
import { openTcp } from '../io/tcp.js';
import type { DiagnoseContext } from './context.js';
import { failureFrom, type StepOutcome } from './step.js';

export async function tcpStep(context: DiagnoseContext): Promise<StepOutcome> {
  const host = context.proxy?.host ?? context.host;
  const port = context.proxy?.port ?? context.port;
  const what = context.proxy === undefined ? 'the endpoint' : 'the proxy';
  try {
    const socket = await openTcp({ host, port, timeoutMs: context.stepTimeoutMs, signal: context.signal });
    const address = `${socket.remoteAddress ?? host}:${socket.remotePort ?? port}`;
    socket.destroy();
    return { status: 'ok', summary: `connected to ${what} at ${address}`, details: { address } };
  } catch (error) {
    const code = (error as { cause?: NodeJS.ErrnoException }).cause?.code;
    const causes =
      code === 'ECONNREFUSED'
        ? [
            `nothing listens on port ${port} of ${host}`,
            context.proxy === undefined
              ? `the port is not this transport's (${context.transport === 'mqtt' ? '8883 for --transport mqtt' : '443 for --transport mqtt-ws'})`
              : 'the proxy port is wrong',
          ]
        : [
            'a firewall drops the connection',
            context.transport === 'mqtt'
              ? 'port 8883 is often blocked: --transport mqtt-ws (443) usually gets through'
              : 'this network may only allow traffic through a proxy: set --proxy',
          ];
    return failureFrom(error, {
      causes,
      hint:
        context.proxy === undefined
          ? `check --endpoint: ${host}:${port}; try --transport both to see which transport gets through`
          : 'check --proxy or HTTPS_PROXY (host and port)',
    });
  }
}
