// Proxy selection: an explicit option wins; otherwise HTTPS_PROXY / https_proxy unless NO_PROXY
// matches the DPS host (curl's conventions: comma-separated, suffix match, `*` for all).
import type { ProxyOptions } from '../io/types.js';
import { InvalidInputError } from '../protocol/errors.js';

export function resolveProxy(
  option: string | ProxyOptions | false | undefined,
  targetHost: string,
  env: NodeJS.ProcessEnv = process.env,
): ProxyOptions | undefined {
  if (option === false) return undefined;
  if (typeof option === 'object') return option;
  if (typeof option === 'string') return parseProxyUrl(option, 'proxy');
  const fromEnv = env.HTTPS_PROXY || env.https_proxy;
  if (!fromEnv || isExcluded(targetHost, env.NO_PROXY ?? env.no_proxy ?? '')) return undefined;
  return parseProxyUrl(fromEnv, 'HTTPS_PROXY');
}

/** `http://[user[:password]@]host[:port]`; the password never appears in an error message. */
export function parseProxyUrl(text: string, field: string): ProxyOptions {
  let url: URL;
  try {
    url = new URL(text.includes('://') ? text : `http://${text}`);
  } catch {
    throw new InvalidInputError(
      field,
      `${field} is not a proxy URL: use http://host:port or http://user:password@host:port`,
    );
  }
  if (url.protocol !== 'http:') {
    throw new InvalidInputError(
      field,
      `${field} uses ${url.protocol.replace(':', '')}://; only http:// proxies (HTTP CONNECT) are supported`,
    );
  }
  const proxy: ProxyOptions = {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 80,
  };
  if (url.username) proxy.username = decodeURIComponent(url.username);
  if (url.password) proxy.password = decodeURIComponent(url.password);
  return proxy;
}

function isExcluded(host: string, noProxy: string): boolean {
  const target = host.toLowerCase();
  return noProxy
    .split(/[\s,]+/)
    .map((entry) => entry.trim().toLowerCase().replace(/:\d+$/, ''))
    .filter(Boolean)
    .some((entry) => {
      if (entry === '*') return true;
      const suffix = entry.replace(/^\*?\./, '');
      return target === suffix || target.endsWith(`.${suffix}`);
    });
}
