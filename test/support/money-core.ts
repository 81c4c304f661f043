import { createInvoice, finalizeInvoice } from '../../src/billing/invoices.ts';
import { createDb, type Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import type { InvoiceRow, TransactionRow } from '../../src/db/schema.ts';
import type { GatewayName, PaymentEvent } from '../../src/gateways/types.ts';
import { listBalances } from '../../src/ledger/balances.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import { type ApplyResult, applyEvent, lockChargesAhead } from '../../src/reconcile/apply.ts';
import { createTestDatabase } from './database.ts';
import { insertCustomer } from './plans.ts';

/**
 * A database of its own for a test file of the money core (a clone of the migrated template), as
 * billhook's pool opens it: no HTTP, no pg-boss. Destroy it in `afterAll`.
 */
export async function moneyCoreDatabase(): Promise<Db> {
  return createDb(await createTestDatabase(), 4);
}

/** What `pendingCharge` makes. Amounts in minor units of `currency`. */
export interface PendingChargeOptions {
  /** The invoice's one line, before tax (default 1000). */
  amount?: bigint;
  /** Tax on the line, parts per million (default none). */
  taxRatePpm?: number;
  currency: string;
  gateway?: GatewayName;
  /** The gateway account (`gwa_…`, made with `insertGatewayAccount`) the attempt is on; default: the gateway's default account. */
  gatewayAccount?: string;
}

/**
 * A customer, a finalized (OPEN) one-line invoice and a `pending` payment attempt of everything it
 * asks, inserted as `startCharge` commits one before calling the gateway (no payment method, no
 * gateway id yet): what the reconciliation and the payment records start from.
 */
export async function pendingCharge(
  db: Db,
  o: PendingChargeOptions,
): Promise<{ customerId: string; invoice: InvoiceRow; transaction: TransactionRow }> {
  const customerId = await insertCustomer(db);
  const draft = await createInvoice(db, 'system', {
    customerId,
    currency: o.currency,
    lines: [
      {
        description: 'Pro plan',
        unitAmount: o.amount ?? 1000n,
        quantity: 1,
        type: 'CHARGE',
        taxRatePpm: o.taxRatePpm,
      },
    ],
  });
  const invoice = await finalizeInvoice(db, 'system', draft.id);
  const transaction = await db
    .insertInto('transactions')
    .values({
      id: newId('txn'),
      invoice_id: invoice.id,
      customer_id: customerId,
      gateway: o.gateway ?? 'stripe',
      gateway_account: o.gatewayAccount ?? null,
      amount: invoice.amount_due,
      currency: o.currency,
      status: 'pending',
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { customerId, invoice, transaction };
}

/**
 * A `pendingCharge` whose `charge.succeeded` of the whole attempt, keyed by the gateway's
 * `gatewayTransactionId` (a PaymentIntent, a PayPal capture), was applied as a reconcile batch of one
 * (`applyAsBatch`): what `pendingCharge` returns, and that event's outcome as `charged`.
 */
export async function succeededCharge(
  db: Db,
  o: PendingChargeOptions & { gatewayTransactionId: string },
): Promise<{ customerId: string; invoice: InvoiceRow; transaction: TransactionRow; charged: ApplyResult }> {
  const pending = await pendingCharge(db, o);
  const charged = await applyAsBatch(
    db,
    canonicalEvent({
      type: 'charge.succeeded',
      gateway: o.gateway ?? 'stripe',
      gatewayTransactionId: o.gatewayTransactionId,
      reference: pending.transaction.id,
      amount: pending.transaction.amount,
      currency: o.currency,
    }),
    false,
    o.gatewayAccount ?? null,
  );
  return { ...pending, charged };
}

/**
 * A `pendingCharge` paid twice (a duplicate payment): the attempt succeeds (`first`), then a second
 * attempt of the invoice's total on the same gateway (`duplicate`), each recorded as the gateway
 * answered (`recordChargeResult`, gateway ids `<currency>_first` and `<currency>_second`): the
 * invoice PAID, its total the customer's credit (`txn_…:overpaid` of the duplicate).
 */
export async function paidTwice(
  db: Db,
  o: PendingChargeOptions,
): Promise<{ customerId: string; invoice: InvoiceRow; first: TransactionRow; duplicate: TransactionRow }> {
  const { customerId, invoice, transaction } = await pendingCharge(db, o);
  const succeed = (t: TransactionRow, id: string) =>
    inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, t, { status: 'succeeded', gatewayTransactionId: id }),
    );
  const first = (await succeed(transaction, `${o.currency}_first`)).transaction;
  const again = await db
    .insertInto('transactions')
    .values({
      id: newId('txn'),
      invoice_id: invoice.id,
      customer_id: customerId,
      gateway: transaction.gateway,
      gateway_account: transaction.gateway_account,
      amount: invoice.total,
      currency: o.currency,
      status: 'pending',
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  const duplicate = (await succeed(again, `${o.currency}_second`)).transaction;
  return { customerId, invoice, first, duplicate };
}

/** Account codes with customer ids (`cus_…`) written `customer`, so a test can name them. */
const named = (code: string) => code.replace(/cus_\w+/, 'customer');

/**
 * The postings of the journal entry with `idempotencyKey` (e.g. `txn_…:succeeded`), by account code
 * (customer ids written `customer`), minor units, debit positive; undefined when there is no such
 * entry.
 */
export async function entryPostings(
  db: Db,
  idempotencyKey: string,
): Promise<Record<string, bigint> | undefined> {
  const rows = await db
    .selectFrom('journal_entries as e')
    .innerJoin('postings as p', 'p.journal_entry_id', 'e.id')
    .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
    .select(['a.code', 'p.amount'])
    .where('e.idempotency_key', '=', idempotencyKey)
    .execute();
  if (rows.length === 0) return undefined;
  return Object.fromEntries(rows.map((row) => [named(row.code), BigInt(row.amount)]));
}

/**
 * The balances of every account in `currency` (`listBalances`), by code (customer ids written
 * `customer`), minor units, debit positive. A test that books in a currency of its own reads its
 * own books in a database shared by its file.
 */
export async function booksIn(db: Db, currency: string): Promise<Record<string, bigint>> {
  const accounts = await listBalances(db, { currency, limit: 1000 });
  return Object.fromEntries(accounts.map((account) => [named(account.code), account.balance]));
}

/** How many journal entries the database holds: unchanged after a repeat means it posted nothing. */
export async function countEntries(db: Db): Promise<number> {
  const row = await db
    .selectFrom('journal_entries')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

let delivered = 0;
/** A canonical event as a webhook normaliser returns one (Stripe's unless `gateway` says otherwise; a fresh event id); amount in minor units. */
export function canonicalEvent(
  e: Pick<PaymentEvent, 'type' | 'amount' | 'currency'> & Partial<PaymentEvent>,
): PaymentEvent {
  return {
    gateway: 'stripe',
    gatewayEventId: `evt_by_hand_${++delivered}`,
    occurredAt: new Date(),
    raw: {},
    ...e,
  };
}

/**
 * Applies one event as a reconcile batch of one does: charges locked ahead, writes deferred to the
 * end; `finalAttempt` as the queue's last try; as received for `gatewayAccount` (`gwa_…`; null, the
 * default: the gateway's default account).
 */
export function applyAsBatch(
  db: Db,
  event: PaymentEvent,
  finalAttempt = false,
  gatewayAccount: string | null = null,
): Promise<ApplyResult> {
  return inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
    await lockChargesAhead(work, [event]);
    return applyEvent(work, event, { gatewayAccount, finalAttempt });
  });
}

/**
 * A gateway account row `id` (`gwa_…`) of `gateway`, inserted directly (no credentials that open):
 * what a payment, refund or dispute of that account references. For the money core, which never
 * calls the account's API.
 */
export async function insertGatewayAccount(
  db: Db,
  id: string,
  gateway: GatewayName = 'stripe',
): Promise<void> {
  await db
    .insertInto('gateway_accounts')
    .values({
      id,
      gateway,
      name: id,
      mode: 'test',
      api_base: null,
      credentials: Buffer.from('x'),
      credentials_key_id: 'k',
      credentials_last4: '{}',
    })
    .execute();
}
