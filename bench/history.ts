// Which change moved which figure: what each speed change of issue 15 was measured to do when it was
// made. These are records, not this run's figures: each says how it was measured. The benchmark's own
// tables (above them in docs/benchmarks.md) are the current state.

export interface FigureChange {
  /** The change, as a reader of the code would look for it. */
  change: string;
  /** The figure it moved, and by how much. */
  effect: string;
  /** How that was measured. */
  measuredBy: string;
}

/** The ratios of the summary table before issue 15's speed work (docs/benchmarks.md of 2026-12-01, 07:04). */
export const BASELINE =
  'cold 0.68, cold RSS 0.75, warm 0.65, fleet 1.80 devices per CPU second, install 0.12';

const CALLGRIND_FLEET =
  'client instructions per registration under callgrind (a fleet of 300 minus one of 100, concurrency 20, both builds against one emulator in one run; callgrind counts instructions, which the load of a shared machine does not change)';

export const FIGURE_CHANGES: FigureChange[] = [
  {
    change:
      "The device's own WebSocket client (`src/io/websocket-handshake.ts`, `websocket-frames.ts`, `websocket-stream.ts`) instead of `ws` and Node's HTTP client; each turn's writes leave in one TLS record; no packet description is built with tracing off; no error object for a close we asked for",
    effect:
      'fleet: 10.86 M to 9.74 M instructions per registration (-10%); `ws` and `node:http` no longer load in a device process',
    measuredBy: CALLGRIND_FLEET,
  },
  {
    change:
      "The TLS session is set once, on the socket while TCP connects (`src/io/tls.ts`): `tls.connect({ session })` parses it twice, and parsing a session (its server certificate) is OpenSSL 3's slowest step of a resumed handshake",
    effect:
      'fleet: 9.74 M to 7.80 M instructions per registration (-20%); a bare resumed TLS connection 5.77 M to 4.51 M',
    measuredBy: `${CALLGRIND_FLEET}; the bare connection: tls.connect and end, 300 minus 100 connections`,
  },
  {
    change:
      "A remembered TLS 1.3 session leaves out the server's certificate (`src/io/tls-session-der.ts`): resuming decodes the session, and decoding that certificate's public key was 1.3 M instructions of every resumed handshake; a resumed handshake checks no certificate, and Node counts a resumed TLS 1.3 connection verified without it",
    effect: 'fleet: 8.13 M to 7.02 M instructions per registration (-14%)',
    measuredBy: CALLGRIND_FLEET,
  },
  {
    change:
      "A fleet's first handshake to an endpoint is made once (`planTlsSession` in `src/io/tls-session-cache.ts`): connections that start while it is under way wait for its session and resume it, instead of a full handshake each",
    effect:
      "fleet (1000 devices at concurrency 100, the fleet section's size): 7.36 G to 6.71 G client instructions in all (-9%): 99 of its first 100 connections resume",
    measuredBy:
      'client instructions under callgrind, the whole 1000-device run at concurrency 100 (start-up included), against one emulator',
  },
  {
    change:
      'Host name lookups shared for a second (`src/io/dns-cache.ts`); a poll after retry-after 0 leaves on the next tick, with the PUBACK of the answer that asked for it; the TLS socket no longer sets TCP_NODELAY a second time',
    effect:
      "fleet (1000 devices at concurrency 100): system calls per registration about 52 to 31 (getaddrinfo's hosts file and netlink socket, thread pool hand-offs: futex 7.0 to 1.6; writes 9 to 8); client instructions 6.71 G to 6.46 G (-4%)",
    measuredBy:
      '`strace -f -c` of the client process over the whole run, and its instructions under callgrind, against one emulator',
  },
  {
    change:
      'Shared trust contexts keyed by the `trustedCa` string itself (no kilobyte key string hashed per connection); client frames take their masking key straight from the random pool and mask four bytes a step',
    effect: 'fleet (1000 devices at concurrency 100): client instructions 6.46 G to 6.38 G (-1%)',
    measuredBy:
      'client instructions under callgrind, the whole 1000-device run at concurrency 100 (start-up included), against one emulator',
  },
  {
    change:
      'The TLS socket makes its own TCP connection (`tls.connect({ host, port, lookup })`, session set before it connects) instead of wrapping a net.Socket made first: one socket object per connection',
    effect:
      'fleet (1000 devices at concurrency 100): client instructions 6.38 G to 6.25 G (-2%); a bare resumed TLS connection 4.71 M to 4.56 M',
    measuredBy:
      'client instructions under callgrind, the whole 1000-device run at concurrency 100 (start-up included), against one emulator; the bare connection: 300 minus 100 connections to a local TLS server',
  },
  {
    change:
      "`$rid` is the transport's request counter, as in the C SDK, instead of a UUID per request (no UUID generation or formatting to run and to optimize); Nagle turned off once the TLS socket has connected (set earlier, Node set it again)",
    effect:
      'fleet (1000 devices at concurrency 100): client instructions 6.25 G to 6.02 G (-4%); the official SDK makes 23.80 G for the same run (3.95 times ours)',
    measuredBy:
      'client instructions under callgrind, the whole 1000-device run at concurrency 100 (start-up included), against one emulator',
  },
  {
    change:
      'The package is one esbuild bundle (`scripts/build.mjs`): first with code splitting (27 ES modules on the register path instead of 44), then one CommonJS file whose lazy parts keep their `require`s lazy',
    effect:
      'cold: 552 M to 527 M instructions and 53.6 MB to 50.0 MB peak RSS per `register` process (code splitting to one file; bare node 83 M, 38.5 MB); install 0.91 MB to 0.70 MB (only the public declarations ship)',
    measuredBy: 'one `dps-mqtt register` process under callgrind and /usr/bin/time, no NODE_EXTRA_CA_CERTS',
  },
  {
    change:
      "The bin is CommonJS (`dist/cli/main.cjs`, from `scripts/templates/cli-main.cjs`): a command-line run starts no ES module loader; it keeps a V8 code cache of the bundle (Node 20/21: a file next to the bundle, written by the first run; Node 22.1+: Node's own compile cache)",
    effect:
      'cold: ours / official 0.55 to 0.47 (the CommonJS bin about 20 ms on a slow day of the machine, the code cache about 10 ms more); peak RSS 0.68 to 0.66',
    measuredBy:
      '`npm run bench -- --only cold` before and after, and the three variants of the bin timed in turns (12 runs each)',
  },
  {
    change: 'Register: retry-after 0 polls on `setImmediate`, not on `setTimeout`, whose floor is 1 ms',
    effect: 'warm: ours / official 0.54 to 0.45 (median 7.91 ms to 4.71 ms on a slower day of the machine)',
    measuredBy: '`npm run bench -- --only warm` before and after',
  },
  {
    change:
      'Emulator: the answers to one incoming chunk leave in one write, a server WebSocket stream of its own, nothing logged or built when silent, operation ids from a pooled random block, whole-header decoding',
    effect:
      'emulator: 6.41 M to 6.14 M instructions per registration over WebSocket, 5.04 M to 4.87 M over TLS; 2 fewer writes per registration',
    measuredBy: 'emulator process under callgrind, 200 registrations after a warm-up',
  },
  {
    change:
      'Benchmark hygiene: NODE_EXTRA_CA_CERTS (this machine points it at the system bundle) is removed from every benchmark process',
    effect:
      'both clients: about 420 M instructions (about 45 ms) less per process, the same for each; bare `node -e 0` 507 M to 83 M instructions',
    measuredBy: 'one process of each under callgrind, with and without the variable',
  },
  {
    change:
      'Not ours to change, both clients pay it: Node builds its whole root certificate store (about 140 certificates) the first time a secure context gets a `ca`',
    effect: 'cold: about 22 ms and 224 M instructions of every process that trusts a CA of its own',
    measuredBy:
      '`tls.createSecureContext({ ca })` timed, and under callgrind, against `require("tls")` alone',
  },
];
