import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Every transaction that may record an activity or post must join the ledger's writers before its
 * first row lock or write: in `src/` such transactions are units of work opened with `inUnitOfWork`
 * (ledger/unit-of-work.ts). A plain `db.transaction()` is allowed only where nothing is recorded or
 * posted, each listed here with why; a new one fails this test until it is either an
 * `inUnitOfWork` or added below with its reason.
 */
const PLAIN_TRANSACTIONS: Record<string, { count: number; why: string }> = {
  'src/ledger/unit-of-work.ts': { count: 1, why: 'inUnitOfWork itself (joins first)' },
  'src/activities/activities.ts': { count: 1, why: 'listActivities: a reader (quiesceLedgerWriters)' },
  'src/http/api/reads.ts': { count: 1, why: 'GET /v1/ledger/entries: a reader (quiesceLedgerWriters)' },
  'src/settlement/report.ts': {
    count: 1,
    why: 'the settlement report: a reader, one repeatable-read snapshot',
  },
  'src/billing/charge-schedule.ts': { count: 1, why: 'claimInvoicesDue: moves charge_at, records nothing' },
  'src/inbox/replay.ts': { count: 1, why: 'resets inbox rows and enqueues a job, records nothing' },
  'src/workers/dead-letters.ts': { count: 1, why: 'retry: deletes a dead letter and replays its inbox rows' },
  'src/auth/api-keys.ts': { count: 1, why: 'creates a chosen admin key under an advisory lock' },
  'src/outbound/dispatch.ts': {
    count: 2,
    why: 'the outbox: a reader of activities (quiesceLedgerWriters), then stores events, deliveries and jobs, records nothing',
  },
  'src/outbound/deliver.ts': { count: 1, why: 'redelivery: a delivery row and its job, records nothing' },
  'src/payments/poll.ts': {
    count: 1,
    why: "checkingAlone: holds a status check's advisory lock, writes nothing (the check writes in units of its own)",
  },
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('transactions that write are units of work (inUnitOfWork)', () => {
  it('uses a plain db.transaction() only where nothing is recorded or posted', () => {
    const root = join(import.meta.dirname, '../..');
    const found: Record<string, number> = {};
    for (const path of sources(join(root, 'src'))) {
      const count = readFileSync(path, 'utf8').match(/\.transaction\(\)/g)?.length ?? 0;
      if (count > 0) found[relative(root, path)] = count;
    }
    expect(found).toEqual(
      Object.fromEntries(Object.entries(PLAIN_TRANSACTIONS).map(([path, { count }]) => [path, count])),
    );
  });
});
