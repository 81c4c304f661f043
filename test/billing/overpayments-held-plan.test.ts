import {
  CompiledQuery,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  sql,
  type UnknownRow,
} from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overpaymentsHeld } from '../../src/billing/credit-notes.ts';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordDispute } from '../../src/payments/disputes.ts';
import { moneyCoreDatabase, paidTwice } from '../support/money-core.ts';

/** Keeps the operation nodes of the queries run through it, to EXPLAIN them afterwards. */
class Capture implements KyselyPlugin {
  readonly nodes: RootOperationNode[] = [];
  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    this.nodes.push(node);
    return node;
  }
  async transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return result;
  }
}

/**
 * `overpaymentsHeld` runs in every finalization of an invoice of a customer holding credit
 * (`availableCredit`) and for every page of customers the API lists (`withBalances`): what it reads
 * of a customer's overpaid invoices' refunds and disputes goes through indexes (their payments',
 * `transactions_invoice`; `disputes_transaction`; `refunds_in_flight`), never a scan of the whole
 * refunds or disputes table. Checked on the plan PostgreSQL makes with sequential scans priced out
 * (`enable_seqscan = off`: an index that exists is used, a table without one is still scanned).
 * Before, the disputes had no index by payment and the refunds in flight were read by
 * `refunds.invoice_id`, which has none: both tables scanned once per overpaid invoice.
 */
describe('overpaymentsHeld reads refunds and disputes by index', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  it('a customer with an overpaid invoice, a dispute open on it: no sequential scan of refunds or disputes', async () => {
    const { customerId, duplicate } = await paidTwice(db, { currency: 'NZD', amount: 1000n });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, duplicate, { gatewayDisputeId: 'du_NZD', status: 'open', amount: 300n }),
    );
    const plans = await db.transaction().execute(async (trx) => {
      await sql`SET LOCAL enable_seqscan = off`.execute(trx);
      const capture = new Capture();
      const held = await overpaymentsHeld(trx.withPlugin(capture), [customerId], 'NZD');
      expect(held).toMatchObject([{ customerId, currency: 'NZD', held: 300n, byDisputes: 300n }]);
      const out: string[] = [];
      for (const node of capture.nodes) {
        const compiled = trx.getExecutor().compileQuery(node, { queryId: 'explain' });
        const { rows } = await trx.executeQuery<{ 'QUERY PLAN': string }>(
          CompiledQuery.raw(`EXPLAIN ${compiled.sql}`, [...compiled.parameters]),
        );
        out.push(rows.map((row) => row['QUERY PLAN']).join('\n'));
      }
      return out;
    });
    expect(plans.length).toBeGreaterThan(0);
    for (const plan of plans) {
      expect(plan).not.toMatch(/Seq Scan on (refunds|disputes)\b/);
    }
  });
});
