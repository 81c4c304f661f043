import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizeNetClient } from '../../../src/gateways/authorizenet/client.ts';
import type { ChargeRequest } from '../../../src/gateways/types.ts';
import { expectEveryMockUsed } from '../../support/nock.ts';
import { ANSWERED_CALL_TIMEOUT_MS, HANGING_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';
import {
  API_PATH,
  type ApiBody,
  anetFixture,
  detailsAnswer,
  LOGIN_ID,
  nockApi,
  nockDetails,
  nockNoAnswer,
  RECORD_NOT_FOUND_ANSWER,
  TRANSACTION_KEY,
  withBom,
} from './support.ts';

const BASE = 'https://anet.client.test';
/** A client whose calls time out after `timeoutMs`. */
const client = (timeoutMs = ANSWERED_CALL_TIMEOUT_MS) =>
  new AuthorizeNetClient({
    apiLoginId: LOGIN_ID,
    transactionKey: TRANSACTION_KEY,
    apiBase: BASE,
    timeoutMs,
  });

const CHARGE: ChargeRequest = {
  reference: 'txn_01jh3k9q2m4v8c1tk0bd',
  amount: 4620n,
  currency: 'USD',
  initiation: 'recurring',
  paymentMethod: { token: '40338125/1000177237', customerId: null },
  description: 'invoice inv_01jh3k9q2m4v8c1tk0bc',
};
const INVOICE_NUMBER = '01jh3k9q2m4v8c1tk0bd';
const APPROVED = anetFixture('api.createTransaction.authCapture.approved.json');

const refundRequest = (amount = 1000n) => ({
  reference: 're_01jh3m0000000000000a',
  chargeReference: CHARGE.reference,
  gatewayTransactionId: '2228446239',
  amount,
  currency: 'USD',
  paymentMethod: CHARGE.paymentMethod,
});

beforeAll(() => nock.disableNetConnect());
afterEach(expectEveryMockUsed);
afterAll(() => nock.enableNetConnect());

describe('AuthorizeNetClient.charge', () => {
  it('sends authCaptureTransaction on the customer profile, in schema order, and reads the BOM-prefixed approval', async () => {
    const seen: ApiBody[] = [];
    nockApi(BASE, 'createTransactionRequest', APPROVED, () => true, seen);
    expect(await client().charge(CHARGE)).toEqual({
      status: 'succeeded',
      gatewayTransactionId: '2228446239',
      // accountNumber XXXX1111 and accountType Visa; Authorize.Net's answer has no expiry.
      card: { brand: 'Visa', last4: '1111', expMonth: null, expYear: null },
    });
    const [request] = seen;
    expect(Object.keys(request!)).toEqual(['merchantAuthentication', 'refId', 'transactionRequest']);
    expect(request!.merchantAuthentication).toEqual({ name: LOGIN_ID, transactionKey: TRANSACTION_KEY });
    // Our txn id without `txn_` (20 characters, the invoiceNumber and refId limit).
    expect(request!.refId).toBe(INVOICE_NUMBER);
    expect(request!.transactionRequest).toEqual({
      transactionType: 'authCaptureTransaction',
      amount: '46.20',
      currencyCode: 'USD',
      profile: { customerProfileId: '40338125', paymentProfile: { paymentProfileId: '1000177237' } },
      order: { invoiceNumber: INVOICE_NUMBER, description: 'invoice inv_01jh3k9q2m4v8c1tk0bc' },
      transactionSettings: {
        setting: [
          { settingName: 'duplicateWindow', settingValue: '28800' },
          // A recurring charge (CHARGE.initiation): flagged as recurring, and as a merchant-initiated
          // subsequent use of the stored profile.
          { settingName: 'recurringBilling', settingValue: 'true' },
        ],
      },
      processingOptions: { isSubsequentAuth: true },
    });
    // The JSON API is validated against the XSD sequence: members in schema order.
    expect(Object.keys(request!.transactionRequest)).toEqual([
      'transactionType',
      'amount',
      'currencyCode',
      'profile',
      'order',
      'transactionSettings',
      'processingOptions',
    ]);
  });

  it('flags an unscheduled merchant-initiated charge with recurringBilling false, still isSubsequentAuth', async () => {
    nockApi(
      BASE,
      'createTransactionRequest',
      APPROVED,
      (r) =>
        r.transactionRequest.processingOptions?.isSubsequentAuth === true &&
        r.transactionRequest.transactionSettings.setting.some(
          (s: { settingName: string; settingValue: string }) =>
            s.settingName === 'recurringBilling' && s.settingValue === 'false',
        ),
    );
    expect((await client().charge({ ...CHARGE, initiation: 'unscheduled' })).status).toBe('succeeded');
  });

  it('formats amounts with two decimals (CAD) and accepts a bare payment profile id with the customer id', async () => {
    const seen: ApiBody[] = [];
    nockApi(BASE, 'createTransactionRequest', APPROVED, () => true, seen);
    await client().charge({
      ...CHARGE,
      amount: 123_405n,
      currency: 'cad',
      paymentMethod: { token: '1000177237', customerId: '40338125' },
    });
    expect(seen.map((r) => [r.transactionRequest.amount, r.transactionRequest.currencyCode])).toEqual([
      ['1234.05', 'CAD'],
    ]);
    expect(seen[0]!.transactionRequest.profile).toEqual({
      customerProfileId: '40338125',
      paymentProfile: { paymentProfileId: '1000177237' },
    });
  });

  it.each([
    ['JPY', 500n],
    ['KWD', 1234n],
  ])(
    'declines %s without a call: Authorize.Net documents two-decimal amounts only',
    async (currency, amount) => {
      // AUTHORIZENET_CURRENCIES (no nock: any request would fail the test).
      expect(await client().charge({ ...CHARGE, amount, currency })).toMatchObject({
        status: 'declined',
        code: 'amount_not_representable',
        message: expect.stringContaining(`Authorize.Net does not take ${currency}`),
      });
    },
  );

  it('returns a decline (responseCode 2) with the reason code and text and the transId', async () => {
    nockApi(BASE, 'createTransactionRequest', anetFixture('api.createTransaction.declined.constructed.json'));
    expect(await client().charge(CHARGE)).toEqual({
      status: 'declined',
      code: '2',
      message: 'This transaction has been declined.',
      gatewayTransactionId: '508141795',
    });
  });

  it('keeps a charge held for review (responseCode 4) pending', async () => {
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.held_for_review.constructed.json'),
    );
    expect(await client().charge(CHARGE)).toEqual({ status: 'pending', gatewayTransactionId: '508141795' });
  });

  it('declines a duplicate (error 11) that names no original transaction', async () => {
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.authOnly.error11_duplicate.json'),
    );
    expect(await client().charge(CHARGE)).toEqual({
      status: 'declined',
      code: '11',
      message: 'A duplicate transaction has been submitted.',
    });
  });

  it('resolves a duplicate that names the original transaction by reading it: the attempt was already charged', async () => {
    // The real error-11 answer with the original's transId, as Authorize.Net returns it when a
    // duplicateWindow was sent (changed value).
    const duplicate = anetFixture('api.createTransaction.authOnly.error11_duplicate.json');
    duplicate.transactionResponse.transId = '2228446239';
    nockApi(BASE, 'createTransactionRequest', duplicate);
    nockDetails(
      BASE,
      '2228446239',
      // The original: this attempt's 46.20 USD, captured.
      detailsAnswer({
        transId: '2228446239',
        transactionStatus: 'capturedPendingSettlement',
        authAmount: 46.2,
      }),
    );
    expect(await client().charge(CHARGE)).toEqual({
      status: 'succeeded',
      gatewayTransactionId: '2228446239',
    });
  });

  it('declines a request refused before any transaction (resultCode Error, no transactionResponse) with the API code', async () => {
    nockApi(BASE, 'createTransactionRequest', {
      messages: {
        resultCode: 'Error',
        message: [
          { code: 'E00007', text: 'User authentication failed due to invalid authentication values.' },
        ],
      },
    });
    expect(await client().charge(CHARGE)).toEqual({
      status: 'declined',
      code: 'E00007',
      message: 'User authentication failed due to invalid authentication values.',
    });
  });

  it('leaves E00001 (unexpected system error) unknown', async () => {
    nockApi(BASE, 'createTransactionRequest', {
      messages: {
        resultCode: 'Error',
        message: [{ code: 'E00001', text: 'An error occurred during processing. Please try again.' }],
      },
    });
    expect((await client().charge(CHARGE)).status).toBe('unknown');
  });

  it.each([
    ['HTTP 500', () => nock(BASE).post(API_PATH).reply(500, 'Internal Server Error')],
    ['HTTP 503 with JSON', () => nock(BASE).post(API_PATH).reply(503, withBom(APPROVED))],
    ['a timeout', () => nockNoAnswer(BASE)],
    ['an answer that is not JSON', () => nock(BASE).post(API_PATH).reply(200, '<html>maintenance</html>')],
    [
      'an approval without a transId',
      () =>
        nock(BASE)
          .post(API_PATH)
          .reply(
            200,
            withBom({ ...APPROVED, transactionResponse: { ...APPROVED.transactionResponse, transId: '0' } }),
          ),
    ],
    [
      'an unexpected responseCode',
      () =>
        nock(BASE)
          .post(API_PATH)
          .reply(
            200,
            withBom({
              ...APPROVED,
              transactionResponse: { ...APPROVED.transactionResponse, responseCode: '7' },
            }),
          ),
    ],
  ])('leaves %s unknown, never declined', async (name, setUp) => {
    setUp();
    const timeoutMs = name === 'a timeout' ? HANGING_CALL_TIMEOUT_MS : ANSWERED_CALL_TIMEOUT_MS;
    const outcome = await client(timeoutMs).charge(CHARGE);
    expect(outcome.status).toBe('unknown');
  });

  it('leaves a network error unknown (no connection: nothing listens at the base URL)', async () => {
    const offline = new AuthorizeNetClient({
      apiLoginId: LOGIN_ID,
      transactionKey: TRANSACTION_KEY,
      apiBase: 'https://anet.offline.test',
      timeoutMs: ANSWERED_CALL_TIMEOUT_MS,
    });
    expect(await offline.charge(CHARGE)).toMatchObject({
      status: 'unknown',
      message: expect.stringMatching(/request\.api/),
    });
  });

  it('declines without calling Authorize.Net when the token is not a customer profile', async () => {
    expect(
      await client().charge({ ...CHARGE, paymentMethod: { token: 'pm_card_visa', customerId: null } }),
    ).toMatchObject({
      status: 'declined',
      code: 'invalid_payment_method',
    });
  });
});

describe('AuthorizeNetClient.refund', () => {
  it('sends refundTransaction with the profile, refTransId and our refund id as invoice number', async () => {
    const seen: ApiBody[] = [];
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.refund.approved.json'),
      () => true,
      seen,
    );
    expect(await client().refund(refundRequest())).toEqual({
      status: 'succeeded',
      gatewayRefundId: '2230581367',
    });
    const request = seen[0]!;
    expect(request.refId).toBe('01jh3m0000000000000a');
    expect(request.transactionRequest).toEqual({
      transactionType: 'refundTransaction',
      amount: '10.00',
      currencyCode: 'USD',
      profile: { customerProfileId: '40338125', paymentProfile: { paymentProfileId: '1000177237' } },
      refTransId: '2228446239',
      order: { invoiceNumber: '01jh3m0000000000000a' },
      transactionSettings: { setting: [{ settingName: 'duplicateWindow', settingValue: '28800' }] },
    });
    expect(Object.keys(request.transactionRequest)).toEqual([
      'transactionType',
      'amount',
      'currencyCode',
      'profile',
      'refTransId',
      'order',
      'transactionSettings',
    ]);
  });

  it('voids an unsettled charge instead when the whole amount is refunded (error 54)', async () => {
    const seen: ApiBody[] = [];
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.refund.error54_unsettled.constructed.json'),
      (r) => r.transactionRequest.transactionType === 'refundTransaction',
    );
    nockDetails(
      BASE,
      '2228446239',
      detailsAnswer({
        transId: '2228446239',
        transactionStatus: 'capturedPendingSettlement',
        authAmount: 46.2,
      }),
    );
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.void.approved.json'),
      (r) => r.transactionRequest.transactionType === 'voidTransaction',
      seen,
    );
    expect(await client().refund(refundRequest(4620n))).toEqual({
      status: 'succeeded',
      gatewayRefundId: '2230581408',
    });
    expect(seen[0]).toMatchObject({
      refId: INVOICE_NUMBER,
      transactionRequest: { transactionType: 'voidTransaction', refTransId: '2228446239' },
    });
  });

  it('declines a partial refund of an unsettled charge with code 54 and says why (a void would cancel everything)', async () => {
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.refund.error54_unsettled.constructed.json'),
    );
    nockDetails(
      BASE,
      '2228446239',
      detailsAnswer({
        transId: '2228446239',
        transactionStatus: 'capturedPendingSettlement',
        authAmount: '46.20',
      }),
    );
    const outcome = await client().refund(refundRequest(1000n));
    expect(outcome).toMatchObject({ status: 'declined', code: '54' });
    expect(outcome.status === 'declined' && outcome.message).toMatch(
      /does not meet the criteria for issuing a credit.*not settled yet.*partial refund/s,
    );
  });

  it('declines error 54 on a settled charge as Authorize.Net said, without voiding', async () => {
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.refund.error54_unsettled.constructed.json'),
    );
    nockDetails(BASE, '2228446239', detailsAnswer({ transId: '2228446239', authAmount: '46.20' }));
    expect(await client().refund(refundRequest(4620n))).toEqual({
      status: 'declined',
      code: '54',
      message:
        'The referenced transaction does not meet the criteria for issuing a credit. (transaction is settledSuccessfully)',
    });
  });

  it('declines other refusals with their reason, and leaves a 5xx unknown', async () => {
    const refused = anetFixture('api.createTransaction.void.error16_not_found.json');
    nockApi(BASE, 'createTransactionRequest', refused);
    expect(await client().refund(refundRequest())).toEqual({
      status: 'declined',
      code: '16',
      message: 'The transaction cannot be found.',
    });
    nock(BASE).post(API_PATH).reply(502, '');
    expect((await client().refund(refundRequest())).status).toBe('unknown');
  });
});

describe('AuthorizeNetClient.void', () => {
  const VOID = {
    reference: CHARGE.reference,
    gatewayTransactionId: '2230581408',
    amount: 4620n,
    currency: 'USD',
  };

  it('sends voidTransaction with refTransId and succeeds on responseCode 1', async () => {
    const seen: ApiBody[] = [];
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.void.approved.json'),
      () => true,
      seen,
    );
    expect(await client().void(VOID)).toEqual({ status: 'succeeded' });
    expect(seen[0]!.transactionRequest).toEqual({
      transactionType: 'voidTransaction',
      refTransId: '2230581408',
    });
  });

  it('declines error 16 (transaction not found) and leaves a timeout unknown', async () => {
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.void.error16_not_found.json'),
    );
    expect(await client().void(VOID)).toEqual({
      status: 'declined',
      code: '16',
      message: 'The transaction cannot be found.',
    });
    nockNoAnswer(BASE);
    expect((await client(HANGING_CALL_TIMEOUT_MS).void(VOID)).status).toBe('unknown');
  });
});

describe('AuthorizeNetClient.fetchTransaction', () => {
  const query = (gatewayTransactionId?: string) => ({
    reference: CHARGE.reference,
    gatewayTransactionId,
    charge: CHARGE,
  });

  it.each([
    ['settledSuccessfully', { status: 'succeeded', gatewayTransactionId: '2162566217' }],
    ['capturedPendingSettlement', { status: 'succeeded', gatewayTransactionId: '2162566217' }],
    ['FDSPendingReview', { status: 'pending', gatewayTransactionId: '2162566217' }],
    ['FDSAuthorizedPendingReview', { status: 'pending', gatewayTransactionId: '2162566217' }],
    ['underReview', { status: 'pending', gatewayTransactionId: '2162566217' }],
    [
      'someNewStatus',
      {
        status: 'unknown',
        message: 'transaction 2162566217 has status someNewStatus, which billhook does not know',
      },
    ],
    [
      'declined',
      {
        status: 'declined',
        code: '2',
        message: 'This transaction has been declined.',
        gatewayTransactionId: '2162566217',
      },
    ],
    ['voided', { status: 'declined', code: 'voided', gatewayTransactionId: '2162566217' }],
  ])('reads a known transId with getTransactionDetails: %s', async (transactionStatus, expected) => {
    const change =
      transactionStatus === 'declined'
        ? {
            transactionStatus,
            responseCode: 2,
            responseReasonCode: 2,
            responseReasonDescription: 'This transaction has been declined.',
          }
        : { transactionStatus };
    // The details of CHARGE's 46.20 USD.
    nockDetails(BASE, '2162566217', detailsAnswer({ ...change, authAmount: 46.2 }));
    expect(await client().fetchTransaction(query('2162566217'))).toMatchObject(expected);
  });

  it('reads a charge settled for less than was charged as succeeded with what settled (a partial capture), more as unknown, in full as succeeded', async () => {
    // CHARGE is 46.20 USD; the real details answer with its amounts changed.
    nockDetails(
      BASE,
      '2162566217',
      detailsAnswer({ transactionStatus: 'settledSuccessfully', authAmount: 46.2, settleAmount: 40.0 }),
    );
    // settleAmount 40.00 USD = 4000 minor units moved, of the 4620 charged.
    expect(await client().fetchTransaction(query('2162566217'))).toEqual({
      status: 'succeeded',
      gatewayTransactionId: '2162566217',
      amount: 4000n,
    });
    // The same through a list entry (no transId known): the customer profile list's settleAmount.
    const list = anetFixture('api.getUnsettledTransactionList.json');
    list.transactions[1].invoiceNumber = INVOICE_NUMBER;
    list.transactions[1].settleAmount = 12.34; // 1234 minor units of the 4620 charged
    list.transactions[1].transactionStatus = 'capturedPendingSettlement';
    nockApi(BASE, 'getTransactionListForCustomerRequest', list);
    expect(await client().fetchTransaction(query())).toEqual({
      status: 'succeeded',
      gatewayTransactionId: '2228546083',
      amount: 1234n,
    });
    // Settled 50.00 (5000) on a 46.20 (4620) charge: never booked as more than was asked.
    nockDetails(
      BASE,
      '2162566217',
      detailsAnswer({ transactionStatus: 'settledSuccessfully', authAmount: 46.2, settleAmount: 50.0 }),
    );
    expect(await client().fetchTransaction(query('2162566217'))).toEqual({
      status: 'unknown',
      message: 'transaction 2162566217 settled 5000, not the 4620 charged (minor units of USD)',
    });
    // Settled nothing: no money moved for sure, so unknown rather than a success of 0.
    nockDetails(
      BASE,
      '2162566217',
      detailsAnswer({ transactionStatus: 'settledSuccessfully', authAmount: 46.2, settleAmount: 0 }),
    );
    expect(await client().fetchTransaction(query('2162566217'))).toEqual({
      status: 'unknown',
      message: 'transaction 2162566217 settled 0, not the 4620 charged (minor units of USD)',
    });
    nockDetails(
      BASE,
      '2162566217',
      detailsAnswer({ transactionStatus: 'capturedPendingSettlement', authAmount: 46.2, settleAmount: 46.2 }),
    );
    expect(await client().fetchTransaction(query('2162566217'))).toEqual({
      status: 'succeeded',
      gatewayTransactionId: '2162566217',
    });
  });

  it('finds a charge without transId by our invoice number in the customer profile list, newest first', async () => {
    const list = anetFixture('api.getUnsettledTransactionList.json');
    list.transactions[1].invoiceNumber = INVOICE_NUMBER;
    list.transactions[1].settleAmount = 46.2; // what CHARGE charged
    list.transactions[1].transactionStatus = 'capturedPendingSettlement';
    const seen: ApiBody[] = [];
    nockApi(BASE, 'getTransactionListForCustomerRequest', list, () => true, seen);
    expect(await client().fetchTransaction(query())).toEqual({
      status: 'succeeded',
      gatewayTransactionId: '2228546083',
    });
    expect(seen[0]).toEqual({
      merchantAuthentication: { name: LOGIN_ID, transactionKey: TRANSACTION_KEY },
      customerProfileId: '40338125',
      customerPaymentProfileId: '1000177237',
      sorting: { orderBy: 'submitTimeUTC', orderDescending: true },
      paging: { limit: 100, offset: 1 },
    });
  });

  it('then looks in the unsettled list, and answers not_found only when neither has it', async () => {
    const unsettled = anetFixture('api.getUnsettledTransactionList.json');
    nockApi(BASE, 'getTransactionListForCustomerRequest', {
      messages: { resultCode: 'Ok', message: [{ code: 'I00004', text: 'No records found.' }] },
    });
    nockApi(BASE, 'getUnsettledTransactionListRequest', unsettled);
    expect(await client().fetchTransaction(query())).toEqual({ status: 'not_found' });

    const found = anetFixture('api.getUnsettledTransactionList.json');
    found.transactions[2].invoiceNumber = INVOICE_NUMBER;
    nockApi(
      BASE,
      'getTransactionListForCustomerRequest',
      anetFixture('api.getUnsettledTransactionList.json'),
    );
    nockApi(BASE, 'getUnsettledTransactionListRequest', found);
    expect(await client().fetchTransaction(query())).toEqual({
      status: 'pending',
      gatewayTransactionId: '2228545865',
    });
  });

  it('falls back to the invoice number when the transId is unknown to Authorize.Net (E00040)', async () => {
    nockDetails(BASE, '99', RECORD_NOT_FOUND_ANSWER);
    nockApi(BASE, 'getTransactionListForCustomerRequest', RECORD_NOT_FOUND_ANSWER);
    nockApi(BASE, 'getUnsettledTransactionListRequest', anetFixture('api.getUnsettledTransactionList.json'));
    expect(await client().fetchTransaction(query('99'))).toEqual({ status: 'not_found' });
  });

  it('is unknown, never not_found, when a lookup fails', async () => {
    nock(BASE).post(API_PATH).reply(500);
    expect((await client().fetchTransaction(query())).status).toBe('unknown');
    nockApi(BASE, 'getTransactionListForCustomerRequest', {
      messages: { resultCode: 'Error', message: [{ code: 'E00007', text: 'User authentication failed.' }] },
    });
    expect((await client().fetchTransaction(query())).status).toBe('unknown');
  });
});

describe('AuthorizeNetClient.accountCurrencies', () => {
  it('reads the currencies of getMerchantDetails once and caches them', async () => {
    nockApi(BASE, 'getMerchantDetailsRequest', anetFixture('api.getMerchantDetails.json'));
    const c = client();
    expect(await c.accountCurrencies()).toEqual(['USD']);
    expect(await c.accountCurrencies()).toEqual(['USD']);
  });

  it('accepts an account with several currencies (the field is a list), refuses one with none, and asks again after a failure', async () => {
    const none = anetFixture('api.getMerchantDetails.json');
    none.currencies = ['XXX1'];
    nockApi(BASE, 'getMerchantDetailsRequest', none);
    const c = client();
    await expect(c.accountCurrencies()).rejects.toThrow(/at least one ISO 4217 currency/);
    const several = anetFixture('api.getMerchantDetails.json');
    several.currencies = ['USD', 'cad'];
    nockApi(BASE, 'getMerchantDetailsRequest', several);
    expect(await c.accountCurrencies()).toEqual(['USD', 'CAD']);
  });
});
