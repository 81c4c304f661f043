import nock from 'nock';
import { EwayClient } from '../../../src/gateways/eway/client.ts';
import { ANSWERED_CALL_TIMEOUT_MS, noAnswer } from '../../support/timeouts.ts';
import type { ContractCase } from '../contract-case.ts';
import {
  EWAY_TEST_AUTHORIZATION,
  EWAY_TEST_KEY,
  EWAY_TEST_PASSWORD,
  ewayFixture,
  FIXTURE_TOKEN,
} from './fixtures.ts';

const BASE = 'https://eway.contract.test';
const APPROVED = ewayFixture('api.transaction.token_payment.approved.json');
const REFERENCE = 'txn_contractewayx0000001';

/**
 * eWAY in the shared contract suite: the real token payment approval (TransactionID 10328337, AUD 1.00),
 * the real D4401 decline, the SDK's Transaction Query answer for the poll and the real refund approval.
 * A void of the captured token payment is refused by eWAY (constructed V6134 answer, see SOURCES.md).
 */
export const contract: ContractCase = {
  gateway: 'eway',
  client: (timeoutMs = ANSWERED_CALL_TIMEOUT_MS) =>
    new EwayClient({ apiKey: EWAY_TEST_KEY, apiPassword: EWAY_TEST_PASSWORD, apiBase: BASE, timeoutMs }),
  charge: {
    reference: REFERENCE,
    amount: 100n,
    currency: 'AUD',
    initiation: 'recurring',
    paymentMethod: { token: FIXTURE_TOKEN, customerId: null },
  },
  approvedTransactionId: String(APPROVED.TransactionID),
  // The card as the approved fixture answer describes it (src/gateways/eway/card.ts).
  approvedCard: { brand: null, last4: '1111', expMonth: 9, expYear: 2015 },
  nockApproved() {
    nock(BASE)
      .post(
        '/Transaction',
        (body) =>
          body.Method === 'TokenPayment' &&
          body.Customer.TokenCustomerID === FIXTURE_TOKEN &&
          body.Payment.InvoiceReference === REFERENCE &&
          body.Payment.TotalAmount === 100,
      )
      .matchHeader('authorization', EWAY_TEST_AUTHORIZATION)
      .reply(200, APPROVED);
  },
  nockDeclined() {
    nock(BASE).post('/Transaction').reply(200, ewayFixture('api.transaction.purchase.declined_D4401.json'));
    return { code: 'D4401', message: /Refer to Issuer/ };
  },
  nockTimeout() {
    nock(BASE).post('/Transaction').reply(noAnswer);
  },
  nockPollFindsSuccess() {
    const query = ewayFixture('api.transaction.query_by_id.json');
    Object.assign(query.Transactions[0], {
      TransactionID: APPROVED.TransactionID,
      InvoiceReference: REFERENCE,
      TotalAmount: 100,
    });
    nock(BASE).get(`/Transaction/InvoiceRef/${REFERENCE}`).reply(200, query);
  },
  nockPartialRefund(amount) {
    nock(BASE)
      .post(
        `/Transaction/${APPROVED.TransactionID}/Refund`,
        (body) =>
          body.Refund.TotalAmount === Number(amount) && body.Refund.TransactionID === APPROVED.TransactionID,
      )
      .reply(200, ewayFixture('api.refund.approved.json'));
  },
  nockVoid() {
    nock(BASE)
      .post('/CancelAuthorisation', { TransactionID: APPROVED.TransactionID })
      .reply(200, ewayFixture('api.cancel_authorisation.declined.constructed.json'));
    return { status: 'declined', code: 'V6134' };
  },
  nockChargeAnswer(body) {
    nock(BASE).post('/Transaction').reply(200, body);
  },
  nockRefundAnswer(amount, body) {
    nock(BASE)
      .post(
        `/Transaction/${APPROVED.TransactionID}/Refund`,
        (sent) => sent.Refund.TotalAmount === Number(amount),
      )
      .reply(200, body);
  },
  // No TransactionStatus and a system code eWAY's list does not have (status.ts: open).
  unmappedChargeAnswer: { ...APPROVED, TransactionStatus: null, ResponseMessage: '', Errors: 'S5777' },
  unmappedRefundAnswer: () => ({
    ...ewayFixture('api.refund.approved.json'),
    TransactionStatus: null,
    ResponseMessage: '',
    Errors: 'S5777',
  }),
};
