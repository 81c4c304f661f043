import nock from 'nock';
import { attemptCreatedAt } from '../../../src/gateways/attempts.ts';
import { SecurepayClient } from '../../../src/gateways/securepay/client.ts';
import { ANSWERED_CALL_TIMEOUT_MS, noAnswer } from '../../support/timeouts.ts';
import type { ContractCase } from '../contract-case.ts';
import { nockToken, PAID, securepayFixture } from './fixtures.ts';

const BASE = 'https://securepay.contract.test';
const AUTH_URL = 'https://auth.securepay.contract.test/oauth/token';
const REFERENCE = PAID.orderId as string;
const CUSTOMER = PAID.customerCode as string;
const PAYMENTS = `/v2/customers/${CUSTOMER}/payments`;
const REFUND = securepayFixture('api.orders.refunds.paid.constructed.json');

/**
 * SecurePay in the shared contract suite, on the constructed answers of test/fixtures/securepay (no
 * real SecurePay body is public; see SOURCES.md there). Every client is new, so each scenario's first
 * call fetches an OAuth token, the repeat after a timeout too.
 */
export const contract: ContractCase = {
  gateway: 'securepay',
  client: (timeoutMs = ANSWERED_CALL_TIMEOUT_MS) =>
    new SecurepayClient({
      clientId: 'sp-contract-id',
      clientSecret: 'sp-contract-secret',
      merchantCode: '5AR0055',
      apiBase: BASE,
      authUrl: AUTH_URL,
      timeoutMs,
      tokenTimeoutMs: ANSWERED_CALL_TIMEOUT_MS,
      // A minute after the attempt, as the first status check: SecurePay's repeat is made only
      // while the attempt is younger than SAFE_REPEAT_WINDOW_MS.
      now: () => attemptCreatedAt(REFERENCE)!.getTime() + 61_000,
    }),
  charge: {
    reference: REFERENCE,
    amount: 10000n,
    currency: 'AUD',
    initiation: 'recurring',
    paymentMethod: { token: PAID.token, customerId: CUSTOMER },
  },
  // SecurePay identifies the payment by the orderId we sent: our reference.
  approvedTransactionId: REFERENCE,
  nockApproved() {
    nockToken(AUTH_URL);
    nock(BASE).post(PAYMENTS).matchHeader('idempotency-key', REFERENCE).reply(201, PAID);
  },
  nockDeclined() {
    nockToken(AUTH_URL);
    nock(BASE).post(PAYMENTS).reply(201, securepayFixture('api.customers.payments.failed.constructed.json'));
    return { code: '51', message: /Insufficient Funds/ };
  },
  nockTimeout() {
    nockToken(AUTH_URL);
    nock(BASE).post(PAYMENTS).reply(noAnswer);
  },
  nockPollFindsSuccess() {
    // The idempotent repeat: same Idempotency-Key and orderId, answered with the paid payment.
    nockToken(AUTH_URL);
    nock(BASE)
      .post(PAYMENTS, (body) => body.orderId === REFERENCE)
      .matchHeader('idempotency-key', REFERENCE)
      .reply(200, PAID);
  },
  nockPartialRefund(amount) {
    nockToken(AUTH_URL);
    nock(BASE)
      .post(`/v2/orders/${REFERENCE}/refunds`, (body) => body.amount === Number(amount))
      .matchHeader('idempotency-key', 're_contract01')
      .reply(201, { ...REFUND, amount: Number(amount) });
  },
  nockVoid() {
    // Nothing is sent: SecurePay cancels only pre-authorisations.
    return { status: 'declined', code: 'not_a_preauthorisation' };
  },
  nockChargeAnswer(body) {
    nockToken(AUTH_URL);
    nock(BASE).post(PAYMENTS).reply(201, body);
  },
  nockRefundAnswer(amount, body) {
    nockToken(AUTH_URL);
    nock(BASE)
      .post(`/v2/orders/${REFERENCE}/refunds`, (sent) => sent.amount === Number(amount))
      .reply(201, body);
  },
  // SecurePay documents paid, failed and unknown (status.ts); `processing` is none of them.
  unmappedChargeAnswer: { ...PAID, status: 'processing', gatewayResponseCode: '51' },
  unmappedRefundAnswer: (amount) => ({ ...REFUND, amount: Number(amount), status: 'processing' }),
};
