import { type Kysely, sql } from 'kysely';
import type { PgBoss } from 'pg-boss';
import { askAccountCurrencies, clientForAccount, type GatewayClients } from '../accounts/clients.ts';
import { recordActivity } from '../activities/activities.ts';
import {
  disputeHolds,
  issueCreditNote,
  overpaymentDisputeHold,
  overpaymentGivenBack,
  overpaymentShare,
  type RefundSplit,
  voidCreditNote,
} from '../billing/credit-notes.ts';
import {
  cancellationReach,
  creditCashRest,
  returnInvoiceCredit,
  type WholeRefund,
  wholeRefund,
} from '../billing/credit-returns.ts';
import { availableCredit, creditAvailability, lockCustomerCredit } from '../billing/customer-credit.ts';
import { gatewayPaymentMethod, getPaymentMethod } from '../billing/customers.ts';
import {
  capturedAmount,
  cashRoom,
  invoicePayments,
  type RefundPart,
  refundable,
  refundedInFlight,
  refundRooms,
  totalRoom,
} from '../billing/invoice-payment.ts';
import { applyRefund, lockInvoice, reverseRefund } from '../billing/invoices.ts';
import { periodCreditToCustomer } from '../billing/proration.ts';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type {
  CreditNoteRow,
  Database,
  InvoiceRow,
  RefundRow,
  RefundStatus,
  TransactionRow,
} from '../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { type NewException, raiseException, resolveRefundExceptions } from '../exceptions/exceptions.ts';
import {
  type AskedCurrencies,
  accountKey,
  assertAccountCurrency,
  assertGatewayCanTake,
  gatewayStep,
} from '../gateways/currencies.ts';
import type { GatewayName, RefundOutcome } from '../gateways/types.ts';
import { chart } from '../ledger/chart.ts';
import { entryPostings, postEntry } from '../ledger/journal.ts';
import { entryKeys, type RefundMovement, refundReversed, refundSucceeded } from '../ledger/movements.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { upTo } from '../money/amount.ts';
import { settleLostDisputeByRefund, syncClaimHolds } from './disputes.ts';
import { resplitOverpayment } from './overpayment-shares.ts';
import { enqueueRefundRetry } from './refund-queue.ts';
import { lockPayments } from './transactions.ts';

/** A refund's result as learned from a gateway response or a webhook. */
export interface RefundResult {
  status: RefundStatus;
  gatewayRefundId?: string;
  failureCode?: string;
  failureMessage?: string;
}

/**
 * Forward-only refund transitions. `succeeded → failed` is allowed because a gateway can report a
 * refund failed after it first succeeded (Stripe: https://docs.stripe.com/refunds#failed-refunds);
 * the posting is then reversed. The reverse never happens, so every delivery order converges.
 */
const NEXT: Readonly<Record<RefundStatus, readonly RefundStatus[]>> = {
  pending: ['unknown', 'succeeded', 'failed'],
  unknown: ['pending', 'succeeded', 'failed'],
  succeeded: ['failed'],
  failed: [],
};

/** What recording a refund result did. */
export type RefundRecordOutcome = { kind: 'applied' | 'duplicate' | 'stale'; refund: RefundRow };

/** Finds a refund by the gateway's id, else by our reference (`re_…`). */
export async function findRefund(
  db: Kysely<Database>,
  gateway: GatewayName,
  gatewayRefundId: string | undefined,
  reference: string | undefined,
): Promise<RefundRow | undefined> {
  if (gatewayRefundId) {
    const row = await db
      .selectFrom('refunds')
      .selectAll()
      .where('gateway', '=', gateway)
      .where('gateway_refund_id', '=', gatewayRefundId)
      .executeTakeFirst();
    if (row) return row;
  }
  if (!reference) return undefined;
  return db
    .selectFrom('refunds')
    .selectAll()
    .where('id', '=', reference)
    .where('gateway', '=', gateway)
    .executeTakeFirst();
}

/**
 * Applies a refund result inside `work`, forward-only. Success of a refund of an invoice issues its
 * credit note (billing/credit-notes.ts) and posts `re_…:succeeded` once (`refundPostings`: debit the
 * customer's credit for what it pays back of an overpayment and for what it takes back of the change
 * credit the customer already has beyond what the invoice's period kept (`issueCreditNote`'s split),
 * refunds and tax payable pro rata for the rest, credit the gateway's clearing account; an
 * `overpayment_credit_spent` exception when the overpayment's debit exceeds what the customer's credit
 * still held, counting the entries this unit posted and has not written yet:
 * `overpaymentCreditShortfall`; a `refund_exceeds_change_credit` exception whenever change credit is
 * taken back: `changeCreditTakenBackException`), updates the
 * invoice and, where the refund is the money of a dispute already booked lost, takes that loss back
 * (`settleLostDisputeByRefund`); a later
 * failure voids the credit note, posts `re_…:reversed` (the same postings negated) and gives the
 * amount back. A refund of customer credit debits their credit account instead.
 */
export async function recordRefundResult(
  work: UnitOfWork,
  refundId: string,
  result: RefundResult,
): Promise<RefundRecordOutcome> {
  await work.joinLedgerWriters();
  const peek = await work.trx
    .selectFrom('refunds')
    .select('invoice_id')
    .where('id', '=', refundId)
    .executeTakeFirst();
  if (!peek) throw new NotFoundError('refund', refundId);
  const invoice = peek.invoice_id ? await lockInvoice(work, peek.invoice_id) : undefined;
  const refund = await work.trx
    .selectFrom('refunds')
    .selectAll()
    .where('id', '=', refundId)
    .forUpdate()
    .executeTakeFirstOrThrow();
  if (refund.status === result.status) return { kind: 'duplicate', refund };
  if (!NEXT[refund.status].includes(result.status)) return { kind: 'stale', refund };
  const updated = await work.trx
    .updateTable('refunds')
    .set({
      status: result.status,
      gateway_refund_id: result.gatewayRefundId ?? refund.gateway_refund_id,
      failure_code: result.failureCode ?? null,
      failure_message: result.failureMessage ?? null,
      updated_at: new Date(),
    })
    .where('id', '=', refundId)
    .returningAll()
    .executeTakeFirstOrThrow();
  await refundActivity(work, updated, `refund.${result.status}`);
  if (result.status === 'succeeded') {
    const short =
      invoice && refund.kind === 'payment'
        ? await overpaymentCreditShortfall(work, invoice, refund.amount, refund.id)
        : undefined;
    if (short) await raiseException(work, overpaymentCreditSpent(refund, short));
    const split =
      invoice && refund.kind === 'payment' ? await issueCreditNote(work, invoice, refund) : undefined;
    if (invoice && split && split.takenBack > 0n) {
      await work.trx
        .updateTable('refunds')
        .set({ change_credit_taken_back: split.takenBack })
        .where('id', '=', refund.id)
        .execute();
      const change = split.takenBack - split.cashCreditedTwice;
      if (change > 0n) {
        await raiseException(
          work,
          await changeCreditTakenBackException(work, invoice, refund, { ...split, takenBack: change }),
        );
      }
      if (split.cashCreditedTwice > 0n) {
        await raiseException(work, await cashCreditedTwiceException(work, invoice, refund, split));
      }
    }
    await postEntry(
      work,
      refundSucceeded(
        refundMovement(
          refund,
          invoice,
          split && { note: split.note, creditPaidBack: split.overpayment + split.takenBack },
        ),
      ),
    );
    // A lost dispute this refund pays is carried by it from here on (`settleLostDisputeByRefund`), so
    // the status counts that money once, as this refund, not as the dispute too.
    await settleLostDisputeByRefund(work, updated);
    // An open PayPal claim this refund pays: PayPal paid it out of the claim's hold.
    await syncClaimHolds(work, refund.transaction_id);
    // The part of its period's change credit it carries counts as its credit back (`givenBackStatus`).
    if (invoice) {
      await applyRefund(
        work,
        invoice,
        refund.amount,
        (await periodCreditToCustomer(work.trx, invoice)).total,
      );
    }
  }
  if (result.status === 'failed' && refund.status === 'succeeded') {
    const note =
      invoice && refund.kind === 'payment' ? await voidCreditNote(work, invoice, refund) : undefined;
    const split =
      invoice && refund.kind === 'payment'
        ? {
            note,
            creditPaidBack: await creditPaidBackBy(work.trx, refund, invoice.customer_id, note),
          }
        : undefined;
    await postEntry(work, refundReversed(refundMovement(refund, invoice, split)));
    // An open PayPal claim whose hold it spent holds its amount again.
    await syncClaimHolds(work, refund.transaction_id);
    if (invoice) {
      await reverseRefund(
        work,
        invoice,
        refund.amount,
        (await periodCreditToCustomer(work.trx, invoice)).total,
      );
      // What it paid back of the overpayment is not refunded any more: a chargeback lost meanwhile
      // gave it back in cash (`resplitOverpayment`).
      if (refund.kind === 'payment') {
        await resplitOverpayment(work, invoice.id, entryKeys.refundReversed(refund.id));
      }
    }
    if (refund.change_credit_taken_back > 0n) {
      for (const kind of ['refund_exceeds_change_credit', 'cash_credited_given_back_twice'] as const) {
        await resolveRefundExceptions(
          work,
          refund.id,
          kind,
          `refund ${refund.id} failed after succeeding: the ${refund.change_credit_taken_back} ${refund.currency} it took back is the customer's credit again (re_…:reversed gives it back), nothing to recover or tell them`,
        );
      }
    }
  }
  return { kind: 'applied', refund: updated };
}

/**
 * What succeeded refund `refund` of an invoice of customer `customerId` paid back of the customer's
 * credit (an overpayment, change credit taken back), minor units ≥ 0: the debit of the customer's
 * credit account in its `re_…:succeeded` entry (0 when it posted none). A reversal reads it there
 * rather than computing `overpaymentShare` and `changeCreditTakenBack` again, whose answers the
 * invoice's later refunds change: it undoes exactly what the success posted. An entry not written yet
 * (posted earlier in this deferring unit of work: a batch of webhooks with both the success and the
 * failure) was posted by `issueCreditNote`'s split: the refund less its credit note (`note`, voided
 * now; undefined: none).
 */
async function creditPaidBackBy(
  trx: Kysely<Database>,
  refund: RefundRow,
  customerId: string,
  note: CreditNoteRow | undefined,
): Promise<bigint> {
  const rows = await entryPostings(trx, entryKeys.refundSucceeded(refund.id));
  if (rows.length === 0) return refund.amount - (note?.total ?? 0n);
  const credit = rows.find((row) => row.code === chart.customerCredit(customerId).code);
  return credit && credit.amount > 0n ? credit.amount : 0n;
}

/**
 * What a succeeded refund moves (ledger/movements.ts `refundSucceeded`): a refund of customer credit,
 * a refund of an invoice split by `split` (its credit note and what it pays back of the customer's
 * credit, minor units: an overpayment, change credit taken back; none for a refund made before credit
 * notes existed), or a refund of a payment without invoice.
 */
function refundMovement(
  refund: RefundRow,
  invoice: InvoiceRow | undefined,
  split: { note: CreditNoteRow | undefined; creditPaidBack: bigint } | undefined,
): RefundMovement {
  const common = {
    refundId: refund.id,
    gateway: refund.gateway,
    gatewayAccount: refund.gateway_account,
    currency: refund.currency,
    amount: refund.amount,
  };
  if (refund.kind === 'customer_credit')
    return { ...common, kind: 'customer_credit', customerId: refund.customer_id ?? '' };
  if (!invoice) return { ...common, kind: 'payment' };
  return {
    ...common,
    kind: 'invoice',
    customerId: invoice.customer_id,
    creditPaidBack: split?.creditPaidBack ?? 0n,
    creditNote: split?.note,
  };
}

/**
 * Commits a `pending` refund row against a succeeded transaction, inside `work`, on the transaction's
 * gateway account (a refund reported by a webhook too: money goes back through the account that took
 * it). The transaction's invoice is locked (`lockInvoice`) before its refundable amount is read: every
 * refund of an invoice's payments takes that lock first (by hand, a cancellation's, a credit refund's,
 * one made in the gateway's dashboard and reported by webhook), and refunds in flight count against
 * the refundable amount, so concurrent refunds never exceed what was paid. A refund billhook will
 * send (no `gatewayRefundId`) is bounded too by what disputes took of the payment and hold or lost
 * (`refundable`, `billhook`: a chargeback gave the customer that money back); one a gateway reported
 * (`gatewayRefundId`: made in its dashboard, or paying a lost dispute) is not (`reported`: the money
 * has moved). A payment without an invoice is locked itself (`lockPayments`; a credit refund takes it
 * before the customer's credit).
 * @param amount minor units; defaults to everything still refundable
 * @param creditOf a customer id: the refund pays back that customer's credit (`customer_credit`,
 * no invoice) instead of part of the transaction's invoice
 * @throws ValidationError when `amount` exceeds what is refundable; AmountNotRepresentable (422) when
 * billhook would send it and the gateway cannot take it exactly (`assertGatewayCanTake`)
 */
export async function createRefund(
  work: UnitOfWork,
  transaction: TransactionRow,
  input: { amount?: bigint; reason?: string; gatewayRefundId?: string; creditOf?: string },
): Promise<RefundRow> {
  // Under the invoice's lock, so a refund committed meanwhile is counted: a dashboard refund's webhook
  // used to read the room before any lock, and one of billhook's in flight could pass the same room.
  // A payment without an invoice (a legacy row or an import: a credit refund's candidate) under its
  // own row's lock instead.
  const invoice = transaction.invoice_id ? await lockInvoice(work, transaction.invoice_id) : undefined;
  if (!invoice) await lockPayments(work, [transaction.id]);
  const reported = input.gatewayRefundId !== undefined;
  let available = await refundable(work.trx, transaction, reported ? 'reported' : 'billhook');
  // Cash of the invoice given to the customer's credit for want of a gateway step (`cash_credited`)
  // went back already: a refund billhook sends of the invoice never gives it back a second time
  // (Stripe KWD 1000 paid, 660 refunded and 7 credited: at most 333 more, not the payment's 340).
  let stepCredited = '';
  if (!reported && !input.creditOf && invoice && invoice.cash_credited > 0n) {
    const cap = await cashRoom(work.trx, invoice);
    if (cap < available) {
      available = cap;
      stepCredited = `, ${invoice.cash_credited} of its invoice given to the customer's credit already (below the gateway's step)`;
    }
  }
  const amount = input.amount ?? available;
  if (amount <= 0n || amount > available) {
    // What disputes took of it (open, or lost and carried by no refund): named when they bound it.
    const disputed = reported ? 0n : (await refundable(work.trx, transaction, 'reported')) - available;
    const disputes =
      disputed > 0n && !stepCredited ? `, ${disputed} of it taken by disputes open or lost` : '';
    throw new ValidationError('refund exceeds the paid amount', {
      amount: `at most ${available > 0n ? available : 0n} can be refunded (paid ${capturedAmount(transaction)} ${transaction.currency}${disputes}${stepCredited})`,
    });
  }
  // A refund billhook will send (not one the gateway reported, which has its id) is refused before its
  // row exists when the gateway would misread or refuse the amount: invoice and credit refunds alike.
  if (input.gatewayRefundId === undefined) {
    assertGatewayCanTake(transaction.gateway, amount, transaction.currency);
    if (!input.creditOf && invoice) await assertOverpaymentCreditLeft(work, invoice, amount);
  }
  const refund = await work.trx
    .insertInto('refunds')
    .values({
      id: newId('re'),
      transaction_id: transaction.id,
      invoice_id: input.creditOf ? null : transaction.invoice_id,
      // The customer it is about: whose credit a credit refund pays back; for a payment's refund, the
      // payment's customer, else its invoice's (migration 0061 filled the rows made before).
      customer_id: input.creditOf ?? transaction.customer_id ?? invoice?.customer_id ?? null,
      ...(input.creditOf ? { kind: 'customer_credit' as const } : {}),
      gateway: transaction.gateway,
      gateway_account: transaction.gateway_account,
      gateway_refund_id: input.gatewayRefundId ?? null,
      amount,
      currency: transaction.currency,
      status: 'pending',
      reason: input.reason ?? null,
      // Billhook's own (no gateway id yet): never a PayPal claim's money (`claimRefundCameFirst`).
      sent_by_billhook: input.gatewayRefundId === undefined,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await refundActivity(work, refund, 'refund.created');
  return refund;
}

/**
 * What a refund of `amount` (minor units) on locked `invoice` would pay back of the invoice's
 * overpayment that is no longer the customer's credit; undefined when none. A refund of an invoice
 * gives back its overpayment first (`overpaymentShare`), debiting the customer's credit by that share
 * when it succeeds: a duplicate payment's credit spent meanwhile on later invoices would be left in
 * debit for good. The share comes after what the invoice's refunds in flight (pending, unknown) pay
 * back of the overpayment when they succeed and what its open disputes would take back of it if lost
 * (`held`: `overpaymentDisputeHold`); it is checked against `availableCredit` (`left`), which already
 * holds back what every refund in flight pays back of the customer's credit (this invoice's, their
 * other invoices', their credit refunds) and what open disputes of their overpaid invoices hold of it
 * (`heldByDisputes`, naming `disputes`), under the customer's credit lock, taken after the invoice's
 * (the order every writer takes them in).
 * @param excluding the refund of the invoice that `amount` is, already recorded and no longer in
 * flight (checked as it succeeds, `recordRefundResult`): not counted in what was given back, and no
 * `held`: its success is booked as `issueCreditNote` splits it (the overpayment to whichever refund
 * succeeds first), so the check counts exactly that share, against the credit there less credit
 * refunds in flight only (`availableCredit` holds `credit_refunds`): the refunds of overpaid invoices
 * still in flight may yet fail, and the one whose success leaves the credit in debit is flagged
 * @returns `share` (of this refund, > 0), `held` and `left` (also what could be refunded now without
 * exceeding the credit left), `heldByDisputes` (of the customer's credit, by open disputes) and
 * `availableWithoutDisputes` (the credit left were they won), minor units of the invoice's
 * `currency`, and those `disputes`
 */
async function overpaymentCreditShortfall(
  work: UnitOfWork,
  invoice: InvoiceRow,
  amount: bigint,
  excluding?: string,
): Promise<
  | {
      share: bigint;
      held: bigint;
      left: bigint;
      currency: string;
      heldByDisputes: bigint;
      disputes: string[];
      availableWithoutDisputes: bigint;
    }
  | undefined
> {
  // Not overpaid (the usual invoice): nothing to read.
  if (overpaymentShare(invoice, 0n, amount) === 0n) return undefined;
  const given = await overpaymentGivenBack(work.trx, invoice, excluding);
  let held = 0n;
  if (excluding === undefined) {
    const refunding = overpaymentShare(invoice, given, await refundedInFlight(work.trx, invoice.id));
    held =
      refunding + overpaymentDisputeHold(invoice, given, refunding, await openDisputed(work.trx, invoice.id));
  }
  const share = overpaymentShare(invoice, given + held, amount);
  if (share === 0n) return undefined;
  await lockCustomerCredit(work.trx, invoice.customer_id);
  const holds = excluding === undefined ? 'all' : 'credit_refunds';
  const {
    available: left,
    heldByDisputes,
    disputes,
    availableWithoutDisputes,
  } = await creditAvailability(work, invoice.customer_id, invoice.currency, holds);
  if (share <= left) return undefined;
  return {
    share,
    held,
    left,
    currency: invoice.currency,
    heldByDisputes,
    disputes,
    availableWithoutDisputes,
  };
}

/**
 * The sum of the amounts of the disputes that hold (billing/credit-notes.ts `disputeHolds`: open,
 * funds withdrawn and not decided; or a PayPal claim lost whose refund is still to come) of invoice
 * `invoiceId`'s payments, minor units of its currency ≥ 0: what their loss, or the refund paying it,
 * may take back of its overpayment first (`overpaymentDisputeHold`). Read under the invoice's lock.
 */
async function openDisputed(trx: Kysely<Database>, invoiceId: string): Promise<bigint> {
  const row = await trx
    .selectFrom('disputes as d')
    .innerJoin('transactions as t', 't.id', 'd.transaction_id')
    .select(sql<string>`coalesce(sum(d.amount), 0)::text`.as('amount'))
    .where('t.invoice_id', '=', invoiceId)
    .where(disputeHolds())
    .executeTakeFirstOrThrow();
  return BigInt(row.amount);
}

/**
 * Refuses a refund billhook is about to send (by hand, a cancellation's part) of `amount` on locked
 * `invoice` whose overpayment share is no longer the customer's credit (`overpaymentCreditShortfall`).
 * A refund reported by the gateway (its dashboard) cannot be refused, the money has moved: its success
 * raises an exception for a person instead (`recordRefundResult`). One of billhook's holds its share
 * of the credit from here until it settles (`availableCredit`: no invoice applies it, no other refund
 * pays it back).
 * @throws ConflictError `credit_held_by_dispute` when disputes hold the customer's credit it needs
 * (their release would cover it: `availableWithoutDisputes`; naming them and what can be refunded
 * now), else `overpayment_credit_spent`, with the amounts
 */
async function assertOverpaymentCreditLeft(
  work: UnitOfWork,
  invoice: InvoiceRow,
  amount: bigint,
): Promise<void> {
  const short = await overpaymentCreditShortfall(work, invoice, amount);
  if (!short) return;
  const { share, held, left, currency, heldByDisputes, disputes, availableWithoutDisputes } = short;
  // Held by disputes only when their release would cover it: credit spent beyond that is spent.
  if (heldByDisputes > 0n && share <= availableWithoutDisputes) {
    throw new ConflictError(
      'credit_held_by_dispute',
      `a refund of ${amount} ${currency} on invoice ${invoice.id} would first pay back ${share} ${currency} of its overpayment (what its payments brought beyond what it asked, held as the customer's credit), after the ${held} ${currency} its refunds in flight and open disputes hold of it, but only ${left} ${currency} of their credit is available: ${heldByDisputes} ${currency} of it is held by open disputes (${disputes.join(', ')}) of payments of their overpaid invoices, whose loss takes that overpayment back (won, it is theirs again; a PayPal claim lost holds it until the refund paying it comes). Nothing changed; refund at most ${left} ${currency} now, or again once the disputes are decided`,
    );
  }
  throw new ConflictError(
    'overpayment_credit_spent',
    `a refund of ${amount} ${currency} on invoice ${invoice.id} would first pay back ${share} ${currency} of its overpayment (what its payments brought beyond what it asked, held as the customer's credit)${held > 0n ? `, after the ${held} its refunds in flight pay back` : ''}, but only ${left} ${currency} of their credit is left: the rest was spent on later invoices or is held by refunds in flight (of this invoice, of their other overpaid invoices, of their credit). Nothing changed; refund at most ${left} ${currency} now`,
  );
}

/**
 * The `overpayment_credit_spent` exception of a refund that succeeded (money moved: a refund made in
 * the gateway's dashboard, which held no credit before it was reported, or one whose held credit
 * such a refund took meanwhile) paying back more of its invoice's overpayment than the customer's
 * credit still held (less credit refunds in flight: `short.left`): their credit account is left in
 * debit, for a person to recover or write off.
 */
function overpaymentCreditSpent(refund: RefundRow, short: { share: bigint; left: bigint }): NewException {
  return {
    kind: 'overpayment_credit_spent',
    gateway: refund.gateway,
    gatewayAccount: refund.gateway_account,
    transactionId: refund.transaction_id,
    refundId: refund.id,
    message: `refund ${refund.id} of ${refund.amount} ${refund.currency} on invoice ${refund.invoice_id} paid back ${short.share} of its overpayment (the customer's credit), but only ${short.left} of that credit was left: the customer's credit is in debit by ${short.share - short.left}; recover it from the customer or write it off`,
  };
}

/**
 * The `refund_exceeds_change_credit` exception of succeeded refund `refund` of locked `invoice` that
 * gave back more than the invoice's period kept (`split.takenBack` > 0: billhook refuses such a
 * refund by hand, `roomAfterChangeCredit`; one made in the gateway's dashboard cannot be refused, the
 * money has moved, and one billhook sent gets here when a dashboard refund succeeded while it was in
 * flight: the take-back counts only succeeded refunds, so it falls on whichever success leaves the
 * period beyond what it kept): that part is the credit the period's subscription changes already gave the
 * customer for time it paid for, taken back from their credit (`recordRefundResult` debits it), so
 * the customer gets back what they paid once, not that credit again. Read under the customer's credit
 * lock, before the refund's entry is posted: what their credit still held for it (`availableCredit`
 * less credit refunds in flight, less what this refund pays back of an overpayment first); what it
 * did not hold leaves their credit in debit, for a person to recover or write off. Either way a
 * person tells the customer (their credit is lower than they were told) and checks at the gateway.
 * Details (minor units): `taken_back`, `credit_left` (what their credit held for it), `in_debit`.
 * Resolved automatically when the refund fails after succeeding (its reversal gives the credit back).
 */
async function changeCreditTakenBackException(
  work: UnitOfWork,
  invoice: InvoiceRow,
  refund: RefundRow,
  split: RefundSplit,
): Promise<NewException> {
  const { left, inDebit, outcome } = await creditTakenBack(work, invoice, split.overpayment, split.takenBack);
  const c = refund.currency;
  const sale = refund.amount - split.overpayment - split.takenBack;
  return {
    kind: 'refund_exceeds_change_credit',
    gateway: refund.gateway,
    gatewayAccount: refund.gateway_account,
    transactionId: refund.transaction_id,
    refundId: refund.id,
    message: `refund ${refund.id} of ${refund.amount} ${c} on invoice ${invoice.id} (billhook refuses such a refund by hand: made at the gateway, or in flight while one made there succeeded) gave back more than the invoice's period kept: ${split.takenBack} ${c} of it is the credit this period's subscription changes had already given the customer for time they paid for, so it is booked as that credit paid back in cash (no revenue or tax given back again)${sale > 0n ? `, the other ${sale} as a refund of the sale` : ''}; ${outcome}`,
    details: { taken_back: split.takenBack, credit_left: left, in_debit: inDebit },
  };
}

/**
 * What of `amount` (minor units > 0 of `invoice`'s currency) a refund takes back from the customer's
 * credit their credit still held, after `before` (what the same refund pays back of it first), read
 * under the customer's credit lock before the refund's entry is posted (`availableCredit` less credit
 * refunds in flight): `left` is taken from what it held, `inDebit` (= amount − left) leaves their
 * credit in debit; `outcome` says which, for the exception's message.
 */
async function creditTakenBack(
  work: UnitOfWork,
  invoice: InvoiceRow,
  before: bigint,
  amount: bigint,
): Promise<{ left: bigint; inDebit: bigint; outcome: string }> {
  await lockCustomerCredit(work.trx, invoice.customer_id);
  const available = await availableCredit(work, invoice.customer_id, invoice.currency, 'credit_refunds');
  const left = upTo(available - before, amount);
  const inDebit = amount - left;
  const c = invoice.currency;
  const outcome =
    inDebit === 0n
      ? `all ${amount} was still their credit and is taken back: tell the customer their credit is ${amount} ${c} lower`
      : `their credit held only ${left} of it (the rest was spent on later invoices or refunded): their credit is in debit by ${inDebit} ${c}; recover it from the customer or write it off`;
  return { left, inDebit, outcome };
}

/**
 * The `cash_credited_given_back_twice` exception of succeeded refund `refund` of locked `invoice`
 * that gave back again cash the invoice had given to the customer's credit for want of a gateway step
 * (`split.cashCreditedTwice` > 0, billing/credit-notes.ts `cashCreditedTwice`: Stripe KWD 1000 paid,
 * a prorate cancellation refunded 660 and credited 7, then 340 refunded in Stripe's dashboard; billhook
 * refuses such a refund by hand, `createRefund`, but one made at the gateway cannot be refused, the
 * money has moved). That part is booked as the customer's credit paid back in cash (their credit
 * account debited, no revenue or tax given back again: `recordRefundResult`), so the customer has it
 * once. Read under the customer's credit lock, before the refund's entry is posted: what their
 * credit still held for it (`availableCredit` less credit refunds in flight, less what this refund
 * pays back of an overpayment and of change credit first); what it did not hold (spent on a later
 * invoice, refunded) leaves their credit in debit, for a person to recover or write off. Details
 * (minor units): `invoice`, `cash_credited`, `twice`, `credit_left`, `in_debit`. Resolved
 * automatically when the refund fails after succeeding.
 */
async function cashCreditedTwiceException(
  work: UnitOfWork,
  invoice: InvoiceRow,
  refund: RefundRow,
  split: RefundSplit,
): Promise<NewException> {
  const twice = split.cashCreditedTwice;
  const before = split.overpayment + split.takenBack - twice;
  const { left, inDebit, outcome } = await creditTakenBack(work, invoice, before, twice);
  const c = refund.currency;
  return {
    kind: 'cash_credited_given_back_twice',
    gateway: refund.gateway,
    gatewayAccount: refund.gateway_account,
    transactionId: refund.transaction_id,
    refundId: refund.id,
    message: `refund ${refund.id} of ${refund.amount} ${c} on invoice ${invoice.id} (made at the gateway: billhook refuses it by hand) gave back again ${twice} ${c} of the ${invoice.cash_credited} ${c} the invoice had already given to the customer's credit because the gateway takes ${c} only on a step (cash_credited), so those ${twice} are booked as that credit paid back in cash (no revenue or tax given back again); ${outcome}`,
    details: {
      invoice: invoice.id,
      cash_credited: invoice.cash_credited,
      twice,
      credit_left: left,
      in_debit: inDebit,
    },
  };
}

/**
 * After refund `refund` made outside billhook (the gateway's dashboard: reconcile/apply.ts records
 * it) succeeded, raises an `invoice_credit_kept` exception for a person when it left its invoice
 * with all its cash back (`wholeRefund`'s `cashLeft` 0: refunded, or taken by disputes) while
 * customer credit that paid it is still applied to it and could go back (`wholeRefund`'s `credit`
 * > 0), on an invoice a whole refund by hand would have given that credit back for, or that
 * `POST /v1/invoices/:id/credit/return` gives back: one no cancellation's refund reaches
 * (`cancellationReach` `none` or `past`: not the current period's of a running subscription, whose
 * cancellation gives it back, nor the last of one whose cancellation gave back with `full` or
 * `prorate`). The dashboard refunded a payment, not the invoice: whether the customer is to have
 * that credit back too is the merchant's decision, not a fact billhook has, so nothing is given
 * back here (a 2500 March invoice paid 1250 by credit and 1250 by card, its card refunded whole at
 * Stripe: the 1250 of credit still pays it, and the exception names the request that gives it
 * back). Details (minor units of the invoice's currency): `invoice`, `credit`. Read under the
 * invoice's lock the caller's `recordRefundResult` took.
 */
export async function flagCreditKept(work: UnitOfWork, refund: RefundRow): Promise<void> {
  if (refund.status !== 'succeeded' || refund.kind !== 'payment' || !refund.invoice_id) return;
  const invoice = await work.trx
    .selectFrom('invoices')
    .selectAll()
    .where('id', '=', refund.invoice_id)
    .executeTakeFirstOrThrow();
  if (invoice.credit_applied - invoice.credit_returned <= 0n) return;
  const reach = (await cancellationReach(work.trx, invoice)).kind;
  if (reach !== 'none' && reach !== 'past') return;
  const whole = await wholeRefund(work.trx, invoice);
  if (whole.cashLeft > 0n || whole.credit <= 0n) return;
  const c = invoice.currency;
  await raiseException(work, {
    kind: 'invoice_credit_kept',
    gateway: refund.gateway,
    gatewayAccount: refund.gateway_account,
    transactionId: refund.transaction_id,
    refundId: refund.id,
    message: `refund ${refund.id} of ${refund.amount} ${c}, made at the gateway, gave back all the cash of invoice ${invoice.id}, but ${whole.credit} ${c} of the customer credit that paid it still pays it (a whole refund by hand gives that back as credit too; a refund at the gateway gives back a payment only). If the customer is to have the whole invoice back, POST /v1/invoices/${invoice.id}/credit/return gives the ${whole.credit} ${c} back to their credit; else resolve this`,
    details: { invoice: invoice.id, credit: whole.credit },
  });
}

/** Logs a change of a refund (activities) inside `work.trx`. */
function refundActivity(work: UnitOfWork, refund: RefundRow, action: string): Promise<void> {
  return recordActivity(work, {
    resourceType: 'refund',
    resourceId: refund.id,
    action,
    customerId: refund.customer_id,
    data: {
      transaction: refund.transaction_id,
      invoice: refund.invoice_id,
      amount: refund.amount,
      currency: refund.currency,
      status: refund.status,
    },
  });
}

function refundResultOf(outcome: RefundOutcome): RefundResult {
  switch (outcome.status) {
    case 'succeeded':
    case 'pending':
      return { status: outcome.status, gatewayRefundId: outcome.gatewayRefundId };
    case 'declined':
      return { status: 'failed', failureCode: outcome.code, failureMessage: outcome.message };
    case 'unknown':
      return { status: 'unknown', failureCode: 'unknown_outcome', failureMessage: outcome.message };
  }
}

/**
 * How a refund is sent: the first time, when an unknown answer enqueues the refund's `invoice.refund`
 * retry in the transaction that records it, or as that retry's repeat (same reference).
 */
export type RefundSend = { kind: 'first'; boss: PgBoss } | { kind: 'repeat' };

/** What a refund by hand asks for (`POST /v1/invoices/:id/refund`). */
export interface InvoiceRefundInput {
  /**
   * Minor units of the invoice's currency; omitted: everything still refundable: with `transaction`,
   * that payment's whole room capped by what the invoice can still give back (`wholeRoom`); without,
   * the invoice's, so only when one payment holds all of it (`paymentToRefund`). Never more than the
   * invoice's period kept when its subscription changes gave the customer credit for paid time
   * (`roomAfterChangeCredit`). Omitted with `transaction` omitted too, an invoice that is not a
   * period invoice (a change's, an add-on's, a one-off), or is a past period's (renewed since:
   * `cancellationReach` `past`), also gives back the customer credit applied to what it kept, as
   * credit (`wholeRefund`, `returnInvoiceCredit`).
   */
  amount?: bigint;
  reason?: string;
  /** The id (`txn_…`) of the invoice's succeeded gateway payment to refund; omitted: `paymentToRefund` picks one. */
  transaction?: string;
}

/** A refund committed `pending` and the payment it goes back through: sent once committed (`sendRefund`). */
export interface PreparedRefund {
  refund: RefundRow;
  transaction: TransactionRow;
}

/**
 * Refunds a PAID or PARTIALLY_REFUNDED invoice through one of its gateway payments (`input.transaction`,
 * or the one `paymentToRefund` picks): the refund row is committed `pending` first, then that
 * payment's gateway is called with the refund's id as idempotency key; an unknown answer (timeout,
 * 5xx) is committed with its `invoice.refund` job. One call, one refund: an invoice paid by several
 * gateway payments gives back more than one payment's room in several calls. A period invoice whose
 * subscription changes gave the customer credit for time it paid for (a downgrade's proration credit)
 * gives back at most what it took in (cash and customer credit applied), less its refunds, less that
 * credit, and never more than its cash left (`roomAfterChangeCredit`): the amount omitted is that much.
 * The amount and the payment omitted, an invoice that no cancellation gives back (not a period
 * invoice: a prorated change's, an add-on's, a one-off; or a past period's, its subscription renewed
 * since, `cancellationReach` `past`: 2500 paid 1250 by credit and 1250 by card gives back 1250 to the
 * card and 1250 to the credit, before the card's 1250 only) also gives back, as credit, the customer
 * credit that paid what it kept (`wholeRefund`: min(kept − cash, credit applied − credit returned);
 * `returnInvoiceCredit`: its credit note and `inv_…:credit_given_back`), committed with the cash
 * refund: an upgrade's 937 paid 625 by the credit its period's downgrade gave and 312 by card gives
 * back 312 to the card and 625 to the customer's credit (before, 312 only: the period invoice carries
 * that downgrade credit, so the 625 came back nowhere).
 * The amount and the payment omitted, no cash left to refund but such credit left: 409
 * `only_credit_left`, naming `POST /v1/invoices/:id/credit/return` (billing/credit-returns.ts
 * `returnCreditByHand`), which gives it back without a refund.
 * @throws ConflictError `invoice_not_paid`, `only_credit_left`, `no_gateway_payment`, `gateway_not_configured`,
 * `gateway_account_disabled` (the payment's account); ValidationError (field `transaction`) when it
 * names no succeeded gateway payment of the invoice, (field `amount`) when the amount exceeds what
 * the payment can refund or no single payment can take it (its message names the call per payment:
 * `{"transaction": "txn_…"}` with its room); ConflictError `overpayment_credit_spent` (`createRefund`),
 * `refund_exceeds_change_credit` (field `amount`: beyond what the period's change credit to the
 * customer leaves, `roomAfterChangeCredit`); AmountNotRepresentable (422 `amount_not_representable`)
 * when the payment's account says it does not process its currency (field `currency`,
 * `assertAccountCurrency`), or when the gateway cannot take the amount exactly
 * (gateways/currencies.ts) — an amount asked; an
 * amount omitted that billhook works out (what the period kept after its change credit, a payment's
 * whole room within it, named or not) and the payment's gateway takes only on a step is refunded the largest
 * on-step amount not above it, the rest given to the customer's credit (`creditCashRest`,
 * `credited`): Stripe KWD 1000 paid, a downgrade credited 322, 678 kept → 670 refunded, 8 credited
 * @returns the refund as recorded after the gateway's answer, and `credited`, minor units ≥ 0, what
 * went to the customer's credit for want of a gateway step (0 but for an amount omitted)
 */
export async function refundInvoice(
  db: Db,
  actor: Actor,
  boss: PgBoss,
  gateways: GatewayClients,
  invoiceId: string,
  input: InvoiceRefundInput,
): Promise<{ refund: RefundRow; credited: bigint }> {
  const owner = await db
    .selectFrom('invoices')
    .select('customer_id')
    .where('id', '=', invoiceId)
    .executeTakeFirst();
  const accounts = await askRefundAccounts(db, gateways, owner?.customer_id);
  const { refund, transaction, credited } = await inUnitOfWork(db, { actor }, (work) =>
    prepareInvoiceRefund(work, gateways, invoiceId, input, accounts),
  );
  return {
    refund: await sendRefund(db, actor, gateways, refund, transaction, { kind: 'first', boss }),
    credited,
  };
}

/**
 * What the gateway accounts of customer `customerId`'s succeeded gateway payments say they process
 * (`askAccountCurrencies`: Authorize.Net getMerchantDetails, an HTTP call of up to
 * `GATEWAY_TIMEOUT_MS` until cached), asked before a refund's unit of work locks anything, so no row
 * lock is held across the call; `prepareInvoiceRefund` and `prepareRefunds` check each payment's
 * currency against it under the locks. An account that cannot be taken (disabled, not configured) is
 * unknown: the unit of work refuses it in its order.
 * @param customerId undefined (no such invoice or subscription): nothing asked
 */
export async function askRefundAccounts(
  db: Db,
  gateways: GatewayClients,
  customerId: string | undefined,
): Promise<AskedCurrencies> {
  const asked = new Map<string, readonly string[] | undefined>();
  if (customerId === undefined) return asked;
  const accounts = await db
    .selectFrom('transactions')
    .select(['gateway', 'gateway_account'])
    .distinct()
    .where('customer_id', '=', customerId)
    .where('status', '=', 'succeeded')
    .execute();
  for (const { gateway, gateway_account } of accounts)
    asked.set(
      accountKey(gateway, gateway_account),
      await askAccountCurrencies(gateways, gateway, gateway_account),
    );
  return asked;
}

/**
 * The first half of `refundInvoice`, inside `work`: locks the invoice, checks it is paid, checks the
 * payment `input.transaction` names (`paymentToRefund`: its field's 422 comes before any amount's
 * refusal), bounds the amount by what its period's change credit to the customer leaves
 * (`roomAfterChangeCredit`), picks the gateway payment to refund when none is named
 * (`paymentToRefund`), checks its account can refund, and inserts the
 * refund `pending` (`createRefund`). The caller commits, then sends it (`sendRefund`, kind `first`).
 * @returns the refund row and the payment it refunds
 * @throws as `refundInvoice`
 */
async function prepareInvoiceRefund(
  work: UnitOfWork,
  gateways: GatewayClients,
  invoiceId: string,
  input: InvoiceRefundInput,
  accounts: AskedCurrencies,
): Promise<PreparedRefund & { credited: bigint }> {
  const invoice = await lockInvoice(work, invoiceId);
  if (invoice.status !== 'PAID' && invoice.status !== 'PARTIALLY_REFUNDED') {
    throw new ConflictError(
      'invoice_not_paid',
      `invoice ${invoiceId} is ${invoice.status}; only a paid invoice can be refunded`,
    );
  }
  // A payment named is checked first: a bad `transaction` is its field's 422, whatever the amount.
  const named = input.transaction === undefined ? undefined : await paymentToRefund(work.trx, invoice, input);
  // What all of it would give back: cash, and the customer credit that paid it, as credit.
  const whole = await wholeRefund(work.trx, invoice);
  // All of it asked (no amount, no payment named: a payment named is that payment's refund, a
  // duplicate's say) of an invoice no cancellation gives back (not a period invoice: a change's, an
  // add-on's, a one-off): its customer credit goes back with its cash.
  // A past period's invoice (renewed since: `cancellationReach` `past`) is no cancellation's either.
  // Not a change's or add-on's invoice of the last period a full or prorate cancellation refunded:
  // what it still holds paid for the time used (`cancellationReach` `refunded`).
  const reach =
    input.amount === undefined && input.transaction === undefined
      ? (await cancellationReach(work.trx, invoice)).kind
      : undefined;
  const wholeWithCredit = reach === 'past' || (invoice.period_index === null && reach === 'none');
  // With no cash its payments can refund but credit left to give back, that credit has its own
  // request (no cash refund to make).
  if (wholeWithCredit && whole.cash === 0n && whole.credit > 0n) {
    throw new ConflictError(
      'only_credit_left',
      `invoice ${invoiceId} has no cash left that its gateway payments can refund, but ${whole.credit} ${invoice.currency} of the customer credit that paid it is left to give back: POST /v1/invoices/${invoiceId}/credit/return gives it back to the customer's credit. Nothing changed`,
    );
  }
  // What the period's change credit to the customer leaves to refund (undefined: no such credit).
  const left = roomAfterChangeCredit(invoice, whole, input.amount);
  const asked = input.amount ?? left;
  const transaction = named ?? (await paymentToRefund(work.trx, invoice, { ...input, amount: asked }));
  await clientForAccount(gateways, transaction.gateway, transaction.gateway_account);
  // A currency the account said, before the lock, it does not process (Authorize.Net): refused
  // before anything exists.
  assertAccountCurrency(
    accounts.get(accountKey(transaction.gateway, transaction.gateway_account)),
    transaction.gateway,
    transaction.gateway_account,
    transaction.currency,
    transaction.id,
  );
  let amount = asked;
  // A payment named without an amount: its whole room, within what the change credit leaves.
  if (input.amount === undefined && input.transaction !== undefined) {
    const room = await wholeRoom(work.trx, invoice, transaction);
    amount = left !== undefined && left < room ? left : room;
  }
  // An amount billhook worked out (none asked) that the payment's gateway takes only on a step
  // (Stripe KWD 678 kept after a downgrade's 322 credit): the largest on-step part to the card, the
  // rest to the customer's credit (PRODUCT §11: not rounded away, not refused). An amount asked is
  // the caller's: refused 422 when off the step (`createRefund`).
  let credited = 0n;
  const step = gatewayStep(transaction.gateway, invoice.currency)?.step ?? 1n;
  // Nothing asked, no payment named, no change credit: the payment's whole room within the
  // invoice's, as `createRefund` would take it, worked out here so it is taken down to the step too
  // (Stripe KWD 1230 paid, a cancellation gave 6 to the credit: 1224 left → 1220 + 4 credited, where
  // it was 422 amount_not_representable).
  if (input.amount === undefined && amount === undefined && step > 1n) {
    amount = await wholeRoom(work.trx, invoice, transaction);
  }
  if (input.amount === undefined && amount !== undefined) {
    const onStep = amount - (amount % step);
    if (onStep > 0n && onStep < amount) {
      credited = amount - onStep;
      amount = onStep;
    }
  }
  const refund = await createRefund(work, transaction, { amount, reason: input.reason });
  if (credited > 0n) await creditCashRest(work, invoice.id, credited, input.reason ?? null);
  // The customer credit that paid what it kept goes back as credit, in the unit that commits the
  // cash refund (the cash may still fail at the gateway: asked again, it is cash only, the credit
  // being back already). A period invoice's credit comes back through its cancellation's refund
  // (billing/cancellation.ts), or `POST /v1/invoices/:id/credit/return`.
  if (wholeWithCredit && whole.credit > 0n) {
    await returnInvoiceCredit(work, invoice.id, whole.credit, input.reason ?? null);
  }
  return { refund, transaction, credited };
}

/**
 * What a refund by hand may still give back in cash of locked `invoice` when prorated changes of its
 * period gave the customer credit for time it paid for (`periodCreditToCustomer`: a downgrade after
 * the invoice was paid; the rest of a credit that cleared it while partly paid), from `whole`
 * (`wholeRefund`, billing/credit-returns.ts). What the period kept (`kept`) is what the invoice took
 * in, its cash paid and the customer credit applied to it (less what of that credit was given back,
 * `credit_returned`), less what its refunds gave back or hold (succeeded, pending, unknown; not what they took back of
 * that change credit, beyond what the period kept: `changeCreditTakenBackOf`), less what disputes
 * took of its payments and hold or lost (`disputedAway`: a chargeback gave the customer that money
 * back), less the part of that change credit it carries (up to all it took in less its refunds of the sale: an
 * overpayment stays refundable), whatever became of the credit since (held, spent on later invoices,
 * refunded): the customer already has it back, so a whole refund gives back what the period kept, as
 * a cancellation's `full` refund does (it owes the period net of its changes' credits:
 * billing/cancellation.ts). Its cash part is never more than the cash paid less its refunds and
 * disputes, nor,
 * the amount omitted, than what the invoice's gateway payments can still refund together (the rest
 * of what it kept, of an invoice that is not a period invoice, goes back as the customer credit that
 * paid it: `prepareInvoiceRefund`). 2000 paid, a downgrade credits 500 of it to the customer: 1500
 * can be refunded by hand, not 2000. 2500 paid 1250 by customer credit and 1250 by card, a
 * downgrade credits 625: the period kept 1875, of which the 1250 of cash can be refunded by hand (a
 * cancellation's `full` gives 1250 in cash and 625 of the credit back); if 625 of the customer's
 * credit was then refunded in cash through that card (a customer-credit refund, no refund of the
 * invoice: its room 1250 → 625), an omitted amount gives back 625.
 * @param amount what the refund asks, minor units (undefined: all that is left)
 * @returns what an omitted amount gives back in cash (`whole.cash`: min(kept, cash left, the sum of
 * its gateway payments' rooms); `whole.cashLeft`, not capped by the rooms, for an amount asked),
 * minor units ≥ 0 of the invoice's currency (an amount asked within `kept` passes: beyond the cash
 * or its payment's room, the payment refuses it, 422 on `amount`: `createRefund`); undefined when
 * the period gave the customer no such credit (the refund is as it always was: its payment's room,
 * `createRefund`)
 * @throws ConflictError `refund_exceeds_change_credit` (field `amount`, naming the credit and the
 * amounts) when `amount` is more than `kept`, or, omitted, no cash is left to give back; nothing
 * changes
 */
function roomAfterChangeCredit(
  invoice: InvoiceRow,
  whole: WholeRefund,
  amount: bigint | undefined,
): bigint | undefined {
  const { credited, inFlight, refunded, disputed, kept, cashLeft: most } = whole;
  if (credited <= 0n) return undefined;
  if (amount !== undefined && amount <= kept) return most;
  if (amount === undefined && most > 0n) return whole.cash;
  const c = invoice.currency;
  const what = amount === undefined ? 'a whole refund' : `a refund of ${amount} ${c}`;
  const byCredit =
    invoice.credit_applied > 0n
      ? `, ${invoice.credit_applied} ${c} by customer credit${invoice.credit_returned > 0n ? ` (${invoice.credit_returned} of it given back)` : ''}`
      : '';
  const creditFields =
    invoice.credit_applied > 0n
      ? `, credit applied ${invoice.credit_applied}${invoice.credit_returned > 0n ? `, credit returned ${invoice.credit_returned}` : ''}`
      : '';
  const message = `${what} of invoice ${invoice.id} would give back more than its period kept: it was paid ${invoice.amount_paid} ${c}${byCredit}, its refunds gave back ${invoice.amount_refunded}${inFlight > 0n ? ` and hold ${inFlight} in flight` : ''}${disputed > 0n ? `, disputes took ${disputed} (open or lost)` : ''}, and ${credited} ${c} of the credit this period's subscription changes gave the customer for time it paid for counts against it (held, spent or refunded: theirs already), so at most ${most} ${c} can be refunded by hand. Nothing changed`;
  throw new ConflictError('refund_exceeds_change_credit', message, {
    amount: `at most ${most} ${c} (paid ${invoice.amount_paid}${creditFields}, refunded ${refunded}${disputed > 0n ? `, disputed ${disputed}` : ''}, change credit to the customer ${credited})`,
  });
}

/**
 * What a refund by hand naming payment `transaction` without an amount gives back, minor units: its
 * whole room (`refundable`), capped by what locked `invoice` can still give back (paid, less its
 * refunds succeeded or in flight); 0 when nothing (`createRefund` then refuses, field `amount`).
 */
async function wholeRoom(
  trx: Kysely<Database>,
  invoice: InvoiceRow,
  transaction: TransactionRow,
): Promise<bigint> {
  const invoiceRoom = await cashRoom(trx, invoice);
  // min(its room, the invoice's), on bigints (Math.min takes numbers only), and never below 0.
  let whole = await refundable(trx, transaction);
  if (whole > invoiceRoom) whole = invoiceRoom;
  return whole > 0n ? whole : 0n;
}

/**
 * Which of `invoice`'s succeeded gateway payments (`invoicePayments`, newest first) a refund by hand
 * goes back through, read under the invoice's lock: the one `input.transaction` names; else the only
 * one (`createRefund` then bounds the amount, as for any single payment); else the newest whose room
 * (`refundable`) covers `input.amount`, or, when the amount is omitted, the whole room of the invoice
 * (the sum of its payments' rooms, so only a payment holding all of it qualifies).
 * @throws ConflictError `no_gateway_payment` when no gateway took a payment of the invoice;
 * ValidationError (field `transaction`) when `input.transaction` is not one of its succeeded gateway
 * payments (unknown, another invoice's, not succeeded); ValidationError (field `amount`) when no
 * single payment can take the amount: its message gives each payment's room (minor units)
 */
async function paymentToRefund(
  trx: Kysely<Database>,
  invoice: InvoiceRow,
  input: InvoiceRefundInput,
): Promise<TransactionRow> {
  const payments = await invoicePayments(trx, invoice.id);
  if (input.transaction !== undefined) {
    const named = payments.find((t) => t.id === input.transaction);
    if (!named) {
      throw new ValidationError('no such payment of the invoice', {
        transaction: `${input.transaction} is not a succeeded gateway payment of invoice ${invoice.id}`,
      });
    }
    return named;
  }
  const [newest, ...older] = payments;
  if (!newest) {
    throw new ConflictError('no_gateway_payment', `invoice ${invoice.id} has no gateway payment to refund`);
  }
  if (older.length === 0) return newest;
  const rooms = await refundRooms(trx, payments);
  const total = totalRoom(rooms);
  const amount = input.amount ?? total;
  const fits = rooms.find(({ room }) => room > 0n && room >= amount);
  if (fits) return fits.transaction;
  const each = rooms.map(({ transaction, room }) => `${transaction.id} can refund ${room}`).join(', ');
  const calls = rooms
    .filter(({ room }) => room > 0n)
    .map(({ transaction, room }) => `{"transaction": "${transaction.id}"} (up to ${room})`)
    .join(', ');
  // Each payment refunded by name gives back cash only: the credit that paid the invoice has its own request.
  const credit =
    invoice.period_index === null && invoice.credit_applied > invoice.credit_returned
      ? `, then POST /v1/invoices/${invoice.id}/credit/return for the customer credit that paid it`
      : '';
  const how = `POST /v1/invoices/${invoice.id}/refund once per payment, naming it: ${calls}${credit}`;
  throw new ValidationError('no single payment can take the refund', {
    amount:
      amount > total
        ? `at most ${total} ${invoice.currency} can be refunded, across ${payments.length} payments (${each}): one request refunds one payment; ${how}`
        : `no single payment can refund ${amount} ${invoice.currency} (${each}; ${total} in all): one request refunds one payment; ${how}`,
  });
}

/**
 * Commits one `pending` refund per part (`createRefund`, as `reason`; of customer credit `creditOf`
 * when given), each on its payment's gateway account, checked first (`clientForAccount`), inside
 * `work`, whose caller locked the payments' invoices. The caller commits, then sends them (`sendRefunds`).
 * @returns the refunds with their payments, in the parts' order
 * @throws as `createRefund`; ConflictError `gateway_not_configured`, `gateway_account_disabled`;
 * AmountNotRepresentable (422, field `currency`) when a payment's account says it does not process its
 * currency (`assertAccountCurrency`: Authorize.Net getMerchantDetails; not when it cannot be asked)
 * @param accounts what the payments' accounts said they process, asked before `work` locked anything
 * (`askRefundAccounts`); an account missing from it is not refused
 */
export async function prepareRefunds(
  work: UnitOfWork,
  gateways: GatewayClients,
  parts: readonly RefundPart[],
  input: { reason: string; creditOf?: string },
  asked: AskedCurrencies,
): Promise<PreparedRefund[]> {
  const prepared: PreparedRefund[] = [];
  for (const { transaction, amount } of parts) {
    await clientForAccount(gateways, transaction.gateway, transaction.gateway_account);
    assertAccountCurrency(
      asked.get(accountKey(transaction.gateway, transaction.gateway_account)),
      transaction.gateway,
      transaction.gateway_account,
      transaction.currency,
      transaction.id,
    );
    prepared.push({ refund: await createRefund(work, transaction, { ...input, amount }), transaction });
  }
  return prepared;
}

/**
 * Sends committed refunds one after the other (`sendRefund`, kind `first`), in their order.
 * @returns each refund as recorded after its gateway's answer, in the same order
 */
export async function sendRefunds(
  db: Db,
  actor: Actor,
  boss: PgBoss,
  gateways: GatewayClients,
  prepared: readonly PreparedRefund[],
): Promise<RefundRow[]> {
  const sent: RefundRow[] = [];
  for (const { refund, transaction } of prepared) {
    sent.push(await sendRefund(db, actor, gateways, refund, transaction, { kind: 'first', boss }));
  }
  return sent;
}

/**
 * Sends a committed refund to the gateway account of its payment (the refund's `gateway_account`), with the refund id as reference (and
 * idempotency key where the gateway has one), and records the outcome (forward-only).
 * @returns the refund as recorded now: succeeded, pending, failed, or unknown after a timeout or 5xx
 */
export async function sendRefund(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  refund: RefundRow,
  transaction: TransactionRow,
  send: RefundSend,
): Promise<RefundRow> {
  const method = await getPaymentMethod(db, transaction.payment_method_id ?? '');
  // A repeat settles a refund already sent: it goes to its account even if disabled since.
  const client = await clientForAccount(gateways, refund.gateway, refund.gateway_account, {
    includeDisabled: send.kind === 'repeat',
  });
  const outcome = await client.refund({
    reference: refund.id,
    chargeReference: transaction.id,
    gatewayTransactionId: transaction.gateway_transaction_id ?? '',
    amount: refund.amount,
    currency: refund.currency,
    paymentMethod: gatewayPaymentMethod(method),
    reason: refund.reason ?? undefined,
    repeat: send.kind === 'repeat',
  });
  return inUnitOfWork(db, { actor }, async (work) => {
    const recorded = await recordRefundResult(work, refund.id, refundResultOf(outcome));
    if (send.kind === 'first' && recorded.kind === 'applied' && recorded.refund.status === 'unknown')
      await enqueueRefundRetry(work.trx, send.boss, refund.id);
    return recorded.refund;
  });
}
