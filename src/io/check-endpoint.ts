// The few input checks the IO needs before it touches the network: a bad port or an empty host would
// otherwise surface as an obscure socket error.
import { InvalidInputError } from '../protocol/errors.js';

export function checkEndpoint(field: string, host: unknown, port: unknown): void {
  if (typeof host !== 'string' || host.trim() === '' || /[\s/]/.test(host)) {
    throw new InvalidInputError(
      `${field}.host`,
      `${field} host ${JSON.stringify(host)} is invalid: give a host name or IP address, without scheme, path or port`,
    );
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new InvalidInputError(`${field}.port`, `${field} port ${String(port)} is invalid: use 1-65535`);
  }
}
