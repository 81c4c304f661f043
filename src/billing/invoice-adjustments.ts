import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { InvoiceLineRow } from '../db/schema.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { abs } from '../money/amount.ts';
import { percentToPpm } from '../money/rates.ts';
import {
  getInvoice,
  type InvoiceWithLines,
  invoiceActivity,
  invoiceAmounts,
  lineTaxesJson,
  lockInvoice,
  type NewLine,
} from './invoices.ts';
import { withCustomerTaxes } from './tax-rates.ts';

/** A stored named tax of a line (`lineTaxesJson`). */
interface StoredLineTax {
  tax_rate: string;
  display_name: string;
  percent: string;
  inclusive: boolean;
  compound: boolean;
  amount: number;
}

/**
 * A stored line as `invoiceAmounts` takes it (its amount unsigned, minor units, its type saying the
 * sign): with its named rates when it has some, and its price: the net plus the taxes it included
 * (all of them for a tax-inclusive line, else those of its inclusive named rates), so pricing it
 * again gives the same net and taxes. Also the charged basis of a period (billing/proration.ts).
 * @throws Error for finalization's ROUNDING line (billing/invoice-rounding.ts): callers never pass it
 * (a DRAFT has none; a period's basis reads the invoice's `rounding` instead, proration.ts `invoicedItem`)
 */
export function asNewLine(line: InvoiceLineRow): NewLine & { amount: bigint } {
  if (line.type === 'ROUNDING') {
    throw new Error(`line ${line.id} is finalization's rounding (after tax), not a line to price again`);
  }
  const taxes = line.taxes as StoredLineTax[];
  const included = line.tax_inclusive
    ? line.tax_amount
    : taxes.reduce((sum, tax) => (tax.inclusive ? sum + BigInt(tax.amount) : sum), 0n);
  const amount = line.amount + included;
  return {
    description: line.description,
    quantity: line.quantity,
    type: line.type,
    amount: abs(amount),
    taxRatePpm: line.tax_rate_ppm,
    ...(taxes.length
      ? {
          taxRates: taxes.map((tax) => ({
            id: tax.tax_rate,
            displayName: tax.display_name,
            ppm: percentToPpm(tax.percent) ?? 0,
            inclusive: tax.inclusive && !line.tax_inclusive,
            compound: tax.compound,
          })),
        }
      : {}),
    taxInclusive: line.tax_inclusive,
    couponId: line.coupon_id ?? undefined,
  };
}

/**
 * Adds an adjustment line (a CHARGE or a CREDIT, with its own tax rate) to a DRAFT invoice and
 * recomputes its subtotal, tax and total (minor units); logs `invoice.line_added`.
 * @throws NotFoundError for a missing invoice; ConflictError `invoice_not_draft` unless DRAFT
 * @throws ValidationError (`amount`) when the line is too large or credits would exceed the charges
 */
export async function addInvoiceLine(
  db: Db,
  actor: Actor,
  id: string,
  line: NewLine,
): Promise<InvoiceWithLines> {
  await inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, id);
    if (invoice.status !== 'DRAFT') {
      throw new ConflictError(
        'invoice_not_draft',
        `invoice ${id} is ${invoice.status}; lines are added to a DRAFT only`,
      );
    }
    const existing = await work.trx
      .selectFrom('invoice_lines')
      .selectAll()
      .where('invoice_id', '=', id)
      .orderBy('position')
      .execute();
    let amounts: ReturnType<typeof invoiceAmounts>;
    try {
      const [taxed] = await withCustomerTaxes(work.trx, invoice.customer_id, [line]);
      amounts = invoiceAmounts([...existing.map(asNewLine), taxed!]);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      throw new ValidationError(error.message, {
        amount:
          error.message === 'credits exceed charges'
            ? 'credits would exceed the invoice’s charges (its total would be negative)'
            : 'the line or the invoice total would exceed 10^15 minor units',
      });
    }
    const priced = amounts.lines.at(-1)!;
    const position = existing.reduce((max, l) => Math.max(max, l.position + 1), 0);
    const row = await work.trx
      .insertInto('invoice_lines')
      .values({
        id: newId('il'),
        invoice_id: id,
        position,
        type: line.type,
        description: line.description,
        unit_amount: line.unitAmount ?? null,
        quantity: line.quantity,
        amount: priced.amount,
        tax_rate_ppm: priced.rule.ratePpm,
        tax_amount: priced.tax,
        taxes: JSON.stringify(lineTaxesJson(priced)),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await work.trx
      .updateTable('invoices')
      .set({
        subtotal: amounts.subtotal,
        tax: amounts.tax,
        total: amounts.total,
        amount_due: amounts.total,
        updated_at: new Date(),
      })
      .where('id', '=', id)
      .execute();
    await invoiceActivity(work, invoice, 'invoice.line_added', {
      line: row.id,
      type: line.type,
      amount: priced.amount,
      tax_amount: priced.tax,
      subtotal: amounts.subtotal,
      tax: amounts.tax,
      total: amounts.total,
    });
  });
  return getInvoice(db, id);
}

/**
 * Sets (or with null clears) when the scheduler charges a DRAFT or OPEN invoice; logs
 * `invoice.updated`. A time in the past means "at the next sweep".
 * @throws NotFoundError for a missing invoice; ConflictError `invoice_not_editable` in other states
 */
export async function setChargeAt(
  db: Db,
  actor: Actor,
  id: string,
  chargeAt: Date | null,
): Promise<InvoiceWithLines> {
  await inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, id);
    if (invoice.status !== 'DRAFT' && invoice.status !== 'OPEN') {
      throw new ConflictError(
        'invoice_not_editable',
        `invoice ${id} is ${invoice.status}; charge_at can change on a DRAFT or OPEN invoice only`,
      );
    }
    await work.trx
      .updateTable('invoices')
      .set({ charge_at: chargeAt, updated_at: new Date() })
      .where('id', '=', id)
      .execute();
    await invoiceActivity(work, invoice, 'invoice.updated', {
      charge_at: chargeAt?.toISOString() ?? null,
      previous_charge_at: invoice.charge_at?.toISOString() ?? null,
    });
  });
  return getInvoice(db, id);
}
