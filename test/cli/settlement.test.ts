import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { cli } from '../support/cli.ts';

/**
 * `billhook settlement import` and `sync` (PRODUCT.md §13): a file recorded once whatever how often it
 * is imported, a refused file named row by row, and a sync with no gateway that can be asked.
 */
describe('billhook settlement', () => {
  let app: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    app = await startTestApp();
    env = { DATABASE_URL: app.config.DATABASE_URL!, LOG_LEVEL: 'silent' };
  });
  afterAll(() => app?.stop());

  const file = (name: string, text: string) => {
    const at = path.join(mkdtempSync(path.join(tmpdir(), 'billhook-settlement-')), name);
    writeFileSync(at, text);
    return at;
  };

  it('import records a payout and its unmatched line once; the same file again records nothing', async () => {
    const report = file(
      'nov.csv',
      'payout_id,payout_date,line_id,kind,gateway_transaction_id,currency,gross,fee,net,occurred_at\n' +
        'SP-CLI-1,2026-11-03,L1,charge,txn_unknown,AUD,100.00,1.75,98.25,2026-11-02T09:15:00Z\n',
    );
    const args = ['settlement', 'import', report, '--gateway', 'securepay', '--format', 'securepay'];
    const first = await cli(args, env);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      /1 payout\(s\) and 1 line\(s\) read; 1 payout\(s\) and 0 line\(s\) new; 1 line\(s\) unmatched/,
    );
    const again = await cli(args, env);
    expect(again.stdout).toMatch(/0 payout\(s\) and 0 line\(s\) new/);
    const payouts = await app.runtime.db
      .selectFrom('payouts')
      .selectAll()
      .where('gateway_payout_id', '=', 'SP-CLI-1')
      .execute();
    expect(payouts).toMatchObject([
      { gateway: 'securepay', status: 'paid', amount: 9_825n, lines_known: true },
    ]);
    const exceptions = await app.runtime.db
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('payout_id', '=', payouts[0]!.id)
      .execute();
    expect(exceptions).toEqual([{ kind: 'settlement_line_unmatched' }]);
  });

  it('import refuses a file naming the row and column, and records nothing', async () => {
    const report = file(
      'bad.csv',
      'payout_id,payout_date,line_id,kind,currency,gross,fee,net,occurred_at\nSP-CLI-2,2026-11-03,L9,charge,AUD,1.001,0,1.001,2026-11-02T09:15:00Z\n',
    );
    const refused = await cli(['settlement', 'import', report, '--gateway', 'securepay'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /settlement file refused: row 2, column gross: 1.001 has 3 decimals but AUD has 2/,
    );
    expect(
      await app.runtime.db
        .selectFrom('payouts')
        .select('id')
        .where('gateway_payout_id', '=', 'SP-CLI-2')
        .execute(),
    ).toEqual([]);
  });

  it('sync says so when no gateway account can be asked, and refuses a bad --days', async () => {
    const none = await cli(['settlement', 'sync', '--gateway', 'securepay'], env);
    expect(none).toMatchObject({ code: 0 });
    expect(none.stdout).toMatch(/no gateway account can be asked/);
    expect((await cli(['settlement', 'sync', '--days', '0'], env)).stderr).toMatch(/--days must be/);
  });
});
