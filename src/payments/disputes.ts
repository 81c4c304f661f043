import type { Kysely } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import { newId } from '../db/ids.ts';
import type { Database, DisputeRow, DisputeStatus, TransactionRow } from '../db/schema.ts';
import { chart } from '../ledger/chart.ts';
import { joinLedgerWriters, postEntry, transfer } from '../ledger/journal.ts';

/** A dispute's state as a gateway reports it. Amount in minor units of the transaction's currency. */
export interface DisputeReport {
  gatewayDisputeId: string;
  status: DisputeStatus;
  amount: bigint;
  reason?: string;
}

/** What recording a dispute report did. */
export type DisputeRecordOutcome = { kind: 'applied' | 'duplicate' | 'stale'; dispute: DisputeRow };

/**
 * Posts what a dispute in `status` has moved so far, each movement once:
 * opened → `dp_…:opened` (gateway clearing → disputed funds); won → `dp_…:won` (back to clearing);
 * lost → `dp_…:lost` (disputed funds → chargeback losses).
 */
async function postDispute(
  trx: Kysely<Database>,
  dispute: DisputeRow,
  transaction: TransactionRow,
): Promise<void> {
  const { id, amount, currency } = dispute;
  const source = { type: 'dispute', id };
  const clearing = chart.gatewayClearing(transaction.gateway);
  await postEntry(trx, {
    idempotencyKey: `${id}:opened`,
    description: `dispute ${id} opened on ${transaction.id}`,
    source,
    postings: transfer(chart.disputedFunds, clearing, amount, currency),
  });
  if (dispute.status === 'won') {
    await postEntry(trx, {
      idempotencyKey: `${id}:won`,
      description: `dispute ${id} won`,
      source,
      postings: transfer(clearing, chart.disputedFunds, amount, currency),
    });
  }
  if (dispute.status === 'lost') {
    await postEntry(trx, {
      idempotencyKey: `${id}:lost`,
      description: `dispute ${id} lost`,
      source,
      postings: transfer(chart.chargebackLosses, chart.disputedFunds, amount, currency),
    });
  }
}

/**
 * Records a dispute report on a transaction inside `trx`, forward-only (open → won | lost). A closing
 * report that arrives before the opening one creates the dispute and posts both movements, so any
 * delivery order leaves the same ledger.
 */
export async function recordDispute(
  trx: Kysely<Database>,
  transaction: TransactionRow,
  report: DisputeReport,
): Promise<DisputeRecordOutcome> {
  await joinLedgerWriters(trx);
  const existing = await trx
    .selectFrom('disputes')
    .selectAll()
    .where('gateway', '=', transaction.gateway)
    .where('gateway_dispute_id', '=', report.gatewayDisputeId)
    .forUpdate()
    .executeTakeFirst();
  if (existing?.status === report.status) return { kind: 'duplicate', dispute: existing };
  if (existing && existing.status !== 'open') return { kind: 'stale', dispute: existing };
  const dispute = existing
    ? await trx
        .updateTable('disputes')
        .set({ status: report.status, updated_at: new Date() })
        .where('id', '=', existing.id)
        .returningAll()
        .executeTakeFirstOrThrow()
    : await trx
        .insertInto('disputes')
        .values({
          id: newId('dp'),
          transaction_id: transaction.id,
          gateway: transaction.gateway,
          gateway_dispute_id: report.gatewayDisputeId,
          amount: report.amount,
          currency: transaction.currency,
          status: report.status,
          reason: report.reason ?? null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
  await recordActivity(trx, {
    resourceType: 'dispute',
    resourceId: dispute.id,
    action: `dispute.${dispute.status === 'open' ? 'opened' : dispute.status}`,
    customerId: transaction.customer_id,
    data: { transaction: transaction.id, amount: dispute.amount, currency: dispute.currency },
  });
  await postDispute(trx, dispute, transaction);
  return { kind: 'applied', dispute };
}
