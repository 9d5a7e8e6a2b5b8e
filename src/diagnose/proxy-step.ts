// Step 3b, the proxy: the CONNECT request and the proxy's answer (407 explained).
import { openProxyTunnel } from '../io/proxy-tunnel.js';
import type { DiagnoseContext } from './context.js';
import { failureFrom, type StepOutcome } from './step.js';

export async function proxyStep(context: DiagnoseContext): Promise<StepOutcome> {
  const proxy = context.proxy;
  if (proxy === undefined) {
    return {
      status: 'skip',
      summary: 'no proxy (neither --proxy nor HTTPS_PROXY, or NO_PROXY matches the endpoint)',
    };
  }
  const target = `${context.host}:${context.port}`;
  try {
    const socket = await openProxyTunnel({
      proxy,
      targetHost: context.host,
      targetPort: context.port,
      timeoutMs: context.stepTimeoutMs,
      signal: context.signal,
    });
    socket.destroy();
    return {
      status: 'ok',
      summary: `proxy ${proxy.host}:${proxy.port} opened a tunnel to ${target} (CONNECT answered 2xx)`,
    };
  } catch (error) {
    const statusCode = (error as { statusCode?: unknown }).statusCode;
    const details = typeof statusCode === 'number' ? { statusCode } : undefined;
    let causes: string[];
    let hint: string;
    if (statusCode === 407) {
      causes =
        proxy.username === undefined
          ? ['the proxy requires authentication (407 Proxy Authentication Required) and none was given']
          : [
              'the proxy refused the user name or password (407 Proxy Authentication Required)',
              'the proxy wants another scheme than Basic (NTLM, Kerberos): run a local forwarding proxy that speaks it',
            ];
      hint = 'give the proxy credentials in the URL: --proxy http://USER:PASSWORD@host:port (or HTTPS_PROXY)';
    } else if (statusCode === 403 || statusCode === 405) {
      causes = [
        `the proxy's policy does not allow tunnels to ${target}`,
        'some proxies only tunnel to port 443: MQTT over TLS on 8883 is then refused',
      ];
      hint = `ask for an exemption for ${context.host} (port ${context.port}), or try --transport mqtt-ws on port 443`;
    } else if (typeof statusCode === 'number') {
      causes = [`the proxy answered ${statusCode}: it could not or would not reach ${target}`];
      hint = 'check the endpoint host name, and that the proxy can reach it';
    } else {
      causes = [
        'the proxy is not reachable, or it is not an HTTP proxy (SOCKS, or HTTPS to the proxy itself)',
      ];
      hint = 'check --proxy or HTTPS_PROXY; bypass it with --no-proxy to compare';
    }
    return failureFrom(error, { causes, hint, ...(details === undefined ? {} : { details }) });
  }
}
