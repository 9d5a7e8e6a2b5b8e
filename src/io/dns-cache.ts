// Host name lookups shared for a moment. Every connection used to resolve the endpoint again: Node's
// dns.lookup is getaddrinfo on the libuv thread pool, and for one name that is about fifteen system calls
// (the hosts file, a netlink socket for the address configuration) and two thread hand-offs. A fleet makes
// hundreds of connections a second to one name. So a lookup is shared by the connections that ask for
// the same name within DNS_REUSE_MS of it (and by those that ask while it runs); a failed lookup is never
// kept, and a connection that fails forgets the name's addresses, so a moved endpoint costs at most one
// failed attempt, which the client's retry then resolves afresh.
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';

/** How long one lookup's addresses serve further connections to the same name. */
export const DNS_REUSE_MS = 1000;
/** Names remembered at most; all are forgotten when a new one would exceed it. */
const MAX_NAMES = 64;

type Waiter = (error: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void;

interface Entry {
  startedAt: number;
  addresses: dns.LookupAddress[] | undefined;
  waiters: Waiter[];
}

const entries = new Map<string, Entry>();

/** A `lookup` for net.connect that shares one dns.lookup per name, family and hints for DNS_REUSE_MS. */
export const sharedLookup: LookupFunction = (hostname, options, callback) => {
  const family = familyOf(options.family);
  const hints = options.hints ?? 0;
  const key = `${hostname}\n${family}\n${hints}`;
  const deliver: Waiter = (error, addresses) => {
    if (error !== null) callback(error, '', 0);
    else if (options.all === true) callback(null, addresses.slice());
    else {
      const [first] = addresses;
      if (first === undefined) callback(noAddressError(hostname), '', 0);
      else callback(null, first.address, first.family);
    }
  };
  const now = Date.now();
  const entry = entries.get(key);
  if (entry !== undefined) {
    const age = now - entry.startedAt;
    if (entry.addresses === undefined) {
      entry.waiters.push(deliver);
      return;
    }
    if (age >= 0 && age < DNS_REUSE_MS) {
      deliver(null, entry.addresses);
      return;
    }
  }
  const fresh: Entry = { startedAt: now, addresses: undefined, waiters: [deliver] };
  if (entries.size >= MAX_NAMES && !entries.has(key)) entries.clear();
  entries.set(key, fresh);
  dns.lookup(hostname, { family, hints, all: true }, (error, addresses) => {
    const waiters = fresh.waiters;
    fresh.waiters = [];
    if (error === null) fresh.addresses = addresses;
    else if (entries.get(key) === fresh) entries.delete(key); // a failure is not kept
    for (const waiter of waiters) waiter(error, addresses ?? []);
  });
};

/** Forgets the addresses of `hostname` (a connection to them failed): the next connection looks it up. */
export function forgetLookup(hostname: string): void {
  for (const [key, entry] of entries) {
    if (key.startsWith(`${hostname}\n`) && entry.addresses !== undefined) entries.delete(key);
  }
}

function familyOf(family: number | string | undefined): 0 | 4 | 6 {
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

function noAddressError(hostname: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
  error.code = 'ENOTFOUND';
  error.syscall = 'getaddrinfo';
  return error;
}
