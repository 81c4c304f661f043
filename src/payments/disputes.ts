import { type Kysely, sql } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import { cancellationOwedNow } from '../billing/cancellation.ts';
import { cashCreditedTwice, overpaymentGivenBack, overpaymentShare } from '../billing/credit-notes.ts';
import { claimRefundCameFirst, disputedAway, LOSS_PAID_BY_REFUND } from '../billing/invoice-payment.ts';
import { lockInvoice } from '../billing/invoices.ts';
import { statusesWorkedAgain } from '../billing/period-statuses.ts';
import { newId } from '../db/ids.ts';
import type { Database, DisputeRow, DisputeStatus, RefundRow, TransactionRow } from '../db/schema.ts';
import {
  exceptionNames,
  paymentCustomer,
  raiseException,
  resolveOccurrenceExceptions,
} from '../exceptions/exceptions.ts';
import { capabilitiesOf } from '../gateways/registry.ts';
import { postEntry } from '../ledger/journal.ts';
import {
  disputeHoldRefunded,
  disputeHoldReleased,
  disputeHoldRestored,
  disputeLossRefunded,
  disputeLossReturned,
  disputeLost,
  disputeLostByRefund,
  disputeOpened,
  disputeOverpaymentChargedBack,
  disputeOverpaymentReturned,
  disputeWon,
  entryKeys,
} from '../ledger/movements.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { upTo } from '../money/amount.ts';
import {
  flagOverpaymentCreditShort,
  givesBackOverpayment,
  resplitOverpayment,
} from './overpayment-shares.ts';
import { lockPayments } from './transactions.ts';

/** A dispute's state as a gateway reports it. Amount in minor units of the transaction's currency. */
export interface DisputeReport {
  gatewayDisputeId: string;
  status: DisputeStatus;
  amount: bigint;
  reason?: string;
  /** The gateway reversed the payment (a chargeback): no refund carries this dispute's money. */
  reversal?: boolean;
}

/**
 * An amount a dispute report names that billhook did not book, for a person (minor units of the
 * dispute's currency): `lost_beyond_hold`, an open dispute reported lost for more than it withheld
 * (`booked` the hold, booked as lost; `reported` the loss: the gateway took the rest some other way).
 */
export interface UnbookedDisputeAmount {
  kind: 'lost_beyond_hold';
  booked: bigint;
  reported: bigint;
}

/** What recording a dispute report did; `unbooked` when part of what it reports was not booked. */
export type DisputeRecordOutcome = {
  kind: 'applied' | 'duplicate' | 'stale';
  dispute: DisputeRow;
  unbooked?: UnbookedDisputeAmount;
};

/**
 * Forward-only dispute transitions. An inquiry (no funds withdrawn) may close, or become a dispute
 * whose funds are withdrawn (`open`) or decided (`won` / `lost`), even after it closed (the issuer
 * can still file a chargeback on the same dispute); an open dispute ends won or lost.
 */
const NEXT: Readonly<Record<DisputeStatus, readonly DisputeStatus[]>> = {
  inquiry: ['inquiry_closed', 'open', 'won', 'lost'],
  inquiry_closed: ['open', 'won', 'lost'],
  open: ['won', 'lost'],
  won: [],
  lost: [],
};

/** The statuses of a dispute that is decided: no report changes them but as `recordDispute` says. */
const FINAL: ReadonlySet<DisputeStatus> = new Set(['won', 'lost']);

/** The statuses of a dispute whose funds were withdrawn: they post. Inquiries post nothing. */
const FUNDS_WITHDRAWN: ReadonlySet<DisputeStatus> = new Set(['open', 'won', 'lost']);

/**
 * A succeeded refund of the dispute's payment for exactly its amount that carries no other dispute
 * and that billhook did not send (`sent_by_billhook` false: PayPal's own, paying the claim; a refund
 * billhook sends is the payment's, `claimRefundCameFirst`); none for a dispute the gateway reversed
 * (`reversed`: a chargeback is no refund).
 */
async function refundCarrying(trx: Kysely<Database>, dispute: DisputeRow): Promise<RefundRow | undefined> {
  if (!capabilitiesOf(dispute.gateway).lostDisputePaidAsRefund || dispute.reversed) return undefined;
  return trx
    .selectFrom('refunds')
    .selectAll()
    .where('transaction_id', '=', dispute.transaction_id)
    .where('status', '=', 'succeeded')
    .where('amount', '=', dispute.amount)
    .where('sent_by_billhook', '=', false)
    .where('id', 'not in', trx.selectFrom('disputes').select('refund_id').where('refund_id', 'is not', null))
    .orderBy('id')
    .executeTakeFirst();
}

/**
 * Posts what a dispute in `status` has moved so far, each movement once; an inquiry moves nothing.
 * open → `dp_…:opened` (gateway clearing → disputed funds); won → `dp_…:won` (back to clearing);
 * lost → `dp_…:lost` (disputed funds → chargeback losses), or, when a refund of the same payment
 * carried the money (`refundCarrying`), `dp_…:refunded` (the held funds back to clearing: the money
 * left once, through that refund's own entry).
 */
async function postDispute(
  work: UnitOfWork,
  dispute: DisputeRow,
  transaction: TransactionRow,
): Promise<DisputeRow> {
  if (!FUNDS_WITHDRAWN.has(dispute.status)) return dispute;
  const { id, amount, currency } = dispute;
  const movement = {
    disputeId: id,
    transactionId: transaction.id,
    gateway: transaction.gateway,
    gatewayAccount: transaction.gateway_account,
    amount,
    currency,
  };
  await postEntry(work, disputeOpened(movement));
  if (dispute.status === 'won') await postEntry(work, disputeWon(movement));
  if (dispute.status !== 'lost') return dispute;
  const refund = await refundCarrying(work.trx, dispute);
  if (!refund) {
    await postEntry(work, disputeLost(movement));
    return chargeBackOverpayment(work, dispute, transaction);
  }
  await postEntry(work, disputeLostByRefund({ ...movement, refundId: refund.id }));
  return work.trx
    .updateTable('disputes')
    .set({ refund_id: refund.id })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Called inside `work` when the loss of `dispute` (lost, carried by no refund) was booked to
 * chargeback losses (`dp_…:lost`), its payment's invoice locked (`recordDispute`): when that invoice
 * was paid more than it asked (a duplicate payment, its excess the customer's credit: `txn_…:overpaid`)
 * and its overpayment is not all given back (`overpaymentGivenBack`: by refunds, by other lost
 * disputes), the chargeback gave that money back first, as a refund would (`overpaymentShare`): that
 * share is taken off the customer's credit instead of lost (`dp_…:overpayment_charged_back`) and
 * stored on the dispute (`overpayment_charged_back`), counted as overpayment given back from then on,
 * so a later refund of the invoice gives back its sale. 10000 paid twice and one of the payments
 * charged back: the customer's credit goes from 10000 to 0 and nothing is lost (it stayed 10000,
 * theirs to spend or have refunded, beside the 10000 the chargeback gave them, and chargeback losses
 * showed 10000). Credit the customer no longer holds (spent on later invoices, or held by their credit
 * refunds in flight) is left in debit, with an `overpayment_credit_spent` exception for a person. Not
 * for a dispute a refund of the payment will carry (a gateway paying lost disputes as refunds, the
 * dispute not a reversal: `settleLostDisputeByRefund`): that refund gives the overpayment back first
 * itself (billing/credit-notes.ts `issueCreditNote`); one marked reversed later comes here then
 * (`markReversed`). Once only: a dispute that took its share already is returned as it is. The share
 * is not fixed by the loss: what the invoice is overpaid, or which of its disputes are lost, changing
 * later (a payment that succeeds after the loss, a void, another dispute won after its loss), works
 * the shares of its lost disputes again (payments/overpayment-shares.ts `resplitOverpayment`).
 * @returns the dispute as it is now
 */
async function chargeBackOverpayment(
  work: UnitOfWork,
  dispute: DisputeRow,
  transaction: TransactionRow,
): Promise<DisputeRow> {
  if (transaction.invoice_id === null || dispute.overpayment_charged_back > 0n) return dispute;
  if (!givesBackOverpayment(dispute)) return dispute;
  // The invoice as this unit left it (a payment of it may be applied earlier in the same batch).
  await work.writeRows();
  const invoice = await work.trx
    .selectFrom('invoices')
    .selectAll()
    .where('id', '=', transaction.invoice_id)
    .executeTakeFirstOrThrow();
  const given = await overpaymentGivenBack(work.trx, invoice);
  const share = overpaymentShare(invoice, given, dispute.amount);
  if (share === 0n) return dispute;
  await flagOverpaymentCreditShort(work, {
    customerId: invoice.customer_id,
    currency: invoice.currency,
    amount: share,
    gateway: dispute.gateway,
    gatewayAccount: dispute.gateway_account,
    transactionId: transaction.id,
    what: `dispute ${dispute.id} of ${dispute.amount} ${dispute.currency} on ${transaction.id} was lost: ${share} of it was invoice ${invoice.id}'s overpayment`,
    details: { dispute: dispute.id, invoice: invoice.id },
    occurrence: entryKeys.disputeOverpaymentChargedBack(dispute.id),
  });
  await postEntry(
    work,
    disputeOverpaymentChargedBack({
      disputeId: dispute.id,
      customerId: invoice.customer_id,
      amount: share,
      currency: dispute.currency,
    }),
  );
  return work.trx
    .updateTable('disputes')
    .set({ overpayment_charged_back: share, updated_at: new Date() })
    .where('id', '=', dispute.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * When dispute `opened` (as it was while open) gives `returned` (minor units, > 0) of its hold back
 * to the merchant: all of it, won, or the rest of it, lost for less than it held
 * (`heldBeyondLoss`). While it was open, what the invoice of its payment gave back counted the whole
 * hold as given back to the customer already (billing/invoice-payment.ts `disputedAway`: open
 * disputes count), so now that the merchant has `returned` again the customer may be owed some of it
 * (the payment's refundable room counts it again; the invoice, REFUNDED while the dispute counted as
 * given back, is PARTIALLY_REFUNDED again: `recordDispute` works its status again):
 * - the last period's invoice of a subscription cancelled with a `full` or `prorate` refund, given
 *   back by nothing but that cancellation's refund since the dispute opened (its credit notes all the
 *   cancellation's: reason `subscription_cancelled`): what the cancellation owes is worked again from
 *   its stored facts (billing/cancellation.ts `cancellationOwedNow`), at most `returned`; when some,
 *   a `dispute_won_after_refund` exception says that exact amount (`details.owed`) for a person to
 *   refund by hand (the cancellation refunding nothing, because the dispute counted, is said too:
 *   JPY 3000 by card, 2500 disputed, cancelled with `prorate` at a third of the period, won: exactly
 *   2000 owed, where nothing was said; with `full`: 2500, where it said "up to 2500"; with `none`,
 *   or a cancellation made before the dispute opened, nothing);
 * - else, when the invoice issued credit notes since the dispute was opened (a refund by hand, whose
 *   intent billhook cannot know, a credit return), the exception says the customer may be owed up to
 *   `returned`, naming those credit notes.
 * Read under the invoice's lock (`recordDispute` takes it), so a credit note committed meanwhile is
 * counted. Not called for an open PayPal claim whose refund came first, which counted as nothing
 * given back while open (`countedWhileOpen`); a credit note of a PayPal refund that paid the claim's
 * hold while it was open (`dp_…:hold_refunded:<re_…>` posted) is not counted either, so a claim paid by
 * PayPal's refund, then reported as a chargeback (holding again: `chargebackOnUndecided`) and won,
 * says nothing is owed (JPY 1000 paid, claim of 400, PayPal's refund of 400, chargeback, won).
 */
async function returnedAfterGivingBack(
  work: UnitOfWork,
  transaction: TransactionRow,
  opened: DisputeRow,
  returned: bigint,
): Promise<void> {
  if (!transaction.invoice_id) return;
  const notes = await work.trx
    .selectFrom('credit_notes as n')
    .leftJoin('refunds as r', 'r.id', 'n.refund_id')
    .select([
      'n.id',
      'n.total',
      sql<boolean>`coalesce(r.reason, n.reason) = 'subscription_cancelled'`.as('cancellation'),
    ])
    .where('n.invoice_id', '=', transaction.invoice_id)
    .where('n.created_at', '>=', opened.created_at)
    // A PayPal refund that paid this claim's hold (`dp_…:hold_refunded:<re_…>`) was the claim's money,
    // given back while the claim counted as nothing (`claimRefundCameFirst`), not because it counted.
    .where(
      sql<boolean>`NOT EXISTS (SELECT 1 FROM journal_entries hr WHERE hr.idempotency_key = ${entryKeys.disputeHoldRefunded(opened.id, '')} || n.refund_id)`,
    )
    .orderBy('n.created_at')
    .orderBy('n.id')
    .execute();
  const ids = notes.map((note) => note.id);
  const invoiceId = transaction.invoice_id;
  const c = opened.currency;
  const came =
    returned === opened.amount
      ? `was won: its ${opened.amount} ${c} is the merchant's again`
      : `was lost for ${opened.amount - returned} of the ${opened.amount} ${c} it held: ${returned} ${c} is the merchant's again`;
  const counted = returned === opened.amount ? 'it' : `all ${opened.amount}`;
  const raise = (message: string, details: Record<string, unknown>) =>
    raiseException(work, {
      kind: 'dispute_won_after_refund',
      gateway: transaction.gateway,
      transactionId: transaction.id,
      occurrence: opened.id,
      gatewayAccount: transaction.gateway_account,
      message: `dispute ${opened.id} on ${transaction.id} ${came}, ${message}`,
      details: { dispute: opened.id, invoice: invoiceId, amount: returned, ...details, credit_notes: ids },
    });
  if (notes.every((note) => note.cancellation)) {
    const invoice = await work.trx
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', invoiceId)
      .executeTakeFirstOrThrow();
    const cancellation = await cancellationOwedNow(work, invoice);
    if (cancellation) {
      const owed = upTo(cancellation.owed, returned);
      if (owed === 0n) return;
      await raise(
        `but subscription ${invoice.subscription_id}'s ${cancellation.refundType} cancellation from ${cancellation.effectiveAt.toISOString()} counted ${counted} as the customer's already: the customer is owed exactly ${owed} ${c} of invoice ${invoiceId} (what that cancellation owes, worked again without the dispute): refund it by hand (POST /v1/invoices/${invoiceId}/refund with amount ${owed})`,
        { owed },
      );
      return;
    }
  }
  if (notes.length === 0) return;
  await raise(
    `but while it was open invoice ${invoiceId} gave money back (${ids.join(', ')}) counting ${returned === opened.amount ? 'that amount' : `all ${opened.amount}`} as the customer's already; the customer may be owed up to ${returned} ${c}: refund what is owed by hand (POST /v1/invoices/${invoiceId}/refund)`,
    {},
  );
}

/**
 * Called inside `work` when `refund` has just succeeded: if a lost dispute of the same payment and
 * amount was booked as a chargeback loss before the refund was known (gateways whose capabilities
 * say `lostDisputePaidAsRefund`: PayPal; not one the gateway `reversed`, a chargeback), the refund is
 * that loss's money, so the loss is taken back
 * (`dp_…:refunded_after_loss`: chargeback losses → gateway clearing) and the money stays booked
 * once, as the refund. A `lost_claim_unpaid` exception the claim raised while it waited
 * (payments/lost-claims.ts `flagUnpaidLostClaims`) is resolved with a note naming the refund: the
 * buyer was paid by it, as that exception asked a person to find out (before, it stayed open after
 * the refund came). Not a refund billhook sent (`sent_by_billhook`: by hand, for its own reason; before,
 * JPY 1000 paid, a claim of 400 lost, 400 refunded by hand for a partial return: taken as the claim's
 * money, the loss undone). Does nothing otherwise.
 */
export async function settleLostDisputeByRefund(work: UnitOfWork, refund: RefundRow): Promise<void> {
  if (!capabilitiesOf(refund.gateway).lostDisputePaidAsRefund || refund.sent_by_billhook) return;
  const dispute = await work.trx
    .updateTable('disputes')
    .set({ refund_id: refund.id, updated_at: new Date() })
    .where(
      'id',
      '=',
      work.trx
        .selectFrom('disputes')
        .select('id')
        .where('transaction_id', '=', refund.transaction_id)
        .where('status', '=', 'lost')
        .where('amount', '=', refund.amount)
        .where('refund_id', 'is', null)
        .where('reversed', '=', false)
        .orderBy('id')
        .limit(1),
    )
    .where('refund_id', 'is', null)
    .returningAll()
    .executeTakeFirst();
  if (!dispute) return;
  await resolveOccurrenceExceptions(
    work,
    { transactionId: dispute.transaction_id, kind: 'lost_claim_unpaid', occurrence: dispute.id },
    `refund ${refund.id} (${refund.gateway_refund_id ?? 'no gateway id'}) of ${refund.amount} ${refund.currency} paid claim ${dispute.id}: its loss is carried by that refund and the overpayment it gave back first`,
  );
  await postEntry(
    work,
    disputeLossRefunded({
      disputeId: dispute.id,
      gateway: refund.gateway,
      gatewayAccount: refund.gateway_account,
      refundId: refund.id,
      amount: dispute.amount,
      currency: dispute.currency,
    }),
  );
}

/**
 * Keeps the hold of the open claims on payment `transactionId` as PayPal keeps it, inside `work`, under
 * the payment's invoice lock (or the payment's) that `recordDispute` and `recordRefundResult` take.
 * PayPal pays a refund issued while a claim is open out of the funds it holds for the claim (PayPal
 * Help, "the payment is on hold in my PayPal account": "You can use these funds to issue a refund
 * anytime during the dispute … Once the dispute … is resolved, the remaining funds will be released"),
 * so an open claim whose refund came (billing/invoice-payment.ts `claimRefundCameFirst`: a succeeded
 * refund of the payment for exactly its amount that billhook did not send and no lost dispute carries;
 * one refund per claim, the oldest claims and refunds first) holds nothing any more: its hold goes
 * back to clearing, spent by that refund (`dp_…:hold_refunded:<re_…>`, the refund stored as the
 * claim's `hold_refund_id`). A claim that no longer pairs with that refund (it left `open`: won, lost,
 * lost for less; or the refund failed after succeeding) first puts the hold back
 * (`dp_…:hold_restored:<re_…>`), so its resolution books from the hold exactly as before and every
 * order of reports ends where it ended before. JPY 1000 paid by PayPal, a claim of 400 open and
 * PayPal's refund of 400 in, whichever came first: clearing 600 and disputed funds 0 (before: 200 and
 * 400 until the claim closed, PayPal holding 600); lost and paid by that refund, or won: still 600.
 * Only on gateways paying lost disputes by a refund (`lostDisputePaidAsRefund`: PayPal).
 */
export async function syncClaimHolds(work: UnitOfWork, transactionId: string): Promise<void> {
  const claims = await work.trx
    .selectFrom('disputes')
    .selectAll()
    .where('transaction_id', '=', transactionId)
    .where(sql<boolean>`gateway = ANY(${[...LOSS_PAID_BY_REFUND]}::text[])`)
    .where((eb) => eb.or([eb('status', '=', 'open'), eb('hold_refund_id', 'is not', null)]))
    .orderBy('id')
    .forUpdate()
    .execute();
  if (claims.length === 0) return;
  // The refunds that may pay an open claim, as `claimRefundCameFirst` counts them.
  const free = await work.trx
    .selectFrom('refunds')
    .select(['id', 'amount'])
    .where('transaction_id', '=', transactionId)
    .where('status', '=', 'succeeded')
    .where('sent_by_billhook', '=', false)
    .where(
      'id',
      'not in',
      work.trx.selectFrom('disputes').select('refund_id').where('refund_id', 'is not', null),
    )
    .orderBy('id')
    .execute();
  // A claim keeps the refund it is paired with while it may (open, not reversed, the refund still
  // free): a claim that lost its refund to another and got it back would post its
  // `dp_…:hold_refunded:<re_…>` a second time, which its key skips (the hold then left in disputed
  // funds while the claim reads paid). So pairings stand first; the other open claims take what is left.
  const pairing = new Map<string, string | null>();
  const mayPair = (claim: (typeof claims)[number]) => claim.status === 'open' && !claim.reversed;
  for (const claim of claims) {
    const at = mayPair(claim) ? free.findIndex((refund) => refund.id === claim.hold_refund_id) : -1;
    if (at >= 0) pairing.set(claim.id, free.splice(at, 1)[0]?.id ?? null);
  }
  for (const claim of claims) {
    if (pairing.has(claim.id) || !mayPair(claim)) continue;
    const at = free.findIndex((refund) => refund.amount === claim.amount);
    pairing.set(claim.id, at >= 0 ? (free.splice(at, 1)[0]?.id ?? null) : null);
  }
  for (const claim of claims) {
    const paidBy = pairing.get(claim.id) ?? null;
    if (claim.hold_refund_id === paidBy) continue;
    const movement = {
      disputeId: claim.id,
      transactionId,
      gateway: claim.gateway,
      gatewayAccount: claim.gateway_account,
      amount: claim.amount,
      currency: claim.currency,
    };
    if (claim.hold_refund_id !== null) {
      // What the hold gave that refund: its amount (the claim's when paired; a loss for less has
      // changed the claim's since).
      const spent = await work.trx
        .selectFrom('refunds')
        .select('amount')
        .where('id', '=', claim.hold_refund_id)
        .executeTakeFirstOrThrow();
      await postEntry(
        work,
        disputeHoldRestored({ ...movement, amount: spent.amount, refundId: claim.hold_refund_id }),
      );
    }
    if (paidBy !== null) await postEntry(work, disputeHoldRefunded({ ...movement, refundId: paidBy }));
    await work.trx
      .updateTable('disputes')
      .set({ hold_refund_id: paidBy, updated_at: new Date() })
      .where('id', '=', claim.id)
      .execute();
  }
}

/**
 * A reversal (a chargeback) reported for the same money as a dispute already recorded lost without
 * it (PayPal's claim resolved for the buyer, `CUSTOMER.DISPUTE.RESOLVED` of channel INTERNAL,
 * delivered before the `PAYMENT.CAPTURE.REVERSED` that paid it): the dispute is marked `reversed`, so
 * no refund of the same amount is paired with its loss afterwards, as when the reversal comes first;
 * a `lost_claim_unpaid` it raised while waiting (payments/lost-claims.ts) is resolved with a note.
 * When a refund already carries it (`refund_id`: booked `dp_…:refunded` or `dp_…:refunded_after_loss`),
 * billhook cannot tell whether that refund was the buyer's money for this claim (the reversal then
 * repeats it) or something else (the reversal's money is then a chargeback loss billhook did not
 * book): nothing is changed and an `unknown_outcome` exception names the dispute and the refund for a
 * person (once per refund and dispute), who books the loss if it is one.
 */
async function markReversed(
  work: UnitOfWork,
  transaction: TransactionRow,
  existing: DisputeRow,
): Promise<DisputeRecordOutcome> {
  if (existing.refund_id) {
    await raiseException(work, {
      kind: 'unknown_outcome',
      gateway: existing.gateway,
      gatewayAccount: existing.gateway_account,
      transactionId: transaction.id,
      refundId: existing.refund_id,
      occurrence: existing.id,
      message:
        `dispute ${existing.id} (${existing.gateway_dispute_id}) of ${existing.amount} ${existing.currency} was booked ` +
        `as carried by refund ${existing.refund_id}, and ${existing.gateway} now reports it paid by reversing the payment ` +
        '(a chargeback): if that refund paid the buyer something else, book the amount as a chargeback loss',
      details: { dispute: existing.id, refund: existing.refund_id, amount: existing.amount },
    });
    return { kind: 'duplicate', dispute: existing };
  }
  const dispute = await setReversed(work, existing.id);
  // How the buyer was paid, which a `lost_claim_unpaid` asked a person to find out, is known now.
  await resolveOccurrenceExceptions(
    work,
    { transactionId: transaction.id, kind: 'lost_claim_unpaid', occurrence: dispute.id },
    `${dispute.gateway} reported claim ${dispute.id} (${dispute.gateway_dispute_id}) of ${dispute.amount} ${dispute.currency} paid by reversing the payment (a chargeback): its loss stands, and its share of the invoice's overpayment is charged back off the customer's credit`,
  );
  // No refund will carry it now: its loss takes the invoice's overpayment back, as any chargeback's.
  return { kind: 'applied', dispute: await chargeBackOverpayment(work, dispute, transaction) };
}

/**
 * Sets dispute `id` `reversed` (paid by reversing the payment, a chargeback), so no refund is its
 * money any more: the one update `markReversed` and `chargebackOnUndecided` make.
 * @returns the dispute's row as updated
 * @throws NoResultError when no dispute has the id
 */
async function setReversed(work: UnitOfWork, id: string): Promise<DisputeRow> {
  return work.trx
    .updateTable('disputes')
    .set({ reversed: true, updated_at: new Date() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * A chargeback (`reversal`: PayPal's dispute of channel `EXTERNAL`, keyed like the claim by the
 * capture) reported on dispute `existing`, not yet decided (open, or an inquiry) and not yet marked
 * `reversed`, in the status it has: the dispute is marked `reversed`, so no refund is its money any
 * more (`refundCarrying`, `claimRefundCameFirst`: a chargeback is paid by PayPal's reversal, and a
 * refund made before it stays a refund of its own). An open claim whose hold a PayPal refund had spent
 * (`hold_refund_id`) holds its amount again (`syncClaimHolds`: `dp_…:hold_restored:<re_…>`) and counts
 * as given back of its invoice again, whose statuses are worked again (`statusesWorkedAgain`). JPY 1000
 * paid, a claim of 400 open, PayPal's refund of 400 (clearing 600, disputed funds 0), then the
 * chargeback reported open: clearing 200, disputed funds 400, 200 refundable (before: 600 and 0 until
 * the chargeback was lost, 600 refundable by hand). A chargeback of another amount than the dispute
 * (`report.amount`: the buyer's card issuer took back the whole JPY 1000 on a claim of 400) is marked
 * the same way, the dispute keeping its amount and hold, and raises an `amount_mismatch` exception
 * naming both amounts (`details.dispute`, once per dispute): PayPal holds the chargeback's amount,
 * which billhook cannot book from a report of the claim (before, nothing was said until the
 * chargeback was reported lost, and nothing at all when it was won).
 * @returns `applied` with the dispute marked
 */
async function chargebackOnUndecided(
  work: UnitOfWork,
  transaction: TransactionRow,
  existing: DisputeRow,
  report: DisputeReport,
): Promise<DisputeRecordOutcome> {
  const dispute = await setReversed(work, existing.id);
  if (report.amount !== existing.amount) {
    const c = existing.currency;
    await raiseException(work, {
      kind: 'amount_mismatch',
      gateway: existing.gateway,
      gatewayAccount: existing.gateway_account,
      transactionId: transaction.id,
      occurrence: `${existing.id}:chargeback`,
      message:
        `dispute ${existing.id} (${existing.gateway_dispute_id}) of ${existing.amount} ${c} is now reported as a ` +
        `chargeback of ${report.amount} ${c} on the same payment: marked a chargeback, still ${existing.amount} ${c} ` +
        `(held while open); check at ${existing.gateway} what it holds or took and book the difference`,
      details: { dispute: existing.id, disputed: existing.amount, chargeback: report.amount },
    });
  }
  if (dispute.status !== 'open') return { kind: 'applied', dispute };
  await syncClaimHolds(work, transaction.id);
  if (transaction.invoice_id !== null) await statusesWorkedAgain(work, transaction.invoice_id, dispute.id);
  return {
    kind: 'applied',
    dispute: await work.trx
      .selectFrom('disputes')
      .selectAll()
      .where('id', '=', dispute.id)
      .executeTakeFirstOrThrow(),
  };
}

/**
 * A reversal (PayPal's `PAYMENT.CAPTURE.REVERSED`) for the same money as a chargeback already won
 * (`existing`: `reversed`, a dispute of channel `EXTERNAL`, resolved for the merchant), delivered after
 * that resolution: PayPal took the chargeback's money and gave it back when the issuer found for the
 * merchant (a `T1202` chargeback reversal), so nothing moved in all, and the ledger already says so (the
 * hold came back with the win). Booking it as a chargeback of its own (`reversalDisputeId`) lost the
 * money PayPal returned (HKD: losses 10000 where the delivery in order ends at 0). Nothing is booked;
 * as billhook cannot tell it from a second chargeback PayPal keys by the same capture, an
 * `unknown_outcome` exception names the dispute for a person (once per dispute: `occurrence`), who
 * books the loss if PayPal took the money again.
 * @returns `duplicate` with `existing`, as it was
 */
async function reversalOfWonChargeback(
  work: UnitOfWork,
  transaction: TransactionRow,
  existing: DisputeRow,
): Promise<DisputeRecordOutcome> {
  await raiseException(work, {
    kind: 'unknown_outcome',
    gateway: existing.gateway,
    gatewayAccount: existing.gateway_account,
    transactionId: transaction.id,
    occurrence: existing.id,
    message:
      `dispute ${existing.id} (${existing.gateway_dispute_id}), a chargeback of ${existing.amount} ${existing.currency} ` +
      `already won, is now reported paid by reversing the payment: taken as the chargeback's own reversal, which the win ` +
      `gave back (nothing booked); if ${existing.gateway} took the money again (a second chargeback), book it as a chargeback loss`,
    details: { dispute: existing.id, amount: existing.amount },
  });
  return { kind: 'duplicate', dispute: existing };
}

/**
 * A `lost` report (a reversal, a chargeback; or a resolution, PayPal's `CUSTOMER.DISPUTE.RESOLVED`,
 * Stripe's `charge.dispute.closed`) for a dispute already recorded lost (`existing`) for another
 * amount: billhook cannot tell whether the gateway took the difference too, or gave some back, so
 * nothing is changed and an `amount_mismatch` exception names the dispute and both amounts for a
 * person, who books the difference if there is one. Raised once: without its event (once per dispute
 * of the payment: `occurrence`, as `markReversed` raises its own), and not at all when an `amount_mismatch` of the payment already
 * names this dispute (`details.dispute`: the one its loss beyond the hold raised, `applyDisputeEvent`,
 * reported again; one raised before details named it, by its message naming the dispute).
 * @returns `duplicate` with `existing`, as it was
 */
async function lostForAnotherAmount(
  work: UnitOfWork,
  transaction: TransactionRow,
  existing: DisputeRow,
  report: DisputeReport,
): Promise<DisputeRecordOutcome> {
  const named = {
    transactionId: transaction.id,
    kind: 'amount_mismatch',
    key: 'dispute',
    value: existing.id,
    // Its loss beyond the hold raised before the exception's details named the dispute
    // (reconcile/apply.ts's message then as now: "event … reports dispute dp_… (…) on …").
    legacy: ` reports dispute ${existing.id} (`,
  } as const;
  if (await exceptionNames(work.trx, named)) return { kind: 'duplicate', dispute: existing };
  const reported = report.reversal
    ? `a reversal (a chargeback) of ${report.amount} ${existing.currency} on the same payment`
    : `it lost for ${report.amount} ${existing.currency}`;
  await raiseException(work, {
    kind: 'amount_mismatch',
    gateway: existing.gateway,
    gatewayAccount: existing.gateway_account,
    transactionId: transaction.id,
    occurrence: existing.id,
    message:
      `dispute ${existing.id} (${existing.gateway_dispute_id}) was booked lost for ${existing.amount} ` +
      `${existing.currency}, and ${existing.gateway} now reports ${reported}: nothing changed; ` +
      `check at ${existing.gateway} what it took and book the difference`,
    details: {
      dispute: existing.id,
      lost: existing.amount,
      ...(report.reversal ? { reversal: report.amount } : { reported: report.amount }),
    },
  });
  return { kind: 'duplicate', dispute: existing };
}

/**
 * A `won` report for dispute `existing`, recorded lost. When that loss was the gateway reversing the
 * payment (`reversed`: PayPal's `PAYMENT.CAPTURE.REVERSED`, which takes a chargeback's money at once
 * while the card issuer decides) and the report is that chargeback decided for the merchant
 * (`reversal`: PayPal's dispute of channel `EXTERNAL`, resolved `RESOLVED_SELLER_FAVOUR`) for the
 * amount lost, the gateway gives the money back (PayPal's chargeback guide: when the card issuer
 * finds for the seller, PayPal returns the funds, https://www.paypal.com/il/webapps/mpp/security/sell-chargebackguide3;
 * in Transaction Search a `T1202` chargeback reversal): the dispute becomes
 * `won` and `dp_…:loss_returned` takes the loss back (chargeback losses → gateway clearing), the
 * share of its invoice's overpayment its loss took off the customer's credit going back to it
 * (`dp_…:overpayment_returned`) and then to the invoice's other lost disputes as far as their amounts
 * reach (`resplitOverpayment`: `dp_…:overpayment_share:dp_…:overpayment_returned`); as for
 * any dispute won, money the invoice gave back since it opened raises `dispute_won_after_refund`
 * (`returnedAfterGivingBack`) and the statuses of its period's invoices are worked again
 * (`statusesWorkedAgain`). Anything else (a claim won, not a chargeback, after a reversal: perhaps a
 * claim won before a chargeback, delivered late; another amount than was lost) cannot be told apart
 * from the events: nothing changes, and a `dispute_won_after_loss` exception names the dispute for a
 * person (once per dispute: a replay of the report raises none, another dispute of the same payment
 * its own, `occurrence`).
 * @returns `applied` with the dispute won, or `stale` with `existing` as it was
 */
async function wonAfterLoss(
  work: UnitOfWork,
  transaction: TransactionRow,
  existing: DisputeRow,
  report: DisputeReport,
): Promise<DisputeRecordOutcome> {
  if (!existing.reversed || !report.reversal || report.amount !== existing.amount) {
    const why = !existing.reversed
      ? 'it was not a reversal of the payment'
      : !report.reversal
        ? 'the report is not of a chargeback (a claim may have been won before the chargeback)'
        : `the report is for ${report.amount} ${existing.currency}`;
    await raiseException(work, {
      kind: 'dispute_won_after_loss',
      gateway: existing.gateway,
      gatewayAccount: existing.gateway_account,
      transactionId: transaction.id,
      occurrence: existing.id,
      message:
        `dispute ${existing.id} (${existing.gateway_dispute_id}) was booked lost for ${existing.amount} ` +
        `${existing.currency}, and ${existing.gateway} now reports it won, which billhook cannot book (${why}): ` +
        `nothing changed; check at ${existing.gateway} whether the money came back and book it`,
      details: { dispute: existing.id, lost: existing.amount, won: report.amount },
    });
    return { kind: 'stale', dispute: existing };
  }
  const dispute = await work.trx
    .updateTable('disputes')
    .set({ status: 'won', updated_at: new Date() })
    .where('id', '=', existing.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordActivity(work, {
    resourceType: 'dispute',
    resourceId: dispute.id,
    action: 'dispute.won',
    customerId: await paymentCustomer(work.trx, transaction.id),
    data: { transaction: transaction.id, amount: dispute.amount, currency: dispute.currency },
  });
  await postEntry(
    work,
    disputeLossReturned({
      disputeId: dispute.id,
      transactionId: transaction.id,
      gateway: transaction.gateway,
      gatewayAccount: transaction.gateway_account,
      amount: dispute.amount,
      currency: dispute.currency,
    }),
  );
  // What its loss took off the customer's credit (an overpayment, `chargeBackOverpayment`) is theirs
  // again: the dispute, won, no longer counts as giving it back; the invoice's other lost disputes
  // gave that overpayment back in cash as much as this one did, so they take it now as far as their
  // amounts reach (`resplitOverpayment`).
  if (existing.overpayment_charged_back > 0n && transaction.invoice_id !== null) {
    const { customer_id } = await work.trx
      .selectFrom('invoices')
      .select('customer_id')
      .where('id', '=', transaction.invoice_id)
      .executeTakeFirstOrThrow();
    await postEntry(
      work,
      disputeOverpaymentReturned({
        disputeId: dispute.id,
        customerId: customer_id,
        amount: existing.overpayment_charged_back,
        currency: dispute.currency,
      }),
    );
    await resplitOverpayment(work, transaction.invoice_id, entryKeys.disputeOverpaymentReturned(dispute.id));
  }
  await returnedAfterGivingBack(work, transaction, existing, existing.amount);
  // The loss returned: what disputes took of the invoice changed, as for any dispute won.
  if (transaction.invoice_id !== null) await statusesWorkedAgain(work, transaction.invoice_id, dispute.id);
  return { kind: 'applied', dispute };
}

/**
 * Whether open dispute `open` counts, as it stands, as given back of its invoice (billing/
 * invoice-payment.ts `disputedAway`): every open dispute does but a PayPal claim whose refund came
 * first (`claimRefundCameFirst`: that refund counts in its place). What the invoice gave back while
 * such a claim was open never counted it, so its win (or its loss for less) leaves the customer owed
 * nothing because of it: no `dispute_won_after_refund` (`returnedAfterGivingBack`). JPY 1000 paid by
 * PayPal, a claim of 400 open, PayPal's refund of 400 in, the claim won: nothing owed (before: "the
 * customer may be owed up to 400", naming PayPal's own refund).
 */
async function countedWhileOpen(trx: Kysely<Database>, open: DisputeRow): Promise<boolean> {
  const paidByRefund = await trx
    .selectFrom('disputes as d')
    .select('d.id')
    .where('d.id', '=', open.id)
    .where(claimRefundCameFirst())
    .executeTakeFirst();
  return paidByRefund === undefined;
}

/** The status to record for `report` on `existing`: funds withdrawn then an inquiry closed means they came back. */
function reportedStatus(existing: DisputeRow | undefined, report: DisputeReport): DisputeStatus {
  return existing?.status === 'open' && report.status === 'inquiry_closed' ? 'won' : report.status;
}

/**
 * What a `lost` report gives back of an open dispute's hold: the withheld amount less what was lost,
 * when the report says less (PayPal's `amount_refunded` below the `dispute_amount` it held); else 0.
 */
function heldBeyondLoss(
  existing: DisputeRow | undefined,
  status: DisputeStatus,
  report: DisputeReport,
): bigint {
  if (existing?.status !== 'open' || status !== 'lost' || report.amount >= existing.amount) return 0n;
  return existing.amount - report.amount;
}

/**
 * Records a dispute report on a transaction inside `work`, forward-only (`NEXT`). A closing report
 * that arrives before the opening one creates the dispute and posts both movements, so any delivery
 * order leaves the same ledger. An inquiry posts nothing until its funds are withdrawn; an inquiry
 * that closes on a dispute whose funds were withdrawn (recorded before inquiries were told apart)
 * returns them, as a won dispute. A new dispute records its transaction's gateway account. An open
 * dispute reported lost for less than it withheld takes the lost amount as its own and releases the
 * rest of the hold (`dp_…:released`), so the money lost (or refunded) is what the gateway gave the
 * cardholder, whichever order the reports come in. A reversal (`reversal`, a chargeback) reported
 * lost on a dispute already won is a dispute of its own (`<gateway dispute id>:reversal`): the
 * gateway took the money back after the merchant won (that chargeback reported won later, on the
 * dispute already won, is that dispute's: `wonAfterLoss` gives its loss back); but on a chargeback won for the same money it is
 * that chargeback's own reversal, delivered late, which the win gave back: nothing is booked and a
 * person is told (`reversalOfWonChargeback`); reported for the same money as a dispute
 * already lost, it marks that dispute `reversed` (`markReversed`). Any `lost` report, a reversal or
 * not, for another amount than a dispute already lost changes nothing and raises an `amount_mismatch`
 * exception once (`lostForAnotherAmount`). An open dispute reported lost
 * for more than it withheld books the hold as lost, as it was, and returns the rest `unbooked`
 * (`lost_beyond_hold`): the gateway took it some other way, and only a person can tell how. A
 * dispute lost by a reversal and then reported won as the chargeback it was gets its money back
 * (`wonAfterLoss`); any other `won` report of a dispute lost is a `dispute_won_after_loss` exception.
 *
 * A report that may move funds (any but an inquiry) on a payment of an invoice locks that invoice
 * first (`lockInvoice`: its subscription, then the invoice, then the dispute's row), as every refund
 * and credit return of the invoice does, so what they read of its disputes (billing/invoice-payment.ts
 * `disputedAway`, `refundRooms`) stays true until they commit, and a dispute won while a refund of
 * the invoice commits sees its credit note (`returnedAfterGivingBack`); on a payment without an invoice
 * it locks the payment, as its refunds do (`lockPayments`). In a reconcile batch, the
 * invoices of its dispute events are locked ahead with those of its charges, in the lock order
 * (reconcile/apply.ts `lockChargesAhead`). Once its funds moved (opened, won, lost), the statuses of
 * the invoice and of its period's invoices that gave money back are worked again
 * (billing/period-statuses.ts `statusesWorkedAgain`: disputes count as given back, so an invoice made
 * REFUNDED while the dispute was open is PARTIALLY_REFUNDED again once it is won).
 */
export async function recordDispute(
  work: UnitOfWork,
  transaction: TransactionRow,
  report: DisputeReport,
): Promise<DisputeRecordOutcome> {
  await work.joinLedgerWriters();
  // A report that may move funds takes its payment's invoice first (its subscription before it:
  // `lockInvoice`), then the dispute, so a refund by hand, a cancellation's refund or a credit return
  // of that invoice, which read what disputes took under the same lock, count it whole or not at all.
  // A payment without an invoice is locked itself, as its refunds lock it (`lockPayments`).
  if (report.status !== 'inquiry') {
    if (transaction.invoice_id !== null) await lockInvoice(work, transaction.invoice_id);
    else await lockPayments(work, [transaction.id]);
  }
  const existing = await work.trx
    .selectFrom('disputes')
    .selectAll()
    .where('gateway', '=', transaction.gateway)
    .where('gateway_dispute_id', '=', report.gatewayDisputeId)
    .forUpdate()
    .executeTakeFirst();
  if (existing?.status === 'won' && report.status === 'lost' && report.reversal) {
    // The reversal of a chargeback already won for the same money, delivered after its resolution.
    if (existing.reversed && report.amount === existing.amount) {
      return reversalOfWonChargeback(work, transaction, existing);
    }
    // A chargeback after a dispute the merchant won on the same payment (PayPal keys both by the
    // capture): the money leaves now, as a dispute of its own.
    return recordDispute(work, transaction, {
      ...report,
      gatewayDisputeId: reversalDisputeId(report.gatewayDisputeId),
    });
  }
  // A chargeback won after a dispute the merchant won on the same payment: its reversal was booked
  // as the dispute of its own above, whose loss the win gives back (`wonAfterLoss`).
  if (existing?.status === 'won' && report.status === 'won' && report.reversal && !existing.reversed) {
    const chargeback = await findDispute(
      work.trx,
      transaction.gateway,
      reversalDisputeId(report.gatewayDisputeId),
    );
    if (chargeback?.status === 'lost') {
      return recordDispute(work, transaction, {
        ...report,
        gatewayDisputeId: reversalDisputeId(report.gatewayDisputeId),
      });
    }
  }
  // A dispute already lost reported lost again: another amount is for a person (a reversal or a
  // resolution alike); a reversal of the same money marks it reversed (once: marked already, it is a
  // duplicate below).
  if (existing?.status === 'lost' && report.status === 'lost') {
    if (existing.amount !== report.amount) return lostForAnotherAmount(work, transaction, existing, report);
    if (report.reversal && !existing.reversed) return markReversed(work, transaction, existing);
  }
  if (existing?.status === 'lost' && report.status === 'won') {
    return wonAfterLoss(work, transaction, existing, report);
  }
  const status = reportedStatus(existing, report);
  // A chargeback filed on a claim still open (or an inquiry), reported in the status it has.
  if (existing?.status === status && report.reversal && !existing.reversed && !FINAL.has(status)) {
    return chargebackOnUndecided(work, transaction, existing, report);
  }
  if (existing?.status === status) return { kind: 'duplicate', dispute: existing };
  if (existing && !NEXT[existing.status].includes(status)) return { kind: 'stale', dispute: existing };
  const released = heldBeyondLoss(existing, status, report);
  // Read before it leaves `open`: an open claim whose refund came first counted nothing as given back.
  const countedGivenBack =
    existing?.status === 'open' &&
    (status === 'won' || released > 0n) &&
    (await countedWhileOpen(work.trx, existing));
  const dispute = existing
    ? await work.trx
        .updateTable('disputes')
        .set({
          status,
          ...(released > 0n ? { amount: report.amount } : {}),
          ...(report.reversal ? { reversed: true } : {}),
          updated_at: new Date(),
        })
        .where('id', '=', existing.id)
        .returningAll()
        .executeTakeFirstOrThrow()
    : await work.trx
        .insertInto('disputes')
        .values({
          id: newId('dp'),
          transaction_id: transaction.id,
          gateway: transaction.gateway,
          gateway_account: transaction.gateway_account,
          gateway_dispute_id: report.gatewayDisputeId,
          amount: report.amount,
          currency: transaction.currency,
          status,
          reason: report.reason ?? null,
          reversed: report.reversal === true,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
  // A claim leaving `open` whose hold a refund spent puts it back first: its resolution books from it.
  if (existing?.status === 'open' && status !== 'open') await syncClaimHolds(work, transaction.id);
  if (released > 0n) {
    await postEntry(
      work,
      disputeHoldReleased({
        disputeId: dispute.id,
        transactionId: transaction.id,
        gateway: transaction.gateway,
        gatewayAccount: transaction.gateway_account,
        amount: released,
        currency: dispute.currency,
      }),
    );
  }
  await recordActivity(work, {
    resourceType: 'dispute',
    resourceId: dispute.id,
    action: `dispute.${dispute.status === 'open' ? 'opened' : dispute.status}`,
    customerId: await paymentCustomer(work.trx, transaction.id),
    data: { transaction: transaction.id, amount: dispute.amount, currency: dispute.currency },
  });
  const booked = await postDispute(work, dispute, transaction);
  // An open claim whose refund came first: PayPal paid that refund out of its hold.
  if (FUNDS_WITHDRAWN.has(status)) await syncClaimHolds(work, transaction.id);
  if (countedGivenBack) {
    await returnedAfterGivingBack(work, transaction, existing, status === 'won' ? existing.amount : released);
  }
  // What disputes took of the invoice changed: the statuses of the invoices that gave money back are
  // worked again (an invoice made REFUNDED while it was open keeps something again once it is won).
  if (transaction.invoice_id !== null && FUNDS_WITHDRAWN.has(status)) {
    await statusesWorkedAgain(work, transaction.invoice_id, booked.id);
  }
  if (status === 'lost' && existing?.status !== 'lost') await cashCreditedDisputed(work, transaction, booked);
  if (existing?.status === 'open' && status === 'lost' && report.amount > existing.amount) {
    const unbooked = { kind: 'lost_beyond_hold', booked: existing.amount, reported: report.amount } as const;
    return { kind: 'applied', dispute: booked, unbooked };
  }
  return { kind: 'applied', dispute: booked };
}

/**
 * When dispute `dispute` (just booked lost) on a payment of an invoice took cash the invoice had
 * given to the customer's credit already for want of a gateway step (`cash_credited`,
 * billing/credit-notes.ts `cashCreditedTwice`: Stripe KWD 1000 paid, a prorate cancellation refunded
 * 660 and credited 7, then the 340 left disputed and lost: the customer has those 7 twice, as credit
 * and in the chargeback), raises a `cash_credited_given_back_twice` exception for a person, once per
 * dispute: the chargeback cannot be refused, and whether to take the credit back is theirs to decide
 * (a dispute is a claim, not a refund billhook can book as that credit paid back). Details (minor
 * units): `invoice`, `dispute`, `cash_credited`, `twice`. Not on a gateway that pays a lost dispute
 * as a refund (`lostDisputePaidAsRefund`: PayPal): the refund that pays it takes those back from the
 * customer's credit and says so (billing/credit-notes.ts `issueCreditNote`). Read under the
 * invoice's lock (`recordDispute` takes it), after the dispute is booked.
 */
async function cashCreditedDisputed(
  work: UnitOfWork,
  transaction: TransactionRow,
  dispute: DisputeRow,
): Promise<void> {
  // A gateway that pays a lost dispute as a refund (PayPal): that refund takes it back from the
  // credit and says so (payments/refunds.ts `cashCreditedTwiceException`), the same money said once.
  if (!transaction.invoice_id || capabilitiesOf(transaction.gateway).lostDisputePaidAsRefund) return;
  const invoice = await work.trx
    .selectFrom('invoices')
    .selectAll()
    .where('id', '=', transaction.invoice_id)
    .executeTakeFirstOrThrow();
  if (invoice.cash_credited === 0n) return;
  const disputed = await disputedAway(work.trx, invoice.id);
  // What this dispute took (it counts in `disputed` now, unless a refund carries it: then nothing).
  const took = upTo(dispute.amount, disputed);
  const twice = cashCreditedTwice(invoice, disputed - took, took, took);
  if (twice === 0n) return;
  const c = invoice.currency;
  await raiseException(work, {
    kind: 'cash_credited_given_back_twice',
    gateway: transaction.gateway,
    transactionId: transaction.id,
    occurrence: dispute.id,
    gatewayAccount: transaction.gateway_account,
    message: `dispute ${dispute.id} on ${transaction.id} was lost for ${dispute.amount} ${c}, of which ${twice} ${c} invoice ${invoice.id} had already given to the customer's credit because the gateway takes ${c} only on a step (its cash_credited ${invoice.cash_credited}): the customer has those ${twice} ${c} twice, as credit and in the chargeback. Recover them (take them off the customer's credit if it still holds them) or write them off`,
    details: { invoice: invoice.id, dispute: dispute.id, cash_credited: invoice.cash_credited, twice },
  });
}

/**
 * The id billhook gives the dispute of a reversal (a chargeback) that came after the merchant won the
 * dispute `gatewayDisputeId` on the same payment (`recordDispute`): `<gatewayDisputeId>:reversal`.
 */
export function reversalDisputeId(gatewayDisputeId: string): string {
  return `${gatewayDisputeId}:reversal`;
}

/** The dispute `gatewayDisputeId` of `gateway` (its id at the gateway), if billhook has it. */
export function findDispute(
  trx: Kysely<Database>,
  gateway: DisputeRow['gateway'],
  gatewayDisputeId: string,
): Promise<DisputeRow | undefined> {
  return trx
    .selectFrom('disputes')
    .selectAll()
    .where('gateway', '=', gateway)
    .where('gateway_dispute_id', '=', gatewayDisputeId)
    .executeTakeFirst();
}
