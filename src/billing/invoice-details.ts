import { type Db, UNIQUE_VIOLATION } from '../db/database.ts';
import { ConflictError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import {
  detailColumns,
  externalIdTaken,
  getInvoice,
  type InvoiceDetails,
  type InvoiceWithLines,
  invoiceActivity,
  lockInvoice,
} from './invoices.ts';

/**
 * Changes what a DRAFT invoice says beyond its lines (`InvoiceDetails`: payment terms, PO number,
 * title, notes, external id; only the fields given, null clears one) and logs
 * `invoice.details_updated` naming the fields changed. Once finalized, an invoice's number, terms and
 * due date are what was sent to the customer: they no longer change.
 * @throws NotFoundError for a missing invoice; ConflictError `invoice_not_draft` unless DRAFT
 * @throws ConflictError `external_id_taken` when another invoice has the external id
 */
export async function updateInvoiceDetails(
  db: Db,
  actor: Actor,
  id: string,
  details: InvoiceDetails,
): Promise<InvoiceWithLines> {
  await inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, id);
    if (invoice.status !== 'DRAFT') {
      throw new ConflictError(
        'invoice_not_draft',
        `invoice ${id} is ${invoice.status}; its terms, PO number, title, notes and external id change while DRAFT only`,
      );
    }
    const columns = detailColumns(details);
    try {
      await work.trx
        .updateTable('invoices')
        .set({ ...columns, updated_at: new Date() })
        .where('id', '=', id)
        .execute();
    } catch (error) {
      // The unique external_id (no other unique column changes here); the transaction is rolled back.
      if ((error as { code?: string }).code === UNIQUE_VIOLATION)
        throw externalIdTaken(details.externalId ?? '');
      throw error;
    }
    await invoiceActivity(work, invoice, 'invoice.details_updated', {
      fields: Object.entries(columns)
        .filter(([, value]) => value !== undefined)
        .map(([field]) => field),
    });
  });
  return getInvoice(db, id);
}
