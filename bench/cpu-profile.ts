/**
 * BENCH_PROFILE=1: where a process's CPU time went, from the V8 CPU profile that `node --cpu-prof`
 * writes at exit (`.cpuprofile`: a tree of call frames, and samples naming the frame on the CPU).
 */

/** The parts of a `.cpuprofile` the summary reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a profile's samples fell: self time (ms) per source (a package, a file of ours, V8's own). */
export interface ProfileSummary {
  total_ms: number;
  /** Self time by source: `node_modules/<package>`, `src/<file>`, `node:<module>`, or V8's `(garbage collector)`, `(idle)`, `(program)`. */
  by_source_ms: Record<string, number>;
  /** The functions with the most self time, `name source:line`. */
  top_functions_ms: Record<string, number>;
}

/** The source a frame's url belongs to (see `ProfileSummary.by_source_ms`). */
export function sourceOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return `node_modules/${modules[1]}`;
  const ours = /\/(src|bench)\/(.+)$/.exec(url);
  if (ours) return `${ours[1]}/${ours[2]}`;
  return url.startsWith('node:') ? url : url.replace(/^file:\/\//, '');
}

/** Sums self time per source and per function over the samples of `profile`; the `top` largest of each. */
export function summarizeProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const bySource = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const frame = frames.get(id);
    if (!frame) return;
    total += us;
    const source = sourceOf(frame.url, frame.functionName);
    bySource.set(source, (bySource.get(source) ?? 0) + us);
    const name = `${frame.functionName || '(anonymous)'} ${source}:${frame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  });
  const largest = (map: Map<string, number>) =>
    Object.fromEntries(
      [...map.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([key, us]) => [key, Math.round(us / 1000)]),
    );
  return {
    total_ms: Math.round(total / 1000),
    by_source_ms: largest(bySource),
    top_functions_ms: largest(byFunction),
  };
}
