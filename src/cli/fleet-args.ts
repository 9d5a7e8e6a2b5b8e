// `dps-mqtt fleet` flags (and environment) → registerFleet() options. Every mistake is a UsageError that
// names the flag, before a file is written or a device is started (exit code 2).

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseDeviceFile } from '../fleet/device-file.js';
import { checkDeviceSource } from '../fleet/device-source.js';
import { MAX_FLEET_CONCURRENCY, MAX_FLEET_WORKERS } from '../fleet/fleet-options.js';
import { GroupCaIssuer } from '../fleet/group-ca-issuer.js';
import { parseShard } from '../fleet/shard.js';
import type { FleetOptions } from '../fleet/types.js';
import { validateIdScope, validateSymmetricKey } from '../protocol/validate.js';
import {
  CONNECTION_FLAG_OPTIONS,
  checked,
  ENV,
  type Env,
  parseConnectionFlags,
  parseFlags,
  parseTimeout,
  type ReadText,
  readFlagFile,
  UsageError,
} from './args.js';

export const FLEET_FLAGS = {
  'id-scope': { type: 'string' },
  count: { type: 'string' },
  prefix: { type: 'string' },
  start: { type: 'string' },
  'group-key': { type: 'string' },
  'issue-certs': { type: 'boolean' },
  'group-ca-cert': { type: 'string' },
  'group-ca-key': { type: 'string' },
  passphrase: { type: 'string' },
  devices: { type: 'string' },
  ...CONNECTION_FLAG_OPTIONS,
  pipeline: { type: 'boolean' },
  timeout: { type: 'string' },
  concurrency: { type: 'string' },
  rate: { type: 'string' },
  workers: { type: 'string' },
  shard: { type: 'string' },
  out: { type: 'string' },
  'include-keys': { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const DEFAULT_FLEET_PREFIX = 'device-';

export interface FleetInvocation {
  /** Everything registerFleet() takes, but the signal. */
  options: FleetOptions;
  /** `--out FILE`, or `-` for stdout; undefined: no results file. */
  out: string | undefined;
  json: boolean;
  quiet: boolean;
  /** Values to scrub from anything printed: the group key, passphrase, proxy password. */
  secrets: string[];
}

function wholeNumber(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(
      `${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(text)}`,
      flag,
    );
  }
  return value;
}

/** `50`, `50/s` or `3000/min`: registrations started per second. */
export function parseRate(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|second|m|min|minute))?\s*$/.exec(text);
  const amount = Number(match?.[1]);
  if (!match || !(amount > 0)) {
    throw new UsageError(
      `--rate must be registrations per second above 0, e.g. 50, 50/s or 3000/min, not ${JSON.stringify(text)}`,
      '--rate',
    );
  }
  return match[2]?.startsWith('m') ? amount / 60 : amount;
}

/** `dps-mqtt fleet` flags → an invocation; 'help' for --help. */
export function parseFleetArgs(
  argv: string[],
  env: Env = process.env,
  readText: ReadText = (path) => readFileSync(path, 'utf8'),
): FleetInvocation | 'help' {
  const flags = parseFlags(argv, FLEET_FLAGS);
  if (flags.help) return 'help';
  const secrets: string[] = [];

  const idScopeText = flags['id-scope'] ?? env[ENV.idScope];
  if (idScopeText === undefined || idScopeText === '') {
    throw new UsageError(`--id-scope is required (or set ${ENV.idScope})`, '--id-scope');
  }
  const idScope = checked('--id-scope', () => validateIdScope(idScopeText));

  const groupKeyText = flags['group-key'] ?? (env[ENV.groupKey] || undefined);
  const groupKey =
    groupKeyText === undefined
      ? undefined
      : checked('--group-key', () => validateSymmetricKey(groupKeyText, 'group key'));
  if (groupKey !== undefined) secrets.push(groupKey);
  const passphrase = flags.passphrase ?? (env[ENV.passphrase] || undefined);
  if (passphrase !== undefined) secrets.push(passphrase);

  let devices: FleetOptions['devices'];
  if (flags.count !== undefined && flags.devices !== undefined) {
    throw new UsageError(
      '--count and --devices cannot be used together: give a count or a file',
      '--devices',
    );
  }
  const countOnly = ['prefix', 'start', 'issue-certs'] as const;
  if (flags.devices !== undefined) {
    for (const flag of countOnly) {
      if (flags[flag] !== undefined)
        throw new UsageError(`--${flag} goes with --count, not --devices`, `--${flag}`);
    }
    const path = flags.devices;
    const text = readFlagFile('--devices', path, readText);
    const list = checked('--devices', () => parseDeviceFile(text, path));
    for (const entry of list) {
      if (entry.symmetricKey !== undefined) secrets.push(entry.symmetricKey);
      if (entry.passphrase !== undefined) secrets.push(entry.passphrase);
    }
    devices = groupKey === undefined ? { devices: list } : { devices: list, groupKey };
    const listed = devices;
    checked('--devices', () => checkDeviceSource(listed));
  } else if (flags.count !== undefined) {
    const count = wholeNumber('--count', flags.count, 1, Number.MAX_SAFE_INTEGER);
    const prefix = flags.prefix ?? DEFAULT_FLEET_PREFIX;
    const start =
      flags.start === undefined ? 0 : wholeNumber('--start', flags.start, 0, Number.MAX_SAFE_INTEGER);
    if (flags['issue-certs']) {
      if (flags['group-key'] !== undefined) {
        throw new UsageError(
          '--group-key and --issue-certs cannot be used together: pick one attestation',
          '--issue-certs',
        );
      }
      const certificatePath = flags['group-ca-cert'];
      const keyPath = flags['group-ca-key'];
      if (certificatePath === undefined || keyPath === undefined) {
        throw new UsageError(
          "--issue-certs needs --group-ca-cert FILE and --group-ca-key FILE: the X.509 enrollment group's CA, which signs each device certificate",
          certificatePath === undefined ? '--group-ca-cert' : '--group-ca-key',
        );
      }
      const certificate = readFlagFile('--group-ca-cert', certificatePath, readText);
      const privateKey = readFlagFile('--group-ca-key', keyPath, readText);
      if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
        throw new UsageError(
          `--group-ca-key: ${JSON.stringify(keyPath)} is not a PEM private key`,
          '--group-ca-key',
        );
      }
      secrets.push(privateKey);
      const groupCa = { certificate, privateKey, ...(passphrase === undefined ? {} : { passphrase }) };
      // A CA that cannot sign (not a CA, a key of another certificate) is bad input, found before any file is written.
      checked('--group-ca-key', () => new GroupCaIssuer(groupCa));
      devices = {
        count,
        prefix,
        start,
        groupCa,
      };
    } else {
      if (groupKey === undefined) {
        throw new UsageError(
          `--count needs --group-key (keys derived per device; or set ${ENV.groupKey}) or --issue-certs with --group-ca-cert and --group-ca-key`,
          '--group-key',
        );
      }
      devices = { count, prefix, start, groupKey };
    }
  } else {
    throw new UsageError('give --count N (with --group-key or --issue-certs) or --devices FILE', '--count');
  }
  for (const flag of ['group-ca-cert', 'group-ca-key'] as const) {
    if (flags[flag] !== undefined && !flags['issue-certs']) {
      throw new UsageError(`--${flag} goes with --issue-certs`, `--${flag}`);
    }
  }

  const options: FleetOptions = { idScope, devices };
  Object.assign(options, parseConnectionFlags(flags, env, readText, secrets));
  if (flags.pipeline) options.pipeline = true;
  if (flags.timeout !== undefined) options.timeoutMs = parseTimeout(flags.timeout);
  if (flags.concurrency !== undefined) {
    options.concurrency = wholeNumber('--concurrency', flags.concurrency, 1, MAX_FLEET_CONCURRENCY);
  }
  if (flags.rate !== undefined) options.rate = parseRate(flags.rate);
  options.workers =
    flags.workers === undefined
      ? availableParallelism()
      : wholeNumber('--workers', flags.workers, 0, MAX_FLEET_WORKERS);
  if (flags.shard !== undefined) {
    const shard = flags.shard;
    options.shard = checked('--shard', () => parseShard(shard));
  }
  if (flags.out === '-' && flags.json) {
    throw new UsageError(
      '--out - (results on stdout) and --json (summary on stdout) cannot be used together',
      '--json',
    );
  }
  if (flags['include-keys']) {
    if (flags.out === undefined) {
      throw new UsageError(
        '--include-keys needs --out FILE: the keys go into the results file only',
        '--include-keys',
      );
    }
    options.includeKeys = true;
  }
  return {
    options,
    out: flags.out,
    json: flags.json ?? false,
    quiet: flags.quiet ?? false,
    secrets,
  };
}
