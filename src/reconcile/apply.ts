import { capturedAmount } from '../billing/invoice-payment.ts';
import type { RenewalPolicy } from '../billing/renewal.ts';
import type { DisputeRow, DisputeStatus, TransactionRow } from '../db/schema.ts';
import { ValidationError } from '../errors.ts';
import { duplicatePayment, type ExceptionKind } from '../exceptions/exceptions.ts';
import { capabilitiesOf } from '../gateways/registry.ts';
import type { PaymentEvent } from '../gateways/types.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { findDispute, recordDispute } from '../payments/disputes.ts';
import { createRefund, findRefund, flagCreditKept, recordRefundResult } from '../payments/refunds.ts';
import { capturedBeforeSettledShort, flagRefundAfterSettledShort } from '../payments/settled-short.ts';
import {
  findTransaction,
  forgetLockedAhead,
  lockTransactionsAhead,
  recordChargeResult,
} from '../payments/transactions.ts';
import { recordReportedVoid } from '../payments/voids.ts';
import {
  lockPartnerFees,
  matchStoredLines,
  recordSettlementLine,
  type SettlementAccount,
  unmatchedLine,
} from '../settlement/lines.ts';
import { recordPayout } from '../settlement/payouts.ts';

/** What applying one event did. `not_found` means the entity is not known yet: retry later. */
export type ApplyResult =
  | { kind: 'applied' | 'duplicate' | 'stale'; transactionId: string }
  | { kind: 'not_found'; message: string }
  | {
      kind: 'exception';
      exception: ExceptionKind;
      message: string;
      transactionId?: string;
      /** What the exception is about, by name (its `details`: `dispute` a `dp_…`, amounts in minor units). */
      details?: Record<string, unknown>;
      /**
       * The event names another gateway account's row than the delivery's (`otherAccount`): the
       * delivery came in on the wrong account's route, and the same event may still arrive on the
       * right one (the inbox dedupes per account: it is stored and applied there); its row retries
       * nothing (src/reconcile/process.ts `decide`).
       */
      otherAccount?: true;
    };

const CHARGE_STATUS = new Map([
  ['charge.succeeded', 'succeeded'],
  ['charge.failed', 'failed'],
  ['charge.pending', 'pending'],
  ['charge.canceled', 'canceled'],
] as const);

const REFUND_STATUS = new Map([
  ['refund.succeeded', 'succeeded'],
  ['refund.failed', 'failed'],
  ['refund.pending', 'pending'],
] as const);

const DISPUTE_STATUS = new Map([
  ['dispute.opened', 'open'],
  ['dispute.won', 'won'],
  ['dispute.lost', 'lost'],
  ['dispute.inquiry', 'inquiry'],
  ['dispute.inquiry_closed', 'inquiry_closed'],
] as const);

/**
 * An exception when the event's currency or amount differs from what the ledger holds for `subject`
 * (a transaction or a refund, on `transactionId`); `amountFits` decides what "differs" means.
 */
function mismatch(
  event: PaymentEvent,
  subject: { id: string; currency: string; amount: bigint },
  transactionId: string,
  amountFits: (event: bigint, ledger: bigint) => boolean = (a, b) => a === b,
): ApplyResult | undefined {
  const exception =
    event.currency !== subject.currency
      ? 'currency_mismatch'
      : amountFits(event.amount, subject.amount)
        ? undefined
        : 'amount_mismatch';
  if (!exception) return undefined;
  return {
    kind: 'exception',
    exception,
    transactionId,
    message: `event ${event.gatewayEventId} says ${event.amount} ${event.currency}; ${subject.id} is ${subject.amount} ${subject.currency} (minor units)`,
  };
}

/** A succeeded payment as `mismatch` compares it: with what it moved (`capturedAmount`) as its amount. */
function paidBy(payment: TransactionRow): { id: string; currency: string; amount: bigint } {
  return { id: payment.id, currency: payment.currency, amount: capturedAmount(payment) };
}

/** A gateway account as a person reads it: its `gwa_…` id, or the default account (null). */
const describeAccount = (account: string | null) => account ?? "the gateway's default account";

/**
 * An `unknown_entity` exception when `row` (a payment, refund or dispute: its `id` and its
 * `gateway_account`, null for the gateway's default account) is another gateway account's than the
 * delivery's (`context.gatewayAccount`), else undefined. A delivery is verified with its account's
 * secrets (PRODUCT.md §12), so it speaks for that account's money only: one naming another account's
 * row changes nothing, and is not retried (the row is known; it will not become this account's). A
 * person reads the event at both accounts. Marked `otherAccount` (its row retries nothing for its
 * other events: src/reconcile/process.ts `decide`); the same event on the row's own account's route
 * (one gateway account registered twice, while it moves) is still stored and applied there, as the
 * inbox dedupes per gateway account (migration 0044).
 * @param event the event that named the row
 * @param transactionId the payment the row is (or belongs to), for the exception
 */
function otherAccount(
  row: { id: string; gateway_account: string | null },
  event: PaymentEvent,
  context: ApplyContext,
  transactionId: string,
): ApplyResult | undefined {
  if (row.gateway_account === context.gatewayAccount) return undefined;
  return {
    kind: 'exception',
    exception: 'unknown_entity',
    transactionId,
    otherAccount: true,
    message:
      `${event.type} event ${event.gatewayEventId} was received for ${describeAccount(context.gatewayAccount)} ` +
      `but names ${row.id}, which is on ${describeAccount(row.gateway_account)}: nothing changed; ` +
      "a delivery speaks only for the account whose secret verified it (check the account's webhook endpoint at the gateway)",
  };
}

/**
 * The succeeded payment of the delivery's gateway account a refund or dispute event is about, or why
 * it cannot be applied yet, or (an `unmatchable` event) an `unknown_entity` exception at once: no
 * transaction will ever match it; one of another account is an `unknown_entity` exception too
 * (`otherAccount`).
 */
async function succeededPayment(
  work: UnitOfWork,
  event: PaymentEvent,
  context: ApplyContext,
  subject: string,
): Promise<TransactionRow | ApplyResult> {
  if (event.unmatchable) {
    return { kind: 'exception', exception: 'unknown_entity', message: `${subject}: ${event.unmatchable}` };
  }
  const transaction = await findTransaction(work, event.gateway, event.gatewayTransactionId, undefined);
  if (!transaction) return { kind: 'not_found', message: `no transaction for ${subject}` };
  const elsewhere = otherAccount(transaction, event, context, transaction.id);
  if (elsewhere) return elsewhere;
  if (transaction.status !== 'succeeded') {
    return { kind: 'not_found', message: `${subject} is on ${transaction.id}, which has not succeeded yet` };
  }
  return transaction;
}

/**
 * An exception when a charge event's currency or amount does not fit its transaction. The amount must
 * be the transaction's, except for a succeeded charge: one not recorded as succeeded yet, on a gateway
 * that captures partially (its capabilities' `partialCapture`), may report less than was charged but more than
 * nothing, which is what moved and is booked (PRODUCT.md §11); more is never booked. Once succeeded,
 * the event must report what was booked (`capturedAmount`): a different amount is for a person.
 */
function chargeMismatch(
  event: PaymentEvent,
  transaction: TransactionRow,
  status: 'succeeded' | 'failed' | 'pending' | 'canceled',
): ApplyResult | undefined {
  if (status !== 'succeeded') return mismatch(event, transaction, transaction.id);
  if (transaction.status === 'succeeded') {
    return mismatch(event, paidBy(transaction), transaction.id);
  }
  if (!capabilitiesOf(event.gateway).partialCapture) return mismatch(event, transaction, transaction.id);
  return mismatch(event, transaction, transaction.id, (moved, charged) => moved > 0n && moved <= charged);
}

/**
 * A charge event that reports succeeded payment `payment` (its `recordChargeResult` was `stale`: a
 * succeeded charge is final there) undone, or undefined when it is older news, left `stale`. Money
 * the gateway reports is what is booked (PRODUCT.md §11):
 * - canceled (a void of the captured charge before it settled, made at the gateway: Authorize.Net's
 *   Merchant Interface) is booked as billhook's own void (payments/voids.ts `recordReportedVoid`),
 *   once; one billhook's succeeded refund of the whole charge carries is `stale`; while that refund
 *   is pending or unknown it is `not_found` (retried: the void may be that refund), and on the
 *   queue's last try (`context.finalAttempt`) a `succeeded_charge_undone` exception; one that cannot
 *   be booked (a gateway that cannot void a captured charge, a partial refund or a dispute on it, an
 *   invoice refunded or closed meanwhile) is a `succeeded_charge_undone` exception for a person,
 *   changing nothing;
 * - failed, by a gateway whose charge events are its API's answer now (capabilities'
 *   `chargeEventsReadBack`: Authorize.Net's `settlementError`), is a `succeeded_charge_undone`
 *   exception, changing nothing: whether any money moved is for a person to find out. A snapshot's
 *   failure (Stripe, PayPal) delivered after the success stays `stale`: a PaymentIntent declined
 *   then re-confirmed reports both, in any order;
 * - pending is older news (a charge held for review, then captured): `stale`.
 */
async function succeededChargeUndone(
  work: UnitOfWork,
  event: PaymentEvent,
  context: ApplyContext,
  payment: TransactionRow,
  status: 'succeeded' | 'failed' | 'pending' | 'canceled',
): Promise<ApplyResult | undefined> {
  const booked = `${payment.id}, booked succeeded for ${capturedAmount(payment)} ${payment.currency}`;
  const undone = (reason: string): ApplyResult => ({
    kind: 'exception',
    exception: 'succeeded_charge_undone',
    transactionId: payment.id,
    message: `event ${event.gatewayEventId}: ${payment.gateway} reports ${booked}, ${reason}`,
    details: { transaction: payment.id, reported: status },
  });
  if (status === 'canceled') {
    await forgetLockedAhead(work);
    const voided = await recordReportedVoid(work, payment);
    if (voided.kind === 'waiting') {
      if (!context.finalAttempt) {
        return { kind: 'not_found', message: `event ${event.gatewayEventId} waits: ${voided.reason}` };
      }
      return undone(
        `as voided while ${voided.reason}, and it is still not answered: nothing changed; check at the ` +
          'gateway whether the refund was made as this void, and book what moved',
      );
    }
    if (voided.kind !== 'refused') return { kind: voided.kind, transactionId: payment.id };
    return undone(
      `as voided, which billhook cannot book as a void (${voided.reason}): nothing changed; ` +
        'check at the gateway what moved and book it',
    );
  }
  if (status === 'failed' && capabilitiesOf(payment.gateway).chargeEventsReadBack) {
    return undone(
      `as failed now (${event.failureCode ?? 'no code'}: ${event.failureMessage ?? 'no message'}): nothing ` +
        'changed; check at the gateway whether the money moved, and take the payment back if it did not',
    );
  }
  return undefined;
}

/**
 * Whether a succeeded charge event is the capture billhook booked before the payment's settlement
 * line(s) said less (payments/settled-short.ts: `amount_captured` lowered to what settled, its entry
 * booked: `capturedBeforeSettledShort`): a redelivered capture webhook of the amount booked then is
 * old news, not a second `amount_mismatch` (the settlement's own stays open): USD 100.00 captured,
 * 80.00 settled, a webhook of 100.00; or captured in part (Authorize.Net: 100.00 authorized, 60.00
 * captured), 50.00 settled, a webhook of 60.00. Any other amount is still a mismatch.
 */
async function bookedBeforeSettledShort(
  work: UnitOfWork,
  event: PaymentEvent,
  payment: TransactionRow,
  status: 'succeeded' | 'failed' | 'pending' | 'canceled',
): Promise<boolean> {
  if (status !== 'succeeded' || payment.status !== 'succeeded') return false;
  if (event.currency !== payment.currency || event.amount > payment.amount) return false;
  if (payment.amount_captured === null || event.amount <= payment.amount_captured) return false;
  return (await capturedBeforeSettledShort(work, payment)) === event.amount;
}

async function applyChargeEvent(
  work: UnitOfWork,
  event: PaymentEvent,
  context: ApplyContext,
  status: 'succeeded' | 'failed' | 'pending' | 'canceled',
): Promise<ApplyResult> {
  const found = await findTransaction(work, event.gateway, event.gatewayTransactionId, event.reference);
  if (!found)
    return {
      kind: 'not_found',
      message: `no transaction for ${event.gatewayTransactionId ?? event.reference}`,
    };
  const elsewhere = otherAccount(found, event, context, found.id);
  if (elsewhere) return elsewhere;
  const problem = chargeMismatch(event, found, status);
  if (problem && !(await bookedBeforeSettledShort(work, event, found, status))) return problem;
  const recorded = await recordChargeResult(
    work,
    found,
    {
      status,
      gatewayTransactionId: event.gatewayTransactionId,
      failureCode: event.failureCode,
      failureMessage: event.failureMessage,
      ...(status === 'succeeded' && event.amount < found.amount ? { amountCaptured: event.amount } : {}),
    },
    undefined,
    context.policy,
  );
  // Settlement lines of this payment recorded unmatched before it succeeded are its lines now.
  if (recorded.kind === 'applied' && recorded.transaction.status === 'succeeded') {
    await matchStoredLines(work, {
      gateway: found.gateway,
      gatewayAccount: found.gateway_account,
      gatewayTransactionIds: [recorded.transaction.gateway_transaction_id],
      references: [found.id],
    });
  }
  if (recorded.kind === 'stale' && recorded.transaction.status === 'succeeded') {
    const undone = await succeededChargeUndone(work, event, context, recorded.transaction, status);
    if (undone) return undone;
  }
  if (recorded.kind === 'applied' && recorded.overpaid) {
    const { message, details } = duplicatePayment(recorded.transaction, recorded.excess);
    return { kind: 'exception', exception: 'duplicate_payment', transactionId: found.id, message, details };
  }
  return { kind: recorded.kind, transactionId: found.id };
}

async function applyRefundEvent(
  work: UnitOfWork,
  event: PaymentEvent,
  context: ApplyContext,
  status: 'succeeded' | 'failed' | 'pending',
): Promise<ApplyResult> {
  let refund = await findRefund(work.trx, event.gateway, event.gatewayRefundId, event.reference);
  // Made outside billhook (the gateway's dashboard): recorded here.
  const outside = refund === undefined;
  if (refund) {
    const elsewhere = otherAccount(refund, event, context, refund.transaction_id);
    if (elsewhere) return elsewhere;
  } else {
    // A refund made outside billhook (the gateway's dashboard): record it against its payment, which
    // must be the delivery's account's.
    const payment = await succeededPayment(work, event, context, `refund ${event.gatewayRefundId}`);
    if ('kind' in payment) return payment;
    // Only with the gateway's refund id: a refund row without one is billhook's own, sent or not, and
    // the `refund.recover` sweep would repeat it (recoverUnansweredRefunds).
    if (!event.gatewayRefundId) {
      return {
        kind: 'exception',
        exception: 'unknown_entity',
        transactionId: payment.id,
        message: `a refund of ${event.amount} ${event.currency} (minor units) on ${payment.id} that billhook did not make, without the gateway's refund id`,
      };
    }
    const problem = mismatch(event, paidBy(payment), payment.id, (amount, paid) => amount <= paid);
    if (problem) return problem;
    try {
      refund = await createRefund(work, payment, {
        amount: event.amount,
        gatewayRefundId: event.gatewayRefundId,
      });
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      return {
        kind: 'exception',
        exception: 'refund_exceeds_paid',
        transactionId: payment.id,
        message: `refund ${event.gatewayRefundId} of ${event.amount} ${event.currency} (minor units) exceeds what is refundable on ${payment.id}`,
      };
    }
  }
  const problem = mismatch(event, refund, refund.transaction_id);
  if (problem) return problem;
  const recorded = await recordRefundResult(work, refund.id, {
    status,
    gatewayRefundId: event.gatewayRefundId,
    failureCode: event.failureCode,
  });
  // A refund billhook did not make gave back a payment, not the invoice: credit that paid it is kept.
  if (outside && recorded.kind === 'applied') await flagCreditKept(work, recorded.refund);
  // Settlement lines of this refund recorded unmatched before it moved (its line came first) are its
  // lines now; a refund line naming only the payment (SecurePay) too.
  if (recorded.kind === 'applied') {
    const payment = await work.trx
      .selectFrom('transactions')
      .select('gateway_transaction_id')
      .where('id', '=', refund.transaction_id)
      .executeTakeFirst();
    await matchStoredLines(work, {
      gateway: recorded.refund.gateway,
      gatewayAccount: recorded.refund.gateway_account,
      gatewayRefundIds: [recorded.refund.gateway_refund_id],
      references: [recorded.refund.id],
      gatewayTransactionIds: [payment?.gateway_transaction_id ?? null],
    });
    // A refund made at the gateway (reported pending first, or at once) that a settlement line
    // followed short may have been netted into.
    if (!recorded.refund.sent_by_billhook) await flagRefundAfterSettledShort(work, recorded.refund);
  }
  return { kind: recorded.kind, transactionId: refund.transaction_id };
}

/**
 * A dispute event on a succeeded payment, recorded by `recordDispute`. A dispute reported lost for
 * nothing (PayPal's `dispute_outcome.amount_refunded` of 0.00 with a buyer-favour outcome) is an
 * `amount_mismatch` exception for a person and records nothing: the dispute stays as it was, its hold
 * (if it was open) kept. PayPal documents `amount_refunded` as "the amount that either the merchant
 * or PayPal refunds the customer" (https://developer.paypal.com/docs/api/customer-disputes/v1/), so
 * a resolution for the buyer that gives the buyer nothing contradicts itself: billhook cannot tell
 * whether the hold came back or the amount is missing, and a dispute of 0 cannot be booked
 * (`disputes_amount_check`, zero postings), so releasing it would guess and refusing it would retry
 * forever. A person reads the dispute at PayPal and records the outcome. A dispute reported lost
 * for more than its open dispute withheld is recorded as `recordDispute` books it (the hold lost) and
 * is an `amount_mismatch` exception naming both amounts (`unbooked`): the gateway took the rest some
 * other way, which would otherwise sit in clearing without a word (`details` names the dispute, so a
 * report of it again raises nothing more: `recordDispute`).
 */
async function applyDisputeEvent(
  work: UnitOfWork,
  event: PaymentEvent,
  context: ApplyContext,
  status: DisputeStatus,
): Promise<ApplyResult> {
  const payment = await succeededPayment(work, event, context, `dispute ${event.gatewayDisputeId}`);
  if ('kind' in payment) return payment;
  // The gateway's dispute id is unique per gateway: one recorded on another account's payment is
  // not this delivery's to move (`recordDispute` would change it).
  const known = await findDispute(work.trx, event.gateway, event.gatewayDisputeId ?? event.gatewayEventId);
  const elsewhere = known && otherAccount(known, event, context, known.transaction_id);
  if (elsewhere) return elsewhere;
  const problem = mismatch(event, paidBy(payment), payment.id, (amount, paid) => amount <= paid);
  if (problem) return problem;
  if (status === 'lost' && event.amount === 0n) {
    return {
      kind: 'exception',
      exception: 'amount_mismatch',
      transactionId: payment.id,
      message:
        `event ${event.gatewayEventId} reports dispute ${event.gatewayDisputeId} on ${payment.id} lost for 0 ` +
        `${event.currency}: nothing recorded, any hold kept; check at the gateway what the buyer got`,
    };
  }
  const recorded = await recordDispute(work, payment, {
    gatewayDisputeId: event.gatewayDisputeId ?? event.gatewayEventId,
    status,
    amount: event.amount,
    reason: event.reason,
    reversal: event.reversal === true,
  });
  if (recorded.unbooked) {
    const { booked, reported } = recorded.unbooked;
    return {
      kind: 'exception',
      exception: 'amount_mismatch',
      transactionId: payment.id,
      message:
        `event ${event.gatewayEventId} reports dispute ${recorded.dispute.id} (${event.gatewayDisputeId}) on ` +
        `${payment.id} lost for ${reported} ${event.currency}, but it withheld ${booked}: ${booked} booked as lost, ` +
        `the other ${reported - booked} not booked; check at the gateway how it took them and book them`,
      details: { dispute: recorded.dispute.id, withheld: booked, lost: reported },
    };
  }
  // Settlement lines of this dispute recorded unmatched before billhook knew it (a PayPal T1201
  // swept before the chargeback's webhook) are its lines now.
  if (recorded.kind === 'applied') await matchLinesOfDispute(work, recorded.dispute);
  return { kind: recorded.kind, transactionId: payment.id };
}

/** `matchStoredLines` for a dispute just recorded: the lines naming it by the gateway's dispute id. */
async function matchLinesOfDispute(work: UnitOfWork, dispute: DisputeRow): Promise<void> {
  await matchStoredLines(work, {
    gateway: dispute.gateway,
    gatewayAccount: dispute.gateway_account,
    gatewayDisputeIds: [dispute.gateway_dispute_id],
  });
}

/** Where a stored webhook came from and whether the queue will try it again. */
export interface ApplyContext {
  /** The gateway account (`gwa_…`) the delivery was received for; null: the gateway's default account. */
  gatewayAccount: string | null;
  /** The queue's last try: what is still unknown is recorded for a person instead of retried. */
  finalAttempt: boolean;
  /**
   * The configuration's renewal policy (`BILL_SUSPENDED_SUBSCRIPTIONS`), under which a charge's
   * success that reinstates its subscription resumes it (billing/reinstate.ts); default: not billed.
   */
  policy?: RenewalPolicy;
}

/**
 * A settlement line (a charge's fee and net): recorded and booked once its charge, refund or dispute
 * is known to billhook; until then retried, and on the last try recorded unmatched for a person.
 */
async function applySettlementLine(
  work: UnitOfWork,
  event: PaymentEvent,
  context: ApplyContext,
): Promise<ApplyResult> {
  const line = event.settlementLine;
  if (!line) throw new Error(`event ${event.gatewayEventId} has no settlement line`);
  const account: SettlementAccount = { gateway: event.gateway, gatewayAccount: context.gatewayAccount };
  const recorded = await recordSettlementLine(work, account, line, null, {
    unmatched: context.finalAttempt ? 'record' : 'refuse',
  });
  if (recorded.kind === 'not_found') {
    return {
      kind: 'not_found',
      message: `${line.kind} line ${line.gatewayLineId} matches nothing in billhook yet`,
    };
  }
  if (recorded.kind === 'unmatched') {
    return {
      kind: 'exception',
      exception: 'settlement_line_unmatched',
      message: unmatchedLine(account, recorded.line, recorded).message,
    };
  }
  return { kind: recorded.kind, transactionId: recorded.line.transaction_id ?? recorded.line.id };
}

/** A payout report: recorded with its lines once they all match, or on the last try regardless. */
async function applyPayout(
  work: UnitOfWork,
  event: PaymentEvent,
  context: ApplyContext,
): Promise<ApplyResult> {
  const payout = event.payout;
  if (!payout) throw new Error(`event ${event.gatewayEventId} has no payout`);
  const recorded = await recordPayout(
    work,
    { gateway: event.gateway, gatewayAccount: context.gatewayAccount },
    payout,
    { acceptUnmatched: context.finalAttempt },
  );
  if (recorded.kind === 'not_found') return recorded;
  return { kind: recorded.kind, transactionId: recorded.payout.id };
}

/**
 * Locks, inside `work`, the transactions and invoices that the charge events among `events` are
 * about, the payments (by the gateway's id) and invoices of its dispute events that may move
 * funds (not an inquiry: `recordDispute` locks the invoice of those), of its refund events and of its
 * charge settlement lines (an event's line or a payout's: one settled short locks them, `recordSettledShort`), and those invoices'
 * subscriptions first, in three statements (`lockTransactionsAhead`), then the partner fee locks
 * of the payments its settlement lines are about, in one sorted order (`lockPartnerFees`), before
 * `applyEvent` applies them one by one. A batch thus holds the subscriptions of all those invoices
 * before any of them, as one unit must (billing/invoices.ts `lockInvoice`), and the invoices and
 * payments in id order, rather than waiting for a dispute's subscription, invoice or payment (a new
 * dispute's row keys its payment) while holding those of its charges: two batches crossing, each a
 * charge of one invoice and a dispute of the other's payment, deadlocked (40P01); so did two batches
 * each a charge of one invoice and a refund of the other's payment, when a refund event locked its
 * invoice only as it was applied (test/races/refund-lock-order.race.test.ts), and a batch refunding a
 * payment and a payout recording its charge line settled short (test/races/settled-short-lock-order.race.test.ts).
 */
export async function lockChargesAhead(work: UnitOfWork, events: readonly PaymentEvent[]): Promise<void> {
  await lockTransactionsAhead(work, [
    ...events.filter((event) => CHARGE_STATUS.has(event.type as 'charge.succeeded')),
    ...events
      .filter((event) => {
        const status = DISPUTE_STATUS.get(event.type as 'dispute.opened');
        return status !== undefined && status !== 'inquiry';
      })
      .map((event) => ({ gateway: event.gateway, gatewayTransactionId: event.gatewayTransactionId })),
    // A refund event's payment (by the gateway's id: its `reference` may be the refund's `re_…`).
    ...events
      .filter((event) => REFUND_STATUS.has(event.type as 'refund.succeeded'))
      .map((event) => ({ gateway: event.gateway, gatewayTransactionId: event.gatewayTransactionId })),
    // The payment of a charge line (its own, or one of a payout's), which a line settled short locks
    // with its invoice (`recordSettledShort`, settlement/lines.ts `lockChargeLinesAhead`).
    ...events.flatMap((event) =>
      [...(event.settlementLine ? [event.settlementLine] : []), ...(event.payout?.lines ?? [])]
        .filter((line) => line.kind === 'charge' && (line.gatewayTransactionId || line.reference))
        .map((line) => ({
          gateway: event.gateway,
          gatewayTransactionId: line.gatewayTransactionId,
          reference: line.reference,
        })),
    ),
  ]);
  for (const gateway of new Set(events.map((event) => event.gateway))) {
    const lines = events.flatMap((event) =>
      event.gateway === gateway && event.settlementLine ? [event.settlementLine] : [],
    );
    await lockPartnerFees(work, gateway, lines);
  }
}

/**
 * Applies one canonical event to payments and the ledger inside `work` (PRODUCT.md §3): matches the
 * transaction by the gateway's id or our reference, moves state forward only, posts each journal
 * entry at most once, and reports mismatches instead of posting them. A charge, refund or dispute
 * event moves only the money of the gateway account the delivery came for (`context.gatewayAccount`,
 * PRODUCT.md §12): one naming a payment, refund or dispute of another account is an `unknown_entity`
 * exception and changes nothing (`otherAccount`). Settlement lines and payouts (PRODUCT.md §13) go
 * to src/settlement/, on the gateway account the delivery came for.
 */
export async function applyEvent(
  work: UnitOfWork,
  event: PaymentEvent,
  context: ApplyContext,
): Promise<ApplyResult> {
  if (event.type === 'settlement.line') return applySettlementLine(work, event, context);
  if (event.type === 'payout.updated') return applyPayout(work, event, context);
  const charge = CHARGE_STATUS.get(event.type as 'charge.succeeded');
  if (charge) return applyChargeEvent(work, event, context, charge);
  // Refunds and disputes change transactions and invoices without taking rows locked ahead.
  await forgetLockedAhead(work);
  const refund = REFUND_STATUS.get(event.type as 'refund.succeeded');
  if (refund) return applyRefundEvent(work, event, context, refund);
  const dispute = DISPUTE_STATUS.get(event.type as 'dispute.opened');
  if (dispute) return applyDisputeEvent(work, event, context, dispute);
  throw new Error(`no reconciliation for event type ${event.type}`);
}
