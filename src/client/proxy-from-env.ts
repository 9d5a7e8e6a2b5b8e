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
  return parseProxyUrl(fromEnv, env.HTTPS_PROXY ? 'HTTPS_PROXY' : 'https_proxy');
}

// The expected shape, worded so that redact() leaves it alone: a literal `scheme://user:password@`
// would itself be masked into nonsense.
const PROXY_URL_SHAPE =
  'expected http://host:port (for a proxy that needs credentials, put user:password@ before the host)';

/**
 * `http://[user[:password]@]host[:port]` (the scheme may be left out). Anything else is rejected before
 * any I/O, so that `http//host` does not end as a DNS lookup of "http". The given text is never echoed:
 * it may hold a password that a malformed URL hides from redaction.
 */
export function parseProxyUrl(text: string, field: string): ProxyOptions {
  const invalid = (reason: string): InvalidInputError =>
    new InvalidInputError(field, `${field} is not a valid proxy URL (${reason}): ${PROXY_URL_SHAPE}`);
  if (typeof text !== 'string' || text.trim() === '') throw invalid('it is empty');
  if (/\s/.test(text)) throw invalid('it contains white space');
  let url: URL;
  try {
    url = new URL(text.includes('://') ? text : `http://${text}`);
  } catch {
    throw invalid('it cannot be parsed');
  }
  if (url.protocol !== 'http:') {
    throw new InvalidInputError(
      field,
      `${field} uses ${url.protocol.replace(':', '')}://; only http:// proxies (HTTP CONNECT) are supported: ${PROXY_URL_SHAPE}`,
    );
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw invalid(
      text.includes('://')
        ? 'it has a path, query or fragment after host:port'
        : 'it has a path after the host: check the "://" after the scheme',
    );
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') throw invalid('it has no host');
  const port = url.port ? Number(url.port) : 80;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid('its port must be 1 to 65535');
  const proxy: ProxyOptions = { host, port };
  try {
    if (url.username) proxy.username = decodeURIComponent(url.username);
    if (url.password) proxy.password = decodeURIComponent(url.password);
  } catch {
    throw invalid('its user name or password is not valid percent-encoding');
  }
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
