import { voidTransaction } from '../../payments/voids.ts';
import { actorOf } from '../actor.ts';
import { receiptPdf } from '../documents/receipt-pdf.ts';
import { Pdf, TransactionVoided, TransactionVoidUnknown } from './responses.ts';
import { type ApiRoute, route } from './route.ts';
import { serialize } from './serialize.ts';

/**
 * Payment attempts' own actions (reads are in reads.ts): `GET /v1/transactions/:id/receipt` is the PDF
 * receipt of a succeeded payment, gateway or offline (documents/receipt-pdf.ts); `POST /v1/transactions/:id/void` cancels an
 * authorization or an unsettled charge at its gateway. 200 `{void: 'succeeded', transaction}` (the
 * transaction `canceled`, failure code `voided`); 202 `{void: 'unknown', message, transaction}` when
 * the gateway gave no sure answer (nothing changed; a reconciliation exception asks a person);
 * 404 `transaction_not_found`; 409 when it cannot be voided (codes in payments/voids.ts).
 */
export const transactionRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/transactions/{id}/void',
    operationId: 'voidTransaction',
    tag: 'Transactions',
    scope: 'write',
    summary: 'Void an authorization or an unsettled charge at its gateway',
    description:
      '200 voided: canceled, a succeeded one reversed in the ledger and on its invoice; 202 unknown; 409 when it cannot be voided',
    responses: {
      200: { schema: TransactionVoided, description: 'Voided at the gateway' },
      202: {
        schema: TransactionVoidUnknown,
        description: 'The gateway gave no sure answer; nothing changed',
      },
    },
    handler: async (req, res, { deps: { db, registry, accounts } }) => {
      const result = await voidTransaction(db, actorOf(req), { registry, accounts }, req.params.id);
      if (result.status === 'unknown') {
        res.status(202).json({
          void: 'unknown',
          message: result.message,
          transaction: serialize.transaction(result.transaction),
        });
        return;
      }
      res.json({ void: 'succeeded', transaction: serialize.transaction(result.transaction) });
    },
  }),
  route({
    method: 'get',
    path: '/v1/transactions/{id}/receipt',
    operationId: 'getTransactionReceipt',
    conflicts: true,
    tag: 'Transactions',
    scope: 'read',
    summary: 'The PDF receipt of a succeeded payment, gateway (txn_) or offline (op_) (application/pdf)',
    responses: {
      200: { schema: Pdf, description: 'The receipt as a PDF document', mediaType: 'application/pdf' },
    },
    handler: async (req, res, { deps }) => {
      const pdf = await receiptPdf(deps.db, req.params.id);
      res
        .type('application/pdf')
        .set('content-disposition', `inline; filename="receipt-${req.params.id}.pdf"`);
      res.send(pdf);
    },
  }),
];
