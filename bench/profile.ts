// Where the time goes: a V8 .cpuprofile reduced to self time per function and per origin (module loading,
// other Node internals, each npm package, our code, GC, idle).

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime {
  name: string;
  ms: number;
}

export interface CpuProfileSummary {
  /** From the profiler's start to its end (the process's life after bootstrap), ms. */
  durationMs: number;
  /** Sampled time not idle, ms. */
  busyMs: number;
  topFunctions: SelfTime[];
  byOrigin: SelfTime[];
}

/** Where a frame's code comes from, in words a reader can act on. */
function originOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(idle)') return 'idle (waiting on the network)';
    if (functionName === '(garbage collector)') return 'garbage collector';
    if (functionName === '(program)') return 'V8/native (program)';
    return `native: ${functionName}`;
  }
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (packageMatch) return `package ${packageMatch[1]}`;
  if (url.includes('/dist/')) return 'dps-mqtt (dist/)';
  if (url.includes('/bench/')) return 'benchmark script';
  if (/^node:internal\/(modules|bootstrap|deps\/cjs-module-lexer|source_map)/.test(url)) {
    return 'Node module loading (resolve, read, compile)';
  }
  if (url.startsWith('node:')) return 'Node core (net, tls, streams, ...)';
  return url;
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|dist)\//, '$1/');
}

export function summarizeCpuProfile(profile: CpuProfile, top = 12): CpuProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  let busyMs = 0;
  for (let index = 0; index < profile.samples.length; index += 1) {
    const node = nodes.get(profile.samples[index]!);
    if (node === undefined) continue;
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    const frame = node.callFrame;
    const origin = originOf(frame);
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + ms);
    if (frame.functionName === '(idle)') continue;
    busyMs += ms;
    const name =
      `${frame.functionName || '(anonymous)'} ${frame.url === '' ? '' : `${shortUrl(frame.url)}:${frame.lineNumber + 1}`}`.trim();
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
  }
  const sorted = (map: Map<string, number>, limit: number): SelfTime[] =>
    [...map]
      .map(([name, ms]) => ({ name, ms }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, limit);
  return {
    durationMs: (profile.endTime - profile.startTime) / 1000,
    busyMs,
    topFunctions: sorted(byFunction, top),
    byOrigin: sorted(byOrigin, 20),
  };
}
