import type { z } from 'zod';
import { markUncollectible } from '../../billing/bad-debt.ts';
import { invoiceCreditNotes } from '../../billing/credit-notes.ts';
import { returnCreditByHand } from '../../billing/credit-returns.ts';
import { getCustomerWithBalances } from '../../billing/customers.ts';
import { addInvoiceLine, setChargeAt } from '../../billing/invoice-adjustments.ts';
import { updateInvoiceDetails } from '../../billing/invoice-details.ts';
import { disputedAway } from '../../billing/invoice-payment.ts';
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
import { reverseOfflinePayment } from '../../payments/offline-reversals.ts';
import { refundInvoice } from '../../payments/refunds.ts';
import { invoiceTransactions } from '../../payments/transactions.ts';
import { actorOf } from '../actor.ts';
import { type AppDeps, policyOf } from '../deps.ts';
import { invoicePdf } from '../documents/invoice-pdf.ts';
import { listFilter } from './pagination.ts';
import {
  ExpandableInvoice,
  Invoice,
  InvoiceCharge,
  InvoiceCreditReturn,
  InvoiceRefund,
  listOf,
  Pdf,
} from './responses.ts';
import { type ApiRoute, route, type Tag } from './route.ts';
import {
  AddInvoiceLine,
  ChargeInvoice,
  CreateInvoice,
  InvoiceListQuery,
  InvoiceReadQuery,
  RecordOfflinePayment,
  RefundInvoice,
  ReturnInvoiceCredit,
  ReverseOfflinePayment,
  UpdateInvoice,
} from './schemas.ts';
import { serialize } from './serialize.ts';

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
 * An invoice in its API shape, with what disputes took of its payments and hold or lost
 * (`amount_disputed`: billing/invoice-payment.ts `disputedAway`, minor units), and its customer,
 * transactions and credit notes as objects when asked (`expand`).
 */
async function expanded({ db }: AppDeps, id: string, expand: string[] = []) {
  const invoice = serialize.invoice(await getInvoice(db, id));
  return {
    ...invoice,
    amount_disputed: await disputedAway(db, id),
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

const tag: Tag = 'Invoices';

/**
 * /v1/invoices: create (DRAFT), list, read (`expand`: customer, transactions, credit_notes), update
 * `charge_at` and a DRAFT's details, add adjustment lines, finalize (number, due date), void, mark
 * uncollectible, record an offline payment or reverse one, charge, refund, and the PDF of a finalized
 * invoice.
 */
export const invoiceRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/invoices',
    operationId: 'createInvoice',
    tag,
    scope: 'write',
    summary:
      'Create a DRAFT invoice (lines; payment_terms_days, po_number, title, notes, external_id; number: null until finalized)',
    body: CreateInvoice,
    responses: { 201: Invoice },
    handler: async (req, res, { deps, body }) => {
      const invoice = await createInvoice(deps.db, actorOf(req), {
        customerId: body.customer,
        currency: body.currency,
        lines: body.lines.map(newLine),
        chargeAt: body.charge_at,
        details: invoiceDetails(body),
      });
      res.status(201).json(serialize.invoice(invoice));
    },
  }),
  route({
    method: 'get',
    path: '/v1/invoices',
    operationId: 'listInvoices',
    tag,
    scope: 'read',
    summary: 'List invoices (filter by status, customer, subscription, number, external_id)',
    query: InvoiceListQuery,
    responses: { 200: listOf(ExpandableInvoice, 'InvoiceList') },
    handler: async (_req, res, { deps, query }) => {
      const rows = await listRows<{ id: string }>(
        deps.db,
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
        rows.slice(0, query.limit).map((row) => expanded(deps, row.id, query.expand)),
      );
      res.json({ object: 'list', data: invoices, has_more: rows.length > query.limit });
    },
  }),
  route({
    method: 'get',
    path: '/v1/invoices/{id}',
    operationId: 'getInvoice',
    tag,
    scope: 'read',
    summary: 'Read an invoice (expand: customer, transactions, credit_notes)',
    query: InvoiceReadQuery,
    responses: { 200: ExpandableInvoice },
    handler: async (req, res, { deps, query }) => {
      res.json(await expanded(deps, req.params.id, query.expand));
    },
  }),
  route({
    method: 'post',
    path: '/v1/invoices/{id}',
    operationId: 'updateInvoice',
    tag,
    scope: 'write',
    summary:
      "Change when the scheduler charges a DRAFT or OPEN invoice (charge_at) and a DRAFT's payment_terms_days, po_number, title, notes, external_id",
    body: UpdateInvoice,
    responses: { 200: Invoice },
    handler: async (req, res, { deps: { db }, body }) => {
      const details = invoiceDetails(body);
      let invoice: InvoiceWithLines | undefined;
      if (Object.values(details).some((value) => value !== undefined)) {
        invoice = await updateInvoiceDetails(db, actorOf(req), req.params.id, details);
      }
      if (body.charge_at !== undefined) {
        invoice = await setChargeAt(db, actorOf(req), req.params.id, body.charge_at);
      }
      res.json(serialize.invoice(invoice!));
    },
  }),
  route({
    method: 'get',
    path: '/v1/invoices/{id}/pdf',
    operationId: 'getInvoicePdf',
    conflicts: true,
    tag,
    scope: 'read',
    summary:
      'The PDF of a finalized invoice (application/pdf: number, due date, lines, totals, credit notes, payments)',
    responses: {
      200: { schema: Pdf, description: 'The invoice as a PDF document', mediaType: 'application/pdf' },
    },
    handler: async (req, res, { deps }) => {
      const pdf = await invoicePdf(deps.db, req.params.id);
      res.type('application/pdf').set('content-disposition', `inline; filename="${req.params.id}.pdf"`);
      res.send(pdf);
    },
  }),
  route({
    method: 'post',
    path: '/v1/invoices/{id}/lines',
    operationId: 'addInvoiceLine',
    tag,
    scope: 'write',
    summary: 'Add an adjustment line (CHARGE or CREDIT, optional tax) to a DRAFT invoice',
    body: AddInvoiceLine,
    responses: { 201: Invoice },
    handler: async (req, res, { deps, body }) => {
      const invoice = await addInvoiceLine(deps.db, actorOf(req), req.params.id, newLine(body));
      res.status(201).json(serialize.invoice(invoice));
    },
  }),
  route({
    method: 'post',
    path: '/v1/invoices/{id}/mark-uncollectible',
    operationId: 'markInvoiceUncollectible',
    tag,
    scope: 'write',
    summary: 'OPEN → UNCOLLECTIBLE (writes the unpaid amount off as bad debt)',
    responses: { 200: Invoice },
    handler: async (req, res, { deps }) => {
      res.json(
        serialize.invoice(
          await markUncollectible(deps.db, actorOf(req), req.params.id, new Date(), policyOf(deps)),
        ),
      );
    },
  }),
  route({
    method: 'post',
    path: '/v1/invoices/{id}/finalize',
    operationId: 'finalizeInvoice',
    tag,
    scope: 'write',
    summary: 'DRAFT → OPEN (posts the receivable; gives the number and the due date)',
    responses: { 200: Invoice },
    handler: async (req, res, { deps }) => {
      res.json(serialize.invoice(await finalizeInvoice(deps.db, actorOf(req), req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/invoices/{id}/void',
    operationId: 'voidInvoice',
    tag,
    scope: 'write',
    summary: 'Void an unpaid invoice (reverses the receivable)',
    responses: { 200: Invoice },
    handler: async (req, res, { deps }) => {
      res.json(serialize.invoice(await voidInvoice(deps.db, actorOf(req), req.params.id, policyOf(deps))));
    },
  }),
  route({
    method: 'post',
    path: '/v1/invoices/{id}/payments',
    operationId: 'recordInvoicePayment',
    tag,
    scope: 'write',
    summary: 'Record an offline payment',
    body: RecordOfflinePayment,
    responses: { 201: Invoice },
    handler: async (req, res, { deps, body }) => {
      res
        .status(201)
        .json(
          serialize.invoice(
            await recordOfflinePayment(deps.db, actorOf(req), req.params.id, body, policyOf(deps)),
          ),
        );
    },
  }),
  route({
    method: 'post',
    path: '/v1/invoices/{id}/payments/{payment}/reverse',
    operationId: 'reverseInvoicePayment',
    tag,
    scope: 'write',
    summary: 'Reverse an offline payment (a bounced cheque): the invoice owes it again',
    description:
      'Takes back offline payment op_… of the invoice with a reason: amount_paid lowered, PAID back to OPEN when something is due again, the ledger reversed (op_…:reversed), any overpayment credit it leaves unearned taken back; the payment shows canceled with failure_code reversed. 404 offline_payment_not_found; 409 offline_payment_reversed, invoice_void, invoice_refunded, invoice_uncollectible, overpayment_credit_spent',
    body: ReverseOfflinePayment,
    responses: { 200: Invoice },
    handler: async (req, res, { deps, body }) => {
      res.json(
        serialize.invoice(
          await reverseOfflinePayment(deps.db, actorOf(req), req.params.id, req.params.payment, body.reason),
        ),
      );
    },
  }),
  route({
    method: 'post',
    path: '/v1/invoices/{id}/charge',
    operationId: 'chargeInvoice',
    tag,
    scope: 'write',
    summary: 'Charge an OPEN or UNCOLLECTIBLE invoice (a success reverses the bad-debt write-off)',
    body: ChargeInvoice,
    responses: { 200: InvoiceCharge },
    handler: async (req, res, { deps, body }) => {
      const result = await chargeInvoice(
        deps.db,
        actorOf(req),
        { registry: deps.registry, accounts: deps.accounts },
        req.params.id,
        body.payment_method,
        flagDuplicatePayment,
        { policy: policyOf(deps) },
      );
      res.json({
        invoice: serialize.invoice(result.invoice),
        transaction: serialize.transaction(result.transaction),
      });
    },
  }),
  route({
    method: 'post',
    path: '/v1/invoices/{id}/refund',
    operationId: 'refundInvoice',
    tag,
    scope: 'write',
    summary:
      'Refund part or all of what was paid, through one succeeded gateway payment of the invoice (transaction, or the newest that can take the amount)',
    body: RefundInvoice,
    responses: { 201: InvoiceRefund },
    handler: async (req, res, { deps: { db, boss, registry, accounts }, body }) => {
      // No answer from the gateway: the invoice.refund queue settles it (or asks a person).
      const { refund, credited } = await refundInvoice(
        db,
        actorOf(req),
        boss,
        { registry, accounts },
        req.params.id,
        { amount: body.amount, reason: body.reason, transaction: body.transaction },
      );
      res.status(201).json({ ...serialize.refund(refund), credited });
    },
  }),
  route({
    method: 'post',
    path: '/v1/invoices/{id}/credit/return',
    operationId: 'returnInvoiceCredit',
    tag,
    scope: 'write',
    summary:
      "Give the customer credit that paid an invoice (the current period's invoice once its subscription is cancelled) back to the customer's credit, without a cash refund",
    body: ReturnInvoiceCredit,
    responses: { 201: InvoiceCreditReturn },
    handler: async (req, res, { deps: { db }, body }) => {
      const note = await returnCreditByHand(db, actorOf(req), req.params.id, body);
      res.status(201).json({
        object: 'invoice_credit_return',
        invoice: serialize.invoice(await getInvoice(db, req.params.id)),
        credit_note: serialize.creditNote(note),
      });
    },
  }),
];
