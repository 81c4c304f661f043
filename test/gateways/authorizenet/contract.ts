import { AuthorizeNetClient } from '../../../src/gateways/authorizenet/client.ts';
import { AUTHORIZENET_CURRENCIES } from '../../../src/gateways/authorizenet/currencies.ts';
import { toGateway } from '../../../src/money/gateway-amount.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';
import type { ContractCase } from '../contract-case.ts';
import { anetFixture, LOGIN_ID, nockApi, nockNoAnswer, TRANSACTION_KEY } from './support.ts';

const BASE = 'https://authorizenet.contract.test';
const REFERENCE = 'txn_01jh3k9q2m4v8c1tk0bd';
const INVOICE_NUMBER = REFERENCE.slice('txn_'.length);
const APPROVED = anetFixture('api.createTransaction.authCapture.approved.json');
const TRANS_ID: string = APPROVED.transactionResponse.transId;
const REFUNDED = anetFixture('api.createTransaction.refund.approved.json');

/** An answer with a `transactionResponse.responseCode` outside 1-4 (status.ts: unknown). */
const withResponseCode = (answer: any, responseCode: string) => ({
  ...answer,
  transactionResponse: { ...answer.transactionResponse, responseCode },
});

/** Authorize.Net in the shared contract suite, on the real JSON answers of test/fixtures/authorizenet. */
export const contract: ContractCase = {
  gateway: 'authorizenet',
  client: (timeoutMs = ANSWERED_CALL_TIMEOUT_MS) =>
    new AuthorizeNetClient({
      apiLoginId: LOGIN_ID,
      transactionKey: TRANSACTION_KEY,
      apiBase: BASE,
      timeoutMs,
    }),
  charge: {
    reference: REFERENCE,
    amount: 4620n,
    currency: 'USD',
    initiation: 'recurring',
    paymentMethod: { token: '40338125/1000177237', customerId: null },
  },
  approvedTransactionId: TRANS_ID,
  // The card as the approved fixture answer describes it (src/gateways/authorizenet/card.ts).
  approvedCard: { brand: 'Visa', last4: '1111', expMonth: null, expYear: null },
  nockApproved() {
    nockApi(
      BASE,
      'createTransactionRequest',
      APPROVED,
      (r) =>
        r.refId === INVOICE_NUMBER &&
        r.transactionRequest.transactionType === 'authCaptureTransaction' &&
        r.transactionRequest.amount === '46.20' &&
        r.transactionRequest.order.invoiceNumber === INVOICE_NUMBER &&
        r.transactionRequest.profile.paymentProfile.paymentProfileId === '1000177237',
    );
  },
  nockDeclined() {
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.authOnly.error11_duplicate.json'),
    );
    return { code: '11', message: /duplicate transaction/ };
  },
  nockTimeout() {
    nockNoAnswer(BASE);
  },
  nockPollFindsSuccess() {
    // The customer profile's transaction list (real list shape) holding our invoice number.
    const list = anetFixture('api.getUnsettledTransactionList.json');
    Object.assign(list.transactions[0], {
      transId: TRANS_ID,
      invoiceNumber: INVOICE_NUMBER,
      transactionStatus: 'capturedPendingSettlement',
      settleAmount: 46.2, // the charge's 46.20 USD, captured in full
    });
    nockApi(BASE, 'getTransactionListForCustomerRequest', list, (r) => r.customerProfileId === '40338125');
  },
  nockPartialRefund(amount) {
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.refund.approved.json'),
      (r) =>
        r.transactionRequest.transactionType === 'refundTransaction' &&
        r.transactionRequest.refTransId === TRANS_ID &&
        r.transactionRequest.amount === toGateway(AUTHORIZENET_CURRENCIES, amount, 'USD'),
    );
  },
  nockVoid() {
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.void.approved.json'),
      (r) =>
        r.transactionRequest.transactionType === 'voidTransaction' &&
        r.transactionRequest.refTransId === TRANS_ID,
    );
    return { status: 'succeeded' };
  },
  nockChargeAnswer(body) {
    nockApi(
      BASE,
      'createTransactionRequest',
      body,
      (r) => r.transactionRequest.transactionType === 'authCaptureTransaction',
    );
  },
  nockRefundAnswer(amount, body) {
    nockApi(
      BASE,
      'createTransactionRequest',
      body,
      (r) =>
        r.transactionRequest.transactionType === 'refundTransaction' &&
        r.transactionRequest.amount === toGateway(AUTHORIZENET_CURRENCIES, amount, 'USD'),
    );
  },
  unmappedChargeAnswer: withResponseCode(APPROVED, '5'),
  unmappedRefundAnswer: () => withResponseCode(REFUNDED, '5'),
};
