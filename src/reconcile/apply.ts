import type { Kysely } from 'kysely';
import type { Database, TransactionRow } from '../db/schema.ts';
import { ValidationError } from '../errors.ts';
import type { PaymentEvent } from '../gateways/types.ts';
import { recordDispute } from '../payments/disputes.ts';
import { createRefund, findRefund, recordRefundResult } from '../payments/refunds.ts';
import { findTransaction, recordChargeResult } from '../payments/transactions.ts';
import type { ExceptionKind } from './exceptions.ts';

/** What applying one event did. `not_found` means the entity is not known yet: retry later. */
export type ApplyResult =
  | { kind: 'applied' | 'duplicate' | 'stale'; transactionId: string }
  | { kind: 'not_found'; message: string }
  | { kind: 'exception'; exception: ExceptionKind; message: string; transactionId?: string };

const CHARGE_STATUS = {
  'charge.succeeded': 'succeeded',
  'charge.failed': 'failed',
  'charge.pending': 'pending',
  'charge.canceled': 'canceled',
} as const;

const REFUND_STATUS = {
  'refund.succeeded': 'succeeded',
  'refund.failed': 'failed',
  'refund.pending': 'pending',
} as const;

const DISPUTE_STATUS = { 'dispute.opened': 'open', 'dispute.won': 'won', 'dispute.lost': 'lost' } as const;

function mismatch(event: PaymentEvent, transaction: TransactionRow, amount: bigint): ApplyResult | undefined {
  if (event.currency !== transaction.currency) {
    return {
      kind: 'exception',
      exception: 'currency_mismatch',
      transactionId: transaction.id,
      message: `event ${event.gatewayEventId} is in ${event.currency}, transaction ${transaction.id} in ${transaction.currency}`,
    };
  }
  if (event.amount !== amount) {
    return {
      kind: 'exception',
      exception: 'amount_mismatch',
      transactionId: transaction.id,
      message: `event ${event.gatewayEventId} says ${event.amount}, the ledger expects ${amount} (${event.currency} minor units)`,
    };
  }
  return undefined;
}

async function applyCharge(
  trx: Kysely<Database>,
  event: PaymentEvent,
  status: (typeof CHARGE_STATUS)[keyof typeof CHARGE_STATUS],
): Promise<ApplyResult> {
  const found = await findTransaction(trx, event.gateway, event.gatewayTransactionId, event.reference);
  if (!found)
    return {
      kind: 'not_found',
      message: `no transaction for ${event.gatewayTransactionId ?? event.reference}`,
    };
  const problem = mismatch(event, found, found.amount);
  if (problem) return problem;
  const recorded = await recordChargeResult(trx, found.id, {
    status,
    gatewayTransactionId: event.gatewayTransactionId,
    failureCode: event.failureCode,
    failureMessage: event.failureMessage,
  });
  if (recorded.kind === 'applied' && recorded.overpaid) {
    return {
      kind: 'exception',
      exception: 'duplicate_payment',
      transactionId: found.id,
      message: `transaction ${found.id} succeeded on invoice ${found.invoice_id}, which was already paid: refund it`,
    };
  }
  return { kind: recorded.kind, transactionId: found.id };
}

async function applyRefund(
  trx: Kysely<Database>,
  event: PaymentEvent,
  status: (typeof REFUND_STATUS)[keyof typeof REFUND_STATUS],
): Promise<ApplyResult> {
  let refund = await findRefund(trx, event.gateway, event.gatewayRefundId, event.reference);
  if (!refund) {
    // A refund made outside billhook (the gateway's dashboard): record it against its payment.
    const transaction = await findTransaction(trx, event.gateway, event.gatewayTransactionId, undefined);
    if (!transaction)
      return { kind: 'not_found', message: `no transaction for refund ${event.gatewayRefundId}` };
    if (transaction.status !== 'succeeded') {
      return {
        kind: 'not_found',
        message: `refund ${event.gatewayRefundId} on ${transaction.id}, which has not succeeded yet`,
      };
    }
    const problem = mismatch(event, transaction, event.amount);
    if (problem) return problem;
    try {
      refund = await createRefund(trx, transaction, {
        amount: event.amount,
        gatewayRefundId: event.gatewayRefundId,
      });
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      return {
        kind: 'exception',
        exception: 'refund_exceeds_paid',
        transactionId: transaction.id,
        message: `refund ${event.gatewayRefundId} of ${event.amount} exceeds what is refundable on ${transaction.id}`,
      };
    }
  }
  if (event.currency !== refund.currency || event.amount !== refund.amount) {
    return {
      kind: 'exception',
      exception: event.currency !== refund.currency ? 'currency_mismatch' : 'amount_mismatch',
      transactionId: refund.transaction_id,
      message: `event ${event.gatewayEventId} says ${event.amount} ${event.currency}, refund ${refund.id} is ${refund.amount} ${refund.currency}`,
    };
  }
  const recorded = await recordRefundResult(trx, refund.id, {
    status,
    gatewayRefundId: event.gatewayRefundId,
    failureCode: event.failureCode,
  });
  return { kind: recorded.kind, transactionId: refund.transaction_id };
}

async function applyDispute(
  trx: Kysely<Database>,
  event: PaymentEvent,
  status: (typeof DISPUTE_STATUS)[keyof typeof DISPUTE_STATUS],
): Promise<ApplyResult> {
  const transaction = await findTransaction(trx, event.gateway, event.gatewayTransactionId, event.reference);
  if (!transaction)
    return { kind: 'not_found', message: `no transaction for dispute ${event.gatewayDisputeId}` };
  if (transaction.status !== 'succeeded') {
    return {
      kind: 'not_found',
      message: `dispute ${event.gatewayDisputeId} on ${transaction.id}, which has not succeeded yet`,
    };
  }
  if (
    event.currency !== transaction.currency ||
    event.amount > transaction.amount ||
    !event.gatewayDisputeId
  ) {
    return {
      kind: 'exception',
      exception: event.currency !== transaction.currency ? 'currency_mismatch' : 'amount_mismatch',
      transactionId: transaction.id,
      message: `dispute ${event.gatewayDisputeId} of ${event.amount} ${event.currency} does not fit transaction ${transaction.id}`,
    };
  }
  const recorded = await recordDispute(trx, transaction, {
    gatewayDisputeId: event.gatewayDisputeId,
    status,
    amount: event.amount,
    reason: event.reason,
  });
  return { kind: recorded.kind, transactionId: transaction.id };
}

/**
 * Applies one canonical event to payments and the ledger inside `trx` (PRODUCT.md §3): matches the
 * transaction by the gateway's id or our reference, moves state forward only, posts each journal
 * entry at most once, and reports mismatches instead of posting them.
 */
export async function applyEvent(trx: Kysely<Database>, event: PaymentEvent): Promise<ApplyResult> {
  if (event.type in CHARGE_STATUS)
    return applyCharge(trx, event, CHARGE_STATUS[event.type as keyof typeof CHARGE_STATUS]);
  if (event.type in REFUND_STATUS)
    return applyRefund(trx, event, REFUND_STATUS[event.type as keyof typeof REFUND_STATUS]);
  return applyDispute(trx, event, DISPUTE_STATUS[event.type as keyof typeof DISPUTE_STATUS]);
}
