// The few input checks the IO makes before it touches the network: a bad port or a URL in place of a host
// would otherwise surface as an obscure socket error.
import { isIP } from 'node:net';
import { InvalidInputError } from '../protocol/errors.js';
import { unbracket } from './host-port.js';

const FIELDS = {
  dps: { host: 'host', port: 'port', label: 'DPS' },
  proxy: { host: 'proxy.host', port: 'proxy.port', label: 'proxy' },
  target: { host: 'targetHost', port: 'targetPort', label: 'target' },
} as const;

export function checkEndpoint(which: keyof typeof FIELDS, host: unknown, port: unknown): void {
  const field = FIELDS[which];
  const valid =
    typeof host === 'string' &&
    host.trim() !== '' &&
    !/[\s/@]/.test(host) &&
    (!host.includes(':') || isIP(unbracket(host)) === 6);
  if (!valid) {
    throw new InvalidInputError(
      field.host,
      `${field.label} host ${JSON.stringify(host)} is invalid: give a host name or IP address, without scheme, port or path`,
    );
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new InvalidInputError(field.port, `${field.label} port ${String(port)} is invalid: use 1-65535`);
  }
}
