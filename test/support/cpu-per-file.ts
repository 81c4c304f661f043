import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject } from 'vitest';

/**
 * Issue #23 item 7: what each test file costs in CPU, for `vitest.cpu.config.ts` (a setup file of that
 * config only; `npm test` never loads it). Wall time is noise on the shared machine, so this counts
 * CPU-seconds (user + system) on Linux's /proc, in two parts:
 * - `worker`: the vitest worker's process, with the child processes it spawned and reaped (a
 *   `billhook start`, Chromium) — counted when they exit;
 * - `postgres`: the run's PostgreSQL (its postmaster, the backends running now and the ones it reaped).
 * The PostgreSQL part is the file's only when one file runs at a time: run it with `--maxWorkers=1`.
 * The file's imports happen before its `beforeAll` and are not counted (the worker imports billhook
 * once, for its first file). One JSON line a file goes to `CPU_PER_FILE_OUT`:
 * `{"file","worker","postgres","wall"}` (seconds). Without /proc (not Linux) nothing is written.
 */

/** Clock ticks a second of /proc's CPU times (USER_HZ: 100 on every Linux build that matters). */
const TICKS = 100;

/** A process's parent pid and its CPU (own and reaped children's), in seconds, or undefined once gone. */
function processCpu(pid: number | 'self'): { parent: number; seconds: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state, ppid, … utime at 14, cstime at 17.
    const fields = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    const [utime, stime, cutime, cstime] = [fields[11], fields[12], fields[13], fields[14]];
    return {
      parent: fields[1] ?? 0,
      seconds: ((utime ?? 0) + (stime ?? 0) + (cutime ?? 0) + (cstime ?? 0)) / TICKS,
    };
  } catch {
    return undefined;
  }
}

/** The CPU of `postmaster` and of its live children (its reaped ones are in its own figure), in seconds. */
function postgresCpu(postmaster: number): number {
  let seconds = processCpu(postmaster)?.seconds ?? 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = processCpu(Number(entry));
    if (child?.parent === postmaster) seconds += child.seconds;
  }
  return seconds;
}

/** The run's postmaster pid (its data directory's postmaster.pid), read once per worker. */
let postmasterPid: Promise<number> | undefined;
function postmaster(): Promise<number> {
  postmasterPid ??= (async () => {
    const client = new pg.Client(inject('postgresAdminUrl'));
    await client.connect();
    try {
      const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
      return Number(readFileSync(`${rows[0]?.data_directory}/postmaster.pid`, 'utf8').split('\n')[0]);
    } finally {
      await client.end();
    }
  })();
  return postmasterPid;
}

const out = process.env.CPU_PER_FILE_OUT;
let start: { worker: number; postgres: number; wall: number } | undefined;

beforeAll(async () => {
  start = undefined;
  const worker = processCpu('self');
  if (!out || !worker) return;
  start = { worker: worker.seconds, postgres: postgresCpu(await postmaster()), wall: performance.now() };
});

afterAll(async () => {
  if (!out || !start) return;
  // The file's backends end as its app stops; a moment lets the postmaster reap them (and count them).
  await new Promise((resolve) => setTimeout(resolve, 150));
  const round = (seconds: number) => Math.round(seconds * 100) / 100;
  const line = {
    file: expect.getState().testPath,
    worker: round((processCpu('self')?.seconds ?? 0) - start.worker),
    postgres: round(postgresCpu(await postmaster()) - start.postgres),
    wall: round((performance.now() - start.wall) / 1000),
  };
  appendFileSync(out, `${JSON.stringify(line)}\n`);
});
