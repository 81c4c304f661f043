import type { Kysely } from 'kysely';
import { overpaidBy, overpaymentRefunded } from '../billing/credit-notes.ts';
import { availableCredit, lockCustomerCredit } from '../billing/customer-credit.ts';
import type { Database, DisputeRow, InvoiceRow } from '../db/schema.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import { capabilitiesOf } from '../gateways/registry.ts';
import { postEntry } from '../ledger/journal.ts';
import { disputeOverpaymentShareChanged, entryKeys } from '../ledger/movements.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { upTo } from '../money/amount.ts';

/**
 * The share of an overpaid invoice's overpayment (a duplicate payment, its excess the customer's
 * credit: `txn_…:overpaid`) that its payments' lost disputes gave back: a chargeback gave the
 * customer that money in cash, so it is taken off their credit instead of lost
 * (payments/disputes.ts `chargeBackOverpayment`, `dp_…:overpayment_charged_back`), stored on each
 * dispute as `overpayment_charged_back`. That share follows the invoice: it is worked again here
 * whenever what the invoice was overpaid or which of its disputes are lost changes after a loss was
 * booked (`resplitOverpayment`), so the customer never keeps as credit money a chargeback gave them.
 */

/**
 * Whether lost dispute `dispute` gives back its invoice's overpayment itself: not when a refund of
 * its payment carries its money (`refund_id`), nor on a gateway paying lost disputes as refunds
 * (PayPal's claims, `lostDisputePaidAsRefund`) unless the gateway reversed the payment (`reversed`:
 * a chargeback), the refund to come giving the overpayment back itself.
 */
export function givesBackOverpayment(
  dispute: Pick<DisputeRow, 'gateway' | 'reversed' | 'refund_id'>,
): boolean {
  if (dispute.refund_id !== null) return false;
  return !capabilitiesOf(dispute.gateway).lostDisputePaidAsRefund || dispute.reversed;
}

/**
 * What `invoice`'s payments brought beyond what it asked (`overpaidBy`) and its succeeded refunds did
 * not pay back (`overpaymentRefunded`), minor units, 0 or more: the overpayment the customer's credit
 * holds, or that lost disputes gave back in cash. Read under the invoice's lock.
 */
export async function overpaymentNotRefunded(
  trx: Kysely<Database>,
  invoice: Pick<
    InvoiceRow,
    'id' | 'status' | 'total' | 'credit_applied' | 'proration_credited' | 'amount_paid'
  >,
): Promise<bigint> {
  const left = overpaidBy(invoice) - (await overpaymentRefunded(trx, invoice));
  return left > 0n ? left : 0n;
}

/**
 * Checks, inside `work` with its invoice locked, that customer `customerId`'s credit in `currency`
 * still holds `amount` (minor units, > 0) of an overpayment about to be taken back from it: their
 * credit locked first (`lockCustomerCredit`), the credit their credit refunds in flight hold left out
 * (`availableCredit`, holds `credit_refunds`). When it holds less, the amount is taken all the same
 * (the caller posts it), leaving their credit in debit, and an `overpayment_credit_spent` exception
 * for a person says so: `what` (a chargeback lost, a void, a re-split: what gave the money back) is
 * its message's start, `details` its details beside `share` (the amount) and `credit_left`, and
 * `occurrence` the key of the entry that takes it back (`dp_…:overpayment_charged_back`,
 * `dp_…:overpayment_share:<cause>`, `txn_…:overpaid_voided`): each such entry on the same payment
 * opens its own exception, a replay of it none (`raiseException`).
 */
export async function flagOverpaymentCreditShort(
  work: UnitOfWork,
  about: {
    customerId: string;
    currency: string;
    amount: bigint;
    gateway: DisputeRow['gateway'];
    gatewayAccount: string | null;
    transactionId: string;
    what: string;
    details: Record<string, unknown>;
    occurrence: string;
  },
): Promise<void> {
  await lockCustomerCredit(work.trx, about.customerId);
  const left = upTo(
    await availableCredit(work, about.customerId, about.currency, 'credit_refunds'),
    about.amount,
  );
  if (left === about.amount) return;
  await raiseException(work, {
    kind: 'overpayment_credit_spent',
    gateway: about.gateway,
    gatewayAccount: about.gatewayAccount,
    transactionId: about.transactionId,
    occurrence: about.occurrence,
    message: `${about.what}, the customer's credit, which is taken back, but only ${left} of that credit was left: the customer's credit is in debit by ${about.amount - left}; recover it from the customer or write it off`,
    details: { ...about.details, share: about.amount, credit_left: left },
  });
}

/**
 * Takes a payment of `amount` (minor units) off locked invoice `invoice` by `takeOff` (which lowers
 * its `amount_paid` by `amount` and posts the reversal keyed `cause`: a void, `txn_…:voided`; an
 * offline payment reversed, `op_…:reversed`), then works its lost disputes' overpayment shares again
 * (`resplitOverpayment`).
 * @returns what the invoice is no longer paid beyond what it asked (`overpaymentNotRefunded` before
 *   less after, minor units; > 0 only when the invoice was overpaid): the overpayment credit the
 *   caller takes back off the customer
 */
export async function overpaymentLostByReversal(
  work: UnitOfWork,
  invoice: InvoiceRow,
  amount: bigint,
  cause: string,
  takeOff: () => Promise<void>,
): Promise<bigint> {
  const overpaid = await overpaymentNotRefunded(work.trx, invoice);
  await takeOff();
  await resplitOverpayment(work, invoice.id, cause);
  const after = { ...invoice, amount_paid: invoice.amount_paid - amount };
  return overpaid - (await overpaymentNotRefunded(work.trx, after));
}

/**
 * Works again, inside `work` and under invoice `invoiceId`'s lock, the share of its overpayment its
 * payments' lost disputes that give it back (`givesBackOverpayment`) hold: together, what the invoice
 * was overpaid and its refunds did not pay back (`overpaymentNotRefunded`), never more than those
 * disputes' amounts. Called after `cause` (the key of the entry that changed it, posted once) changed
 * either: a payment overpaid the invoice after a dispute was lost (`txn_…:overpaid`: the lost
 * dispute's chargeback gave back what is now overpaid), a payment of it was voided (`txn_…:voided`:
 * less is overpaid), a refund that had paid the overpayment back failed after succeeding
 * (`re_…:reversed`: more of it is not refunded), or a lost dispute of it was won
 * (`dp_…:overpayment_returned`: the share it held goes to the other lost disputes). Shares change as
 * little as they can: a rise fills the disputes in the order they were recorded, each up to its
 * amount, a fall empties the latest first; each change is posted as `dp_…:overpayment_share:<cause>`
 * (taken off the customer's credit, or given back to it) and stored on the dispute. 10000 paid twice, both payments charged back (the first's loss took the
 * overpayment, the second's is a loss), then the first won: the second's share becomes 10000, credit 0
 * and losses 0 (it was credit 10000 and losses 10000). Credit the customer no longer holds
 * (`flagOverpaymentCreditShort`) is taken all the same, left in debit, with an
 * `overpayment_credit_spent` exception for a person. Does nothing when the invoice has no such dispute.
 */
export async function resplitOverpayment(work: UnitOfWork, invoiceId: string, cause: string): Promise<void> {
  const lost = (
    await work.trx
      .selectFrom('disputes as d')
      .innerJoin('transactions as t', 't.id', 'd.transaction_id')
      .selectAll('d')
      .where('t.invoice_id', '=', invoiceId)
      .where('d.status', '=', 'lost')
      .orderBy('d.created_at')
      .orderBy('d.id')
      .execute()
  ).filter(givesBackOverpayment);
  if (lost.length === 0) return;
  // The invoice as this unit left it (its payment may be applied earlier in the same batch).
  await work.writeRows();
  const invoice = await work.trx
    .selectFrom('invoices')
    .selectAll()
    .where('id', '=', invoiceId)
    .executeTakeFirstOrThrow();
  const excess = await overpaymentNotRefunded(work.trx, invoice);
  const amounts = lost.reduce((sum, dispute) => sum + dispute.amount, 0n);
  // All of what is overpaid and not refunded, as far as the disputes' amounts reach.
  const target = upTo(excess, amounts);
  const held = lost.reduce((sum, dispute) => sum + dispute.overpayment_charged_back, 0n);
  if (target === held) return;
  // A rise fills the disputes in order, each up to its amount; a fall empties the latest first.
  const changes: { dispute: DisputeRow; by: bigint }[] = [];
  let rest = target - held;
  for (const dispute of rest > 0n ? lost : [...lost].reverse()) {
    if (rest === 0n) break;
    const by =
      rest > 0n
        ? upTo(rest, dispute.amount - dispute.overpayment_charged_back)
        : -upTo(-rest, dispute.overpayment_charged_back);
    if (by === 0n) continue;
    changes.push({ dispute, by });
    rest -= by;
  }
  const taken = target - held;
  const [first] = changes;
  if (first && taken > 0n) {
    await flagOverpaymentCreditShort(work, {
      customerId: invoice.customer_id,
      currency: invoice.currency,
      amount: taken,
      gateway: first.dispute.gateway,
      gatewayAccount: first.dispute.gateway_account,
      transactionId: first.dispute.transaction_id,
      what: `invoice ${invoice.id} is overpaid by ${excess} ${invoice.currency} not refunded (${cause}), and its lost disputes ${changes.map((c) => c.dispute.id).join(', ')} gave ${taken} more of that back to the customer in cash`,
      details: { invoice: invoice.id, cause },
      occurrence: entryKeys.disputeOverpaymentShareChanged(first.dispute.id, cause),
    });
  }
  for (const { dispute, by } of changes) {
    await postEntry(
      work,
      disputeOverpaymentShareChanged({
        disputeId: dispute.id,
        customerId: invoice.customer_id,
        amount: by,
        currency: dispute.currency,
        cause,
      }),
    );
    await work.trx
      .updateTable('disputes')
      .set({ overpayment_charged_back: dispute.overpayment_charged_back + by, updated_at: new Date() })
      .where('id', '=', dispute.id)
      .execute();
  }
}
