// Step 2, name resolution: the addresses of the endpoint and of the proxy, as this machine resolves them.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { DiagnoseContext } from './context.js';
import type { StepOutcome } from './step.js';

async function resolve(host: string, timeoutMs: number): Promise<string[]> {
  if (isIP(host) !== 0) return [host];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('no answer'), { code: 'ETIMEOUT' })), timeoutMs);
  });
  try {
    const answers = await Promise.race([lookup(host, { all: true }), timeout]);
    return answers.map((answer) => answer.address);
  } finally {
    clearTimeout(timer);
  }
}

export async function dnsStep(context: DiagnoseContext): Promise<StepOutcome> {
  const names = [context.host, ...(context.proxy === undefined ? [] : [context.proxy.host])];
  if (names.every((name) => isIP(name) !== 0)) {
    return {
      status: 'ok',
      summary: `${names.join(' and ')}: IP address${names.length > 1 ? 'es' : ''}, nothing to resolve`,
    };
  }
  const found: Record<string, string[]> = {};
  const failures: string[] = [];
  for (const name of names) {
    try {
      found[name] = await resolve(name, context.stepTimeoutMs);
    } catch (error) {
      failures.push(`${name}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }
  const summary = Object.entries(found)
    .map(([name, addresses]) => `${name} -> ${addresses.join(', ')}`)
    .join('; ');
  if (failures.length === 0) return { status: 'ok', summary, details: { addresses: found } };
  const proxyFailed = context.proxy !== undefined && found[context.proxy.host] === undefined;
  if (context.proxy !== undefined && !proxyFailed) {
    // Through a proxy, the proxy resolves the DPS host: a local failure is normal on locked-down networks.
    return {
      status: 'ok',
      summary: `${summary}; ${failures.join('; ')} (the proxy resolves it)`,
      details: { addresses: found },
    };
  }
  return {
    status: 'fail',
    summary: `could not resolve ${failures.join('; ')}`,
    details: { addresses: found },
    causes: [
      proxyFailed ? 'the proxy host name is misspelt' : 'the endpoint host name is misspelt',
      'DNS is not reachable from here, or this network only resolves names through a proxy',
    ],
    hint: proxyFailed
      ? 'check the host in --proxy or HTTPS_PROXY'
      : 'check --endpoint (the global endpoint is global.azure-devices-provisioning.net); behind a proxy, set --proxy',
  };
}
