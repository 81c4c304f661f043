import { sql } from 'kysely';
import { LOSS_PAID_BY_REFUND } from '../billing/invoice-payment.ts';
import { lockInvoice } from '../billing/invoices.ts';
import type { Db } from '../db/database.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { lockPayments } from './transactions.ts';

const DAY_MS = 86_400_000;

/**
 * A lost claim on a gateway that pays lost disputes by a refund of the payment (PayPal,
 * `lostDisputePaidAsRefund`; not reversed, no refund carrying it: billing/credit-notes.ts
 * `disputeHolds`) holds its share of its invoice's overpayment credit until that refund comes
 * (payments/disputes.ts `settleLostDisputeByRefund`), which pays the overpayment back first. When no
 * refund came within `days` of its loss (the dispute's `updated_at`, stamped when it was recorded
 * lost, on or before `now`), waiting longer holds the customer's credit for nothing billhook will
 * hear of: a `lost_claim_unpaid` exception (once per dispute: `occurrence`) tells a person, and from
 * it on the claim holds nothing (`disputeHolds`), the credit the customer's to use. Its loss stays
 * booked (chargeback losses); a refund that still comes later is paired with it as before, paying the
 * overpayment back first (a credit spent meanwhile is left in debit with `overpayment_credit_spent`),
 * and resolves the exception with a note naming it (`settleLostDisputeByRefund`), as a reversal
 * reported for the claim does (`markReversed`).
 * Each claim in its own unit of work, under its invoice's lock (or its payment's), as a dispute report
 * takes it, and checked again under it. Run every minute by `refund.recover`.
 * 1000 HUF paid twice, a claim of 400 lost on Mar 1, no refund by Mar 8 (days 7): the 400 held comes
 * back to the 600 available (1000 available) and a person is told.
 * @param days `LOST_CLAIM_REFUND_DAYS`, ≥ 1
 * @returns the disputes (`dp_…`) flagged now
 */
export async function flagUnpaidLostClaims(db: Db, actor: Actor, now: Date, days: number): Promise<string[]> {
  const before = new Date(now.getTime() - days * DAY_MS);
  const unpaid = () =>
    sql<boolean>`d.status = 'lost' AND d.refund_id IS NULL AND NOT d.reversed
      AND d.gateway = ANY(${[...LOSS_PAID_BY_REFUND]}::text[]) AND d.updated_at <= ${before}
      AND NOT EXISTS (SELECT 1 FROM reconciliation_exceptions e WHERE e.transaction_id = d.transaction_id
        AND e.kind = 'lost_claim_unpaid' AND e.occurrence = d.id)`;
  const candidates = await db
    .selectFrom('disputes as d')
    .innerJoin('transactions as t', 't.id', 'd.transaction_id')
    .select(['d.id', 't.id as transaction_id', 't.invoice_id'])
    .where(unpaid())
    .orderBy('d.id')
    .execute();
  const flagged: string[] = [];
  for (const candidate of candidates) {
    const done = await inUnitOfWork(db, { actor }, async (work) => {
      if (candidate.invoice_id !== null) await lockInvoice(work, candidate.invoice_id);
      else await lockPayments(work, [candidate.transaction_id]);
      const dispute = await work.trx
        .selectFrom('disputes as d')
        .selectAll('d')
        .where('d.id', '=', candidate.id)
        .where(unpaid())
        .forUpdate()
        .executeTakeFirst();
      if (!dispute) return false;
      const c = dispute.currency;
      // Refunds billhook sent of the same payment and amount: never paired with the claim (PayPal does
      // not take a refund of the capture as settling a claim by itself), but a person may find PayPal
      // resolved it with one of them as the merchant's proof of refund.
      const mine = await work.trx
        .selectFrom('refunds')
        .select('id')
        .where('transaction_id', '=', dispute.transaction_id)
        .where('status', '=', 'succeeded')
        .where('amount', '=', dispute.amount)
        .where('sent_by_billhook', '=', true)
        .orderBy('id')
        .execute();
      const byBillhook = mine.map((refund) => refund.id);
      const named =
        byBillhook.length > 0
          ? ` Billhook sent refund ${byBillhook.join(', ')} of the same payment and amount, not taken as the claim's: if ${dispute.gateway} resolved the claim with it (the merchant's proof of refund), the loss booked is not one.`
          : '';
      await raiseException(work, {
        kind: 'lost_claim_unpaid',
        gateway: dispute.gateway,
        gatewayAccount: dispute.gateway_account,
        transactionId: dispute.transaction_id,
        occurrence: dispute.id,
        message:
          `claim ${dispute.id} (${dispute.gateway_dispute_id}) of ${dispute.amount} ${c} on ${dispute.transaction_id} was recorded lost ` +
          `at ${dispute.updated_at.toISOString()}, and no refund paying it has come in ${days} days: its loss stays booked ` +
          `(chargeback losses) and the customer's overpayment credit it held${candidate.invoice_id ? ` (invoice ${candidate.invoice_id})` : ''} ` +
          `is theirs to use again. Check at ${dispute.gateway} how the buyer was paid: a refund still to come is paired with the loss ` +
          `when it is booked; if no money left, the loss booked is not one.${named}`,
        details: {
          dispute: dispute.id,
          ...(byBillhook.length > 0 ? { refunds_sent_by_billhook: byBillhook } : {}),
          amount: dispute.amount,
          invoice: candidate.invoice_id,
          lost_at: dispute.updated_at.toISOString(),
          days,
        },
      });
      return true;
    });
    if (done) flagged.push(candidate.id);
  }
  return flagged;
}
