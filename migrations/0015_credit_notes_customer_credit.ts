import { type Kysely, sql } from 'kysely';
import type { Database } from '../src/db/schema.ts';
import { postEntry } from '../src/ledger/journal.ts';
import { subscriptionCreditMoved } from '../src/ledger/movements.ts';
import { UnitOfWork } from '../src/ledger/unit-of-work.ts';
import { applyRate } from '../src/money/rates.ts';

/**
 * Refunds give back tax, and credit belongs to the customer (PRODUCT §11):
 * - `credit_notes` (`cn_…`): one per succeeded refund of an invoice (but one that only pays back an
 *   overpayment), with the refund's share of the invoice's subtotal and tax (VOID when the refund
 *   fails after succeeding).
 * - `invoices.credit_applied`: customer credit taken off the invoice at finalization (amount_due =
 *   total − credit_applied − amount_paid).
 * - `refunds.kind` (`payment`, or `customer_credit` for a refund of the customer's credit against one
 *   of their payments) and `refunds.customer_id` (set for `customer_credit`).
 * - `subscriptions.credit_balance` is gone: a subscription's unused proration credit (before tax,
 *   booked against the receivable) becomes the customer's credit with the tax its CREDIT line would
 *   have carried at the plan's rate (`sub_…:credit_moved`: debit the receivable and tax payable,
 *   credit the customer's credit).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE credit_notes (
      id text PRIMARY KEY,
      invoice_id text NOT NULL REFERENCES invoices(id),
      refund_id text NOT NULL UNIQUE REFERENCES refunds(id),
      customer_id text NOT NULL REFERENCES customers(id),
      currency char(3) NOT NULL,
      subtotal bigint NOT NULL CHECK (subtotal >= 0),
      tax bigint NOT NULL CHECK (tax >= 0),
      total bigint NOT NULL CHECK (total > 0 AND total = subtotal + tax),
      status text NOT NULL DEFAULT 'ISSUED' CHECK (status IN ('ISSUED', 'VOID')),
      reason text,
      created_at timestamptz NOT NULL DEFAULT now(),
      voided_at timestamptz
    );
    CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id);
    CREATE INDEX credit_notes_customer ON credit_notes (customer_id, created_at);
    ALTER TABLE invoices ADD COLUMN credit_applied bigint NOT NULL DEFAULT 0 CHECK (credit_applied >= 0);
    ALTER TABLE refunds
      ADD COLUMN kind text NOT NULL DEFAULT 'payment' CHECK (kind IN ('payment', 'customer_credit')),
      ADD COLUMN customer_id text REFERENCES customers(id),
      ADD CONSTRAINT refunds_credit_customer CHECK (kind = 'payment' OR customer_id IS NOT NULL);
    CREATE INDEX refunds_customer_credit ON refunds (customer_id, currency) WHERE kind = 'customer_credit';
  `.execute(db);
  const trx = db as unknown as Kysely<Database>;
  // The migration's own transaction, as a unit of work (nothing is locked before the entries).
  const work = new UnitOfWork(trx, { actor: 'system' });
  const stranded = await sql<{
    id: string;
    customer_id: string;
    currency: string;
    credit: string;
    rate: number;
  }>`
    SELECT s.id, s.customer_id, p.currency, s.credit_balance::text AS credit, p.tax_rate_ppm AS rate
    FROM subscriptions s JOIN plans p ON p.id = s.plan_id
    WHERE s.credit_balance > 0 ORDER BY s.id
  `.execute(trx);
  for (const row of stranded.rows) {
    const credit = BigInt(row.credit);
    const tax = applyRate(credit, row.rate);
    await postEntry(
      work,
      subscriptionCreditMoved({
        subscriptionId: row.id,
        customerId: row.customer_id,
        currency: row.currency,
        amount: credit,
        tax,
      }),
    );
  }
  await sql`ALTER TABLE subscriptions DROP COLUMN credit_balance`.execute(db);
}

/** Drops the new tables and columns; customer credit stays in the ledger (nothing moves it back). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE subscriptions
      ADD COLUMN credit_balance bigint NOT NULL DEFAULT 0 CHECK (credit_balance >= 0);
    DROP TABLE credit_notes;
    ALTER TABLE invoices DROP COLUMN credit_applied;
    DROP INDEX refunds_customer_credit;
    ALTER TABLE refunds DROP CONSTRAINT refunds_credit_customer, DROP COLUMN kind, DROP COLUMN customer_id;
  `.execute(db);
}
