/** What the bench reads about processes and the machine from Linux's /proc. */
import { readFileSync } from 'node:fs';

/** A process's peak (`VmHWM`) or current (`VmRSS`) resident set, MB. */
export function rssMb(pid: number | undefined, which: 'VmHWM' | 'VmRSS' = 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(new RegExp(`${which}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
}

/** Clock ticks a second in /proc (USER_HZ: 100 on every Linux the bench runs on). */
const TICKS_PER_SECOND = 100;

/** CPU seconds process `pid` has used so far (user + system), or undefined when it is gone. */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command's name (in parentheses, which may hold spaces): fields 3…; utime, stime are 14, 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** The machine's CPU time so far, in clock ticks: all of it, busy (not idle or waiting on I/O), and steal. */
export type CpuTicks = { total: number; busy: number; steal: number };

/** The machine's CPU time so far (see `CpuTicks`), or undefined off Linux. */
export function cpuTicks(): CpuTicks | undefined {
  try {
    // /proc/stat's first line: cpu user nice system idle iowait irq softirq steal guest guest_nice.
    const ticks = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1, 9)
      .map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    return { total, busy: total - (ticks[3] ?? 0) - (ticks[4] ?? 0) - (ticks[7] ?? 0), steal: ticks[7] ?? 0 };
  } catch {
    return undefined;
  }
}

/** Seconds of CPU (all cores) the machine spent busy between two `cpuTicks` readings. */
export function busyCpuSeconds(
  before: CpuTicks | undefined,
  after: CpuTicks | undefined,
): number | undefined {
  return before && after ? (after.busy - before.busy) / TICKS_PER_SECOND : undefined;
}
