import nock from 'nock';
import { ewayFixture } from '../gateways/eway/fixtures.ts';

/**
 * eWAY at `base` approves the next token payment (`POST /Transaction`) as `transactionId`: the real
 * approval (test/fixtures/eway/api.transaction.token_payment.approved.json) with the request's
 * Payment (amount, currency) echoed, as eWAY answers.
 */
export function ewayTokenPaymentApproves(base: string, transactionId: number): void {
  const approved = ewayFixture('api.transaction.token_payment.approved.json');
  nock(base)
    .post('/Transaction')
    .reply(async (request: Request) => {
      const body = JSON.parse(await request.text());
      return [
        200,
        { ...approved, TransactionID: transactionId, Payment: { ...approved.Payment, ...body.Payment } },
      ];
    });
}
