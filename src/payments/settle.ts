import type { GatewayClients } from '../accounts/clients.ts';
import { recordActivity } from '../activities/activities.ts';
import { getInvoice, type InvoiceWithLines } from '../billing/invoices.ts';
import { DEFAULT_RENEWAL_POLICY, lockSubscription, type RenewalPolicy } from '../billing/renewal.ts';
import { getSubscription } from '../billing/subscriptions.ts';
import { invoiceRemainingCycles } from '../billing/terms.ts';
import type { Db } from '../db/database.ts';
import type { InvoiceRow, TransactionRow } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { chargeInvoice } from './charges.ts';
import type { OnOverpaid } from './transactions.ts';

/** The outcome of charging one outstanding invoice: its state after, the attempt, or why it was refused. */
export interface SettledInvoice {
  invoice: InvoiceWithLines;
  transaction: TransactionRow | null;
  error: { code: string; message: string } | null;
}

/** What settling a subscription did: the invoices it made for the term's remaining cycles, and each charge. */
export interface Settlement {
  /** The invoices made for the remaining cycles of a fixed term (none without a term). */
  invoiced: InvoiceRow[];
  results: SettledInvoice[];
}

/**
 * Settles a subscription (as Billby does). With a fixed term (`repeat`), first invoices every
 * remaining cycle of the term in one transaction (billing/terms.ts `invoiceRemainingCycles`, which
 * stamps `settled_at`). Then charges every OPEN invoice of it with an amount due now,
 * oldest first, through the gateway of the subscription's payment method (the customer's default
 * when it has none). An invoice that cannot be charged (a charge already in flight, no payment
 * method, gateway not configured) is reported with its error and the others are still charged.
 * Logs `subscription.settled` with the invoices made and each invoice's outcome, and
 * `add_on_charge_pending` (since, error) when the term's renewal left that charge pending.
 * @param policy the configuration's renewal policy (`BILL_SUSPENDED_SUBSCRIPTIONS`), under which a
 * charge that reinstates the subscription resumes it (billing/reinstate.ts)
 * @param now when the term is settled (its catch-up renewal and the invoices' `charge_at`): now by default
 * @throws NotFoundError when there is no subscription `id`
 * @throws ConflictError as `invoiceRemainingCycles` (nothing is invoiced or charged then)
 */
export async function settleSubscription(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  id: string,
  onOverpaid: OnOverpaid,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
  now: Date = new Date(),
): Promise<Settlement> {
  const subscription = await getSubscription(db, id);
  const { invoices: invoiced, leftPending } =
    subscription.repeat === null
      ? { invoices: [], leftPending: {} }
      : await inUnitOfWork(db, { actor }, async (work) => {
          const locked = await lockSubscription(work, id);
          return invoiceRemainingCycles(work, locked!, now);
        });
  const open = await db
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', id)
    .where('status', '=', 'OPEN')
    .where('amount_due', '>', 0n)
    // Oldest first. Invoices made in one transaction (a term's remaining cycles, a catch-up renewal)
    // share its created_at, and ids made in one millisecond sort at random: OPEN, they are numbered,
    // in the order finalized.
    .orderBy('created_at')
    .orderBy('number')
    .orderBy('id')
    .execute();
  const results: SettledInvoice[] = [];
  for (const { id: invoiceId } of open) {
    try {
      const charged = await chargeInvoice(
        db,
        actor,
        gateways,
        invoiceId,
        subscription.payment_method_id ?? undefined,
        onOverpaid,
        { policy },
      );
      results.push({ invoice: charged.invoice, transaction: charged.transaction, error: null });
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      results.push({
        invoice: await getInvoice(db, invoiceId),
        transaction: null,
        error: { code: error.code, message: error.message },
      });
    }
  }
  await inUnitOfWork(db, { actor }, async (work) => {
    await recordActivity(work, {
      resourceType: 'subscription',
      resourceId: id,
      action: 'subscription.settled',
      customerId: subscription.customer_id,
      data: {
        invoiced: invoiced.map((i) => i.id),
        invoices: results.map((r) => ({
          invoice: r.invoice.id,
          status: r.invoice.status,
          transaction: r.transaction?.id ?? null,
          error: r.error?.code ?? null,
        })),
        // An add-on charge pending since a payment's reactivation that the term's renewal tried and
        // left pending (its making failed), as the other paths' activities name it.
        ...leftPending,
      },
    });
  });
  return { invoiced, results };
}
