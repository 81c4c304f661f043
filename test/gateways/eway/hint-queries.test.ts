import { describe, expect, it } from 'vitest';
import { HintQueries, HintQueryBusy } from '../../../src/gateways/eway/hint-queries.ts';

/** A clock the test moves by hand (milliseconds). */
function clock(start = 1_000_000) {
  const time = { now: start };
  return { time, now: () => time.now };
}

describe('HintQueries (issue #22 item 2: what hints may cost eWAY)', () => {
  it('asks about one key at most once a minute: later callers get the same answer, or the same failure', async () => {
    const { time, now } = clock();
    const queries = new HintQueries(100, 60_000, now);
    let calls = 0;
    const ask = () => queries.run('transaction:1', async () => ++calls);
    expect(await Promise.all([ask(), ask(), ask()])).toEqual([1, 1, 1]);
    time.now += 59_999;
    expect(await ask()).toBe(1);
    time.now += 1;
    expect(await ask()).toBe(2);

    let failures = 0;
    const failing = () =>
      queries.run('transaction:2', async () => {
        failures += 1;
        throw new Error('eWAY Transaction Query answered HTTP 503');
      });
    await expect(failing()).rejects.toThrow(/503/);
    time.now += 30_000;
    await expect(failing()).rejects.toThrow(/503/);
    expect(failures).toBe(1);
  });

  it('sends at most `perSecond` new queries a second; the rest are refused with HintQueryBusy without a call', async () => {
    const { time, now } = clock(5_000_000);
    const queries = new HintQueries(3, 60_000, now);
    let calls = 0;
    const ask = (key: string) => queries.run(key, async () => ++calls);
    const first = await Promise.allSettled(['a', 'b', 'c', 'd', 'e'].map(ask));
    expect(first.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
    ]);
    expect((first[3] as PromiseRejectedResult).reason).toBeInstanceOf(HintQueryBusy);
    expect(calls).toBe(3);
    // A key answered this minute costs nothing, even over the cap.
    expect(await ask('a')).toBe(1);
    time.now += 1000;
    expect(await ask('d')).toBe(4);
    expect(calls).toBe(4);
  });
});
