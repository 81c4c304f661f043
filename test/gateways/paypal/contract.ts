import nock from 'nock';
import { newId } from '../../../src/db/ids.ts';
import { PAYPAL_CURRENCIES } from '../../../src/gateways/paypal/currencies.ts';
import { toGateway } from '../../../src/money/gateway-amount.ts';
import { ANSWERED_CALL_TIMEOUT_MS, noAnswer } from '../../support/timeouts.ts';
import type { ContractCase } from '../contract-case.ts';
import { nockToken, paypalFixture, TOKEN, testPaypalClient } from './fixtures.ts';

const BASE = 'https://paypal.contract.test';
/** The real sandbox answer of a vaulted-card order with intent CAPTURE (USD 25.07, capture 0XX3309307732590Y). */
const APPROVED = paypalFixture('api.orders.create.vaulted_card_capture.completed.json');
const REFUND = paypalFixture('api.captures.refund.completed.json');
/** The approved order with its capture in a status PayPal does not document (status.ts does not list it). */
const UNMAPPED = structuredClone(APPROVED);
UNMAPPED.purchase_units[0].payments.captures[0].status = 'SOMETHING_NEW';
/** A real id of ours (it carries its creation time, which the status check reads). */
const REFERENCE = newId('txn');

/** The create-order call of the contract's charge: our reference as PayPal-Request-Id and custom_id, 25.07 USD. */
function nockCreateOrder(): nock.Interceptor {
  return nock(BASE)
    .post(
      '/v2/checkout/orders',
      (body) =>
        body.intent === 'CAPTURE' &&
        body.payment_source?.card?.vault_id === '8kk8451t' &&
        body.purchase_units?.[0]?.custom_id === REFERENCE &&
        body.purchase_units?.[0]?.amount?.value === '25.07',
    )
    .matchHeader('paypal-request-id', REFERENCE);
}

/** PayPal (Orders v2 / Payments v2) in the shared contract suite, on the real fixture answers. */
export const contract: ContractCase = {
  gateway: 'paypal',
  client: (timeoutMs = ANSWERED_CALL_TIMEOUT_MS) => testPaypalClient(BASE, timeoutMs),
  charge: {
    reference: REFERENCE,
    amount: 2507n,
    currency: 'USD',
    initiation: 'recurring',
    paymentMethod: { token: '8kk8451t', customerId: null },
  },
  approvedTransactionId: '0XX3309307732590Y',
  // The card as the approved fixture answer describes it (src/gateways/paypal/card.ts).
  approvedCard: { brand: 'DISCOVER', last4: '0004', expMonth: 1, expYear: 2029 },
  // The status check repeats the create and gets the same order back.
  polledCard: { brand: 'DISCOVER', last4: '0004', expMonth: 1, expYear: 2029 },
  nockApproved() {
    nockToken(BASE).reply(200, TOKEN);
    nockCreateOrder().reply(201, APPROVED);
  },
  nockDeclined() {
    nockToken(BASE).reply(200, TOKEN);
    // Real sandbox decline: HTTP 201, order COMPLETED, capture DECLINED with processor response 5120.
    nockCreateOrder().reply(201, paypalFixture('api.orders.capture.card_declined_insufficient_funds.json'));
    return { code: '5120', message: /DECLINED.*response_code 5120/ };
  },
  nockTimeout() {
    nockToken(BASE).reply(200, TOKEN);
    nockCreateOrder().reply(noAnswer);
  },
  nockPollFindsSuccess() {
    nockToken(BASE).reply(200, TOKEN);
    // Repeating the create with the same PayPal-Request-Id returns the original order (HTTP 200).
    nockCreateOrder().reply(200, APPROVED);
  },
  nockPartialRefund(amount) {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE)
      .post(
        '/v2/payments/captures/0XX3309307732590Y/refund',
        (body) =>
          body.amount?.value === toGateway(PAYPAL_CURRENCIES, amount, 'USD') &&
          body.amount?.currency_code === 'USD',
      )
      .matchHeader('paypal-request-id', 're_contract01')
      .reply(201, paypalFixture('api.captures.refund.completed.json'));
  },
  nockVoid() {
    // A capture cannot be voided, and billhook never creates authorizations: declined without a call.
    return { status: 'declined', code: 'CAPTURE_NOT_VOIDABLE' };
  },
  nockChargeAnswer(body) {
    nockToken(BASE).reply(200, TOKEN);
    nockCreateOrder().reply(201, body);
  },
  nockRefundAnswer(amount, body) {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE)
      .post(
        '/v2/payments/captures/0XX3309307732590Y/refund',
        (sent) => sent.amount?.value === toGateway(PAYPAL_CURRENCIES, amount, 'USD'),
      )
      .reply(201, body);
  },
  unmappedChargeAnswer: UNMAPPED,
  unmappedRefundAnswer: () => ({ ...REFUND, status: 'PARTIALLY_COMPLETED' }),
};
