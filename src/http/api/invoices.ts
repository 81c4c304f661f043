import { Router } from 'express';
import type { z } from 'zod';
import { markUncollectible } from '../../billing/bad-debt.ts';
import { invoiceCreditNotes } from '../../billing/credit-notes.ts';
import { getCustomerWithBalances } from '../../billing/customers.ts';
import { addInvoiceLine, setChargeAt } from '../../billing/invoice-adjustments.ts';
import { updateInvoiceDetails } from '../../billing/invoice-details.ts';
import {
  createInvoice,
  finalizeInvoice,
  getInvoice,
  type InvoiceDetails,
  type InvoiceWithLines,
  type NewLine,
  recordOfflinePayment,
  voidInvoice,
} from '../../billing/invoices.ts';
import { listRows } from '../../db/list.ts';
import { flagDuplicatePayment } from '../../exceptions/exceptions.ts';
import { chargeInvoice } from '../../payments/charges.ts';
import { refundInvoice } from '../../payments/refunds.ts';
import { invoiceTransactions } from '../../payments/transactions.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { invoicePdf } from '../documents/invoice-pdf.ts';
import { listFilter } from './pagination.ts';
import {
  AddInvoiceLine,
  ChargeInvoice,
  CreateInvoice,
  InvoiceListQuery,
  InvoiceReadQuery,
  RecordOfflinePayment,
  RefundInvoice,
  UpdateInvoice,
} from './schemas.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/** An API invoice line (`amount`: unit amount, minor units; `tax_percent`: ppm) as the billing module takes it. */
function newLine(line: z.output<typeof AddInvoiceLine>): NewLine {
  return {
    description: line.description,
    unitAmount: line.amount,
    quantity: line.quantity,
    type: line.type,
    taxRatePpm: line.tax_percent,
  };
}

/** An API invoice's details (`payment_terms_days`, `po_number`, `title`, `notes`, `external_id`) as billing takes them. */
function invoiceDetails(body: z.output<typeof UpdateInvoice>): InvoiceDetails {
  return {
    paymentTermsDays: body.payment_terms_days,
    poNumber: body.po_number,
    title: body.title,
    notes: body.notes,
    externalId: body.external_id,
  };
}

/**
 * /v1/invoices: create (DRAFT), list, read (`expand`: customer, transactions, credit_notes), update
 * `charge_at` and a DRAFT's details, add adjustment lines, finalize (number, due date), void, mark
 * uncollectible, record an offline payment, charge, refund, and the PDF of a finalized invoice.
 */
export function invoiceRoutes({ db, registry, accounts, boss }: AppDeps): Router {
  const router = Router();
  router.post('/invoices', async (req, res) => {
    const body = parseInput(CreateInvoice, req.body);
    const invoice = await createInvoice(db, actorOf(req), {
      customerId: body.customer,
      currency: body.currency,
      lines: body.lines.map(newLine),
      chargeAt: body.charge_at,
      details: invoiceDetails(body),
    });
    res.status(201).json(serialize.invoice(invoice));
  });
  router.get('/invoices', async (req, res) => {
    const query = parseInput(InvoiceListQuery, req.query);
    const rows = await listRows<{ id: string }>(
      db,
      'invoices',
      listFilter(query, 'created_at', {
        status: query.status,
        customer_id: query.customer,
        subscription_id: query.subscription,
        number: query.number,
        external_id: query.external_id,
      }),
    );
    const invoices = await Promise.all(
      rows.slice(0, query.limit).map((row) => expanded(row.id, query.expand)),
    );
    res.json({ object: 'list', data: invoices, has_more: rows.length > query.limit });
  });
  router.get('/invoices/:id', async (req, res) => {
    const { expand } = parseInput(InvoiceReadQuery, req.query);
    res.json(await expanded(req.params.id, expand));
  });

  /** An invoice in its API shape, with its customer and transactions as objects when asked (`expand`). */
  async function expanded(id: string, expand: string[] = []) {
    const invoice = serialize.invoice(await getInvoice(db, id));
    return {
      ...invoice,
      ...(expand.includes('customer')
        ? { customer: serialize.customer(await getCustomerWithBalances(db, invoice.customer)) }
        : {}),
      ...(expand.includes('transactions')
        ? { transactions: (await invoiceTransactions(db, id)).map(serialize.transaction) }
        : {}),
      ...(expand.includes('credit_notes')
        ? { credit_notes: (await invoiceCreditNotes(db, id)).map(serialize.creditNote) }
        : {}),
    };
  }
  router.post('/invoices/:id', async (req, res) => {
    const body = parseInput(UpdateInvoice, req.body);
    const details = invoiceDetails(body);
    let invoice: InvoiceWithLines | undefined;
    if (Object.values(details).some((value) => value !== undefined)) {
      invoice = await updateInvoiceDetails(db, actorOf(req), req.params.id, details);
    }
    if (body.charge_at !== undefined) {
      invoice = await setChargeAt(db, actorOf(req), req.params.id, body.charge_at);
    }
    res.json(serialize.invoice(invoice!));
  });
  router.get('/invoices/:id/pdf', async (req, res) => {
    const pdf = await invoicePdf(db, req.params.id);
    res.type('application/pdf').set('content-disposition', `inline; filename="${req.params.id}.pdf"`);
    res.send(pdf);
  });
  router.post('/invoices/:id/lines', async (req, res) => {
    const body = parseInput(AddInvoiceLine, req.body);
    const invoice = await addInvoiceLine(db, actorOf(req), req.params.id, newLine(body));
    res.status(201).json(serialize.invoice(invoice));
  });
  router.post('/invoices/:id/mark-uncollectible', async (req, res) => {
    res.json(serialize.invoice(await markUncollectible(db, actorOf(req), req.params.id, new Date())));
  });
  router.post('/invoices/:id/finalize', async (req, res) => {
    res.json(serialize.invoice(await finalizeInvoice(db, actorOf(req), req.params.id)));
  });
  router.post('/invoices/:id/void', async (req, res) => {
    res.json(serialize.invoice(await voidInvoice(db, actorOf(req), req.params.id)));
  });
  router.post('/invoices/:id/payments', async (req, res) => {
    const body = parseInput(RecordOfflinePayment, req.body);
    res
      .status(201)
      .json(serialize.invoice(await recordOfflinePayment(db, actorOf(req), req.params.id, body)));
  });
  router.post('/invoices/:id/charge', async (req, res) => {
    const body = parseInput(ChargeInvoice, req.body);
    const result = await chargeInvoice(
      db,
      actorOf(req),
      { registry, accounts },
      req.params.id,
      body.payment_method,
      flagDuplicatePayment,
    );
    res.json({
      invoice: serialize.invoice(result.invoice),
      transaction: serialize.transaction(result.transaction),
    });
  });
  router.post('/invoices/:id/refund', async (req, res) => {
    const body = parseInput(RefundInvoice, req.body);
    // No answer from the gateway: the invoice.refund queue settles it (or asks a person).
    const refund = await refundInvoice(db, actorOf(req), boss, { registry, accounts }, req.params.id, {
      amount: body.amount,
      reason: body.reason,
    });
    res.status(201).json(serialize.refund(refund));
  });
  return router;
}
