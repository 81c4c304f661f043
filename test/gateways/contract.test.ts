import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HANGING_CALL_TIMEOUT_MS } from '../support/timeouts.ts';
import { contractCases } from './contract-cases.ts';

/**
 * One contract, every adapter: charge approved, declined (the gateway's code and message kept),
 * timed out → unknown → the status check resolves it, partial refund, void; and every answer the
 * adapter cannot be sure of — a status its table does not list, a body that is not JSON, JSON of
 * another shape — is `unknown` for a charge and a refund, never a decline (PRODUCT.md §11).
 * Gateways' servers are nock on their real fixture answers.
 */
describe.each(contractCases)('$gateway adapter contract', (contract) => {
  beforeAll(() => {
    nock.disableNetConnect();
  });
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
  });
  afterAll(() => {
    nock.enableNetConnect();
  });

  it('charges a stored payment method: succeeded with the gateway transaction id', async () => {
    contract.nockApproved();
    expect(await contract.client().charge(contract.charge)).toEqual({
      status: 'succeeded',
      gatewayTransactionId: contract.approvedTransactionId,
      ...(contract.approvedCard ? { card: contract.approvedCard } : {}),
    });
  });

  it('returns a decline as data, with the gateway code and message', async () => {
    const { code, message } = contract.nockDeclined();
    const outcome = await contract.client().charge(contract.charge);
    expect(outcome.status).toBe('declined');
    expect(outcome).toMatchObject({ code });
    expect(outcome.status === 'declined' && outcome.message).toMatch(message);
  });

  it('leaves a timed-out charge unknown, and the status check resolves it', async () => {
    contract.nockTimeout();
    // Only the charge, which never gets an answer, has the short timeout: the status check is made
    // by a client with the long one, so no answered call races a timer on a busy machine.
    const outcome = await contract.client(HANGING_CALL_TIMEOUT_MS).charge(contract.charge);
    expect(outcome.status).toBe('unknown');
    // The client gave up (its timeout aborted the request): no abortPendingRequests here, since
    // erroring a socket undici already closed throws inside undici.
    nock.cleanAll();
    contract.nockPollFindsSuccess();
    expect(
      await contract
        .client()
        .fetchTransaction({ reference: contract.charge.reference, charge: contract.charge }),
    ).toEqual({
      status: 'succeeded',
      gatewayTransactionId: contract.approvedTransactionId,
      ...(contract.polledCard ? { card: contract.polledCard } : {}),
    });
  });

  const unreadable: [string, () => string | object][] = [
    ['a status its status table does not list', () => contract.unmappedChargeAnswer],
    ['a body that is not JSON', () => '<html><body>502 Bad Gateway</body></html>'],
    ['JSON of another shape', () => ({ result: 'ok' })],
  ];

  it.each(unreadable)('leaves a charge answered with %s unknown', async (_what, body) => {
    contract.nockChargeAnswer(body());
    expect(await contract.client().charge(contract.charge)).toMatchObject({ status: 'unknown' });
  });

  it.each([
    ['a status its status table does not list', (amount: bigint) => contract.unmappedRefundAnswer(amount)],
    ['a body that is not JSON', () => '<html><body>502 Bad Gateway</body></html>'],
    ['JSON of another shape', () => ({ result: 'ok' })],
  ] as [string, (amount: bigint) => string | object][])(
    'leaves a refund answered with %s unknown',
    async (_what, body) => {
      const amount = contract.charge.amount / 4n;
      contract.nockRefundAnswer(amount, body(amount));
      const outcome = await contract.client().refund({
        reference: 're_contract01',
        chargeReference: contract.charge.reference,
        gatewayTransactionId: contract.approvedTransactionId,
        amount,
        currency: contract.charge.currency,
        paymentMethod: contract.charge.paymentMethod,
      });
      expect(outcome).toMatchObject({ status: 'unknown' });
    },
  );

  it('refunds part of a charge', async () => {
    const amount = contract.charge.amount / 4n;
    contract.nockPartialRefund(amount);
    const outcome = await contract.client().refund({
      reference: 're_contract01',
      chargeReference: contract.charge.reference,
      gatewayTransactionId: contract.approvedTransactionId,
      amount,
      currency: contract.charge.currency,
      paymentMethod: contract.charge.paymentMethod,
    });
    expect(outcome.status).toBe('succeeded');
  });

  it('voids a charge, or declines with its code where the gateway cannot', async () => {
    const expected = contract.nockVoid();
    const outcome = await contract.client().void({
      reference: contract.charge.reference,
      gatewayTransactionId: contract.approvedTransactionId,
      amount: contract.charge.amount,
      currency: contract.charge.currency,
    });
    expect(outcome).toMatchObject(expected);
  });
});
