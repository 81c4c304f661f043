import { Router } from 'express';
import { voidTransaction } from '../../payments/voids.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { receiptPdf } from '../documents/receipt-pdf.ts';
import { serialize } from './serialize.ts';

/**
 * `GET /v1/transactions/:id/receipt`: the PDF receipt of a succeeded payment, gateway or offline
 * (documents/receipt-pdf.ts). Payment attempts' own actions (reads are in reads.ts): `POST /v1/transactions/:id/void` cancels an
 * authorization or an unsettled charge at its gateway. 200 `{void: 'succeeded', transaction}` (the
 * transaction `canceled`, failure code `voided`); 202 `{void: 'unknown', message, transaction}` when
 * the gateway gave no sure answer (nothing changed; a reconciliation exception asks a person);
 * 404 `transaction_not_found`; 409 when it cannot be voided (codes in payments/voids.ts).
 */
export function transactionRoutes({ db, registry, accounts }: AppDeps): Router {
  const router = Router();
  router.post('/transactions/:id/void', async (req, res) => {
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
  });
  router.get('/transactions/:id/receipt', async (req, res) => {
    const pdf = await receiptPdf(db, req.params.id);
    res.type('application/pdf').set('content-disposition', `inline; filename="receipt-${req.params.id}.pdf"`);
    res.send(pdf);
  });
  return router;
}
