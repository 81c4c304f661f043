import type { Logger } from 'pino';
import type { GatewayClients } from '../accounts/clients.ts';
import { claimInvoicesDue, releaseChargeLease } from '../billing/charge-schedule.ts';
import { eachLimited } from '../billing/each-limited.ts';
import { lockInvoice } from '../billing/invoices.ts';
import type { RenewalPolicy } from '../billing/renewal.ts';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import type { TransactionStatus } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import { flagDuplicatePayment } from '../exceptions/exceptions.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { AmountNotRepresentable } from '../money/gateway-amount.ts';
import { chargeInvoice, recordUnsendableCharge } from './charges.ts';
import {
  countFailedAttempt,
  countFailedAttempts,
  type DunningPolicy,
  type DunningStep,
  dunningPolicy,
  recordCollectionFailure,
  refusalNotRetried,
} from './dunning.ts';

/**
 * How long a claimed invoice is kept from other sweeps (ms). Its charge's outcome normally replaces
 * this `charge_at` at once (PAID clears it, a failure schedules the next retry); if the process dies
 * in between, or the outcome is still pending or unknown, the invoice comes due again after it, and
 * the one-attempt-in-flight rule refuses a second charge while the first is open.
 */
export const CLAIM_LEASE_MS = 10 * 60 * 1000;
const CLAIM_BATCH = 50;
const DEFAULT_CONCURRENCY = 4;

/** What the sweep did with one due invoice. */
export interface CollectionResult {
  invoiceId: string;
  /** The attempt's status; `failed` also when no attempt could be made (no payment method). */
  outcome: TransactionStatus | 'skipped';
  transactionId?: string;
  /**
   * Why it was skipped or failed without an attempt (an error code), or the gateway's code of a failed
   * attempt set aside instead of counted by dunning (`refusalsNotRetried`: Stripe `amount_too_small`).
   */
  reason?: string;
  dunning?: DunningStep;
}

/** Invoices claimed by one sweep, and the lease written as their `charge_at`. */
export interface Claim {
  ids: string[];
  lease: Date;
}

/**
 * Claims up to `limit` OPEN invoices whose `charge_at` has come (`FOR UPDATE SKIP LOCKED`, so
 * concurrent sweeps take disjoint sets) and moves their `charge_at` a lease ahead in the same
 * transaction, so no other sweep charges them meanwhile; the charge then goes ahead only while the
 * invoice still carries that lease (`ChargeOptions.claimedChargeAt`).
 * @returns the claimed invoice ids (earliest due first) and the lease
 */
export async function claimDueInvoices(db: Db, now: Date, limit = CLAIM_BATCH): Promise<Claim> {
  const lease = new Date(now.getTime() + CLAIM_LEASE_MS);
  return { ids: await claimInvoicesDue(db, now, lease, limit), lease };
}

/** The payment method to charge an invoice with: its subscription's, else the customer's default. */
async function paymentMethodOf(db: Db, invoiceId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('invoices')
    .leftJoin('subscriptions', 'subscriptions.id', 'invoices.subscription_id')
    .select('subscriptions.payment_method_id')
    .where('invoices.id', '=', invoiceId)
    .executeTakeFirst();
  return row?.payment_method_id ?? undefined;
}

/** Refusals of `startCharge` that mean "this invoice cannot be collected now": a failed collection. */
const UNCHARGEABLE = new Set([
  'payment_method_not_found',
  'gateway_not_configured',
  'gateway_account_disabled',
]);

/**
 * Charges one claimed invoice automatically and counts a failure at once (dunning). A customer with
 * no usable payment method (none, its gateway not configured, or its gateway account disabled) fails
 * the collection without an attempt; an amount the gateway cannot
 * take exactly is never sent: a failed attempt `amount_not_representable` and a reconciliation
 * exception are recorded, outside dunning (`recordUnsendableCharge`); an invoice paid, voided,
 * rescheduled or claimed again since, or with an attempt still in flight, is skipped.
 */
async function collect(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  policy: DunningPolicy,
  renewal: RenewalPolicy,
  invoiceId: string,
  lease: Date,
  now: Date,
): Promise<CollectionResult> {
  const methodId = await paymentMethodOf(db, invoiceId);
  try {
    const { transaction } = await chargeInvoice(
      db,
      actor,
      gateways,
      invoiceId,
      methodId,
      flagDuplicatePayment,
      { automatic: true, claimedChargeAt: lease, policy: renewal },
    );
    const result: CollectionResult = {
      invoiceId,
      outcome: transaction.status,
      transactionId: transaction.id,
    };
    if (transaction.status === 'failed') {
      result.dunning = await countFailedAttempt(db, actor, policy, transaction.id, now);
      // Set aside rather than counted (a refusal the gateway will repeat: Stripe amount_too_small).
      const code = transaction.failure_code;
      if (!result.dunning && code && refusalNotRetried(transaction.gateway, code)) result.reason = code;
    }
    if (transaction.status === 'pending' || transaction.status === 'unknown') {
      // The outcome will come from the gateway (webhook or poller): nothing to schedule meanwhile. A
      // later failure enters dunning through `countFailedAttempts`; a success pays the invoice.
      await releaseChargeLease(db, invoiceId, lease);
    }
    return result;
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    if (error instanceof AmountNotRepresentable) {
      const attempt = await inUnitOfWork(db, { actor }, async (work) => {
        const invoice = await lockInvoice(work, invoiceId);
        if (invoice.status !== 'OPEN' || invoice.charge_at?.getTime() !== lease.getTime()) return undefined;
        return recordUnsendableCharge(work, invoice, methodId, error.message, now);
      });
      return attempt
        ? { invoiceId, outcome: 'failed', transactionId: attempt.id, reason: error.code }
        : { invoiceId, outcome: 'skipped', reason: error.code };
    }
    if (!UNCHARGEABLE.has(error.code)) return { invoiceId, outcome: 'skipped', reason: error.code };
    const dunning = await inUnitOfWork(db, { actor }, async (work) => {
      const invoice = await lockInvoice(work, invoiceId);
      if (invoice.status !== 'OPEN' || invoice.charge_at?.getTime() !== lease.getTime()) return undefined;
      return recordCollectionFailure(work, invoice, policy, now, {
        code: error.code,
        message: error.message,
      });
    });
    return { invoiceId, outcome: 'failed', reason: error.code, dunning };
  }
}

/**
 * One sweep of `invoice.charge` at `now`: first counts failed automatic attempts not counted yet
 * (outcomes learned late enter dunning here), then claims every OPEN invoice whose `charge_at` has
 * come and charges it (the subscription's payment method, else the customer's default), at most
 * `concurrency` at a time. Scheduled payments, instalments (a series of invoices with `charge_at`),
 * subscription renewals and dunning retries all come through here. A success that reinstates a
 * subscription resumes it under `BILL_SUSPENDED_SUBSCRIPTIONS` (off when not given), as the renewal
 * sweep reads it.
 * @returns what each claimed invoice's charge did, and the late failures counted
 */
export async function chargeDueInvoices(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  config: Pick<Config, 'DUNNING_RETRY_DAYS' | 'DUNNING_FINAL_ACTION'> &
    Partial<Pick<Config, 'BILL_SUSPENDED_SUBSCRIPTIONS'>>,
  now: Date,
  options: { concurrency?: number; log?: Logger; stopping?: AbortSignal } = {},
): Promise<{ charged: CollectionResult[]; lateFailures: DunningStep[] }> {
  const policy = dunningPolicy(config);
  const renewal: RenewalPolicy = { billSuspended: config.BILL_SUSPENDED_SUBSCRIPTIONS ?? false };
  const lateFailures = await countFailedAttempts(db, actor, policy, now, options.log);
  const charged: CollectionResult[] = [];
  // Stopping: no batch is claimed (leased) that would not be charged; the invoices claimed and not
  // started come back when their lease ends.
  while (!options.stopping?.aborted) {
    const { ids, lease } = await claimDueInvoices(db, now);
    await eachLimited(
      ids,
      options.concurrency ?? DEFAULT_CONCURRENCY,
      async (id) => {
        try {
          charged.push(await collect(db, actor, gateways, policy, renewal, id, lease, now));
        } catch (error) {
          // The lease brings the invoice back; the one-in-flight rule keeps a second attempt out.
          options.log?.warn(
            { invoiceId: id, err: error instanceof Error ? error.message : String(error) },
            'scheduled charge failed to run',
          );
          charged.push({ invoiceId: id, outcome: 'skipped', reason: 'error' });
        }
      },
      options.stopping,
    );
    if (ids.length < CLAIM_BATCH) break;
  }
  if (charged.length || lateFailures.length)
    options.log?.info({ charged: charged.length, lateFailures: lateFailures.length }, 'invoice.charge sweep');
  return { charged, lateFailures };
}
