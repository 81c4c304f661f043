import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizeNetClient, type TransactionSource } from '../../../src/gateways/authorizenet/client.ts';
import { parseAnetJson } from '../../../src/gateways/authorizenet/conventions.ts';
import { signAuthorizenetPayload } from '../../../src/gateways/authorizenet/test-events.ts';
import { AuthorizeNetWebhook } from '../../../src/gateways/authorizenet/webhook.ts';
import { WebhookPayloadError, WebhookVerificationError } from '../../../src/gateways/types.ts';
import { expectEveryMockUsed } from '../../support/nock.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';
import {
  anetFixture,
  anetFixtureRaw,
  detailsAnswer,
  FIXTURE_SIGNATURE_KEY,
  LOGIN_ID,
  nockDetails,
  nockMerchantDetails,
  RECORD_NOT_FOUND_ANSWER,
  TRANSACTION_KEY,
} from './support.ts';

const BASE = 'https://anet.webhook.test';
const FIXTURE = 'webhook.net.authorize.payment.authcapture.created.json';
const RAW = anetFixtureRaw(FIXTURE);
/** The real header, under the name Node gives it (lower case). */
const SIGNATURE: string = anetFixture('webhook.net.authorize.payment.authcapture.created.headers.json')[
  'X-Anet-Signature'
];

const unusedSource: TransactionSource = {
  transactionDetails: () => Promise.reject(new Error('verify must not call the API')),
  accountCurrencies: () => Promise.reject(new Error('verify must not call the API')),
};

const newClient = () =>
  new AuthorizeNetClient({
    apiLoginId: LOGIN_ID,
    transactionKey: TRANSACTION_KEY,
    apiBase: BASE,
    timeoutMs: ANSWERED_CALL_TIMEOUT_MS,
  });

describe('AuthorizeNetWebhook.verify', () => {
  const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], unusedSource);

  it('accepts the real signed notification with the key that signed it, and dedupes on notificationId', async () => {
    expect(await webhook.verify(Buffer.from(RAW), { 'x-anet-signature': SIGNATURE })).toEqual({
      eventId: '182cbbff-cab2-4080-931d-80e5d818f23a',
      eventType: 'net.authorize.payment.authcapture.created',
    });
  });

  it('compares the hex case-insensitively and accepts a header given twice (first value)', async () => {
    const lower = `sha512=${SIGNATURE.slice('sha512='.length).toLowerCase()}`;
    await expect(webhook.verify(Buffer.from(RAW), { 'x-anet-signature': lower })).resolves.toBeTruthy();
    await expect(
      webhook.verify(Buffer.from(RAW), { 'x-anet-signature': [SIGNATURE, 'sha512=00'] }),
    ).resolves.toBeTruthy();
    await expect(
      webhook.verify(Buffer.from(RAW), { 'x-anet-signature': `SHA512=${SIGNATURE.slice(7)}` }),
    ).resolves.toBeTruthy();
  });

  it('accepts any configured key (rotation)', async () => {
    const rotating = new AuthorizeNetWebhook(['A'.repeat(128), FIXTURE_SIGNATURE_KEY], unusedSource);
    await expect(rotating.verify(Buffer.from(RAW), { 'x-anet-signature': SIGNATURE })).resolves.toBeTruthy();
  });

  it.each([
    ['a tampered body', Buffer.from(RAW.replace('"authAmount":0.0', '"authAmount":9.0')), SIGNATURE],
    [
      'a body re-serialised with other whitespace',
      Buffer.from(JSON.stringify(JSON.parse(RAW), null, 2)),
      SIGNATURE,
    ],
    ['a signature of another body', Buffer.from(RAW), signAuthorizenetPayload('{}', FIXTURE_SIGNATURE_KEY)],
    ['a missing header', Buffer.from(RAW), undefined],
    ['an empty header', Buffer.from(RAW), ''],
    ['another algorithm prefix', Buffer.from(RAW), SIGNATURE.replace('sha512=', 'sha256=')],
    ['a truncated signature', Buffer.from(RAW), SIGNATURE.slice(0, -2)],
  ])('rejects %s', async (_name, body, header) => {
    await expect(
      webhook.verify(body, header === undefined ? {} : { 'x-anet-signature': header }),
    ).rejects.toBeInstanceOf(WebhookVerificationError);
  });

  it('rejects the real delivery checked with another key', async () => {
    const wrong = new AuthorizeNetWebhook(['52CB4A00'.padEnd(128, '0')], unusedSource);
    await expect(wrong.verify(Buffer.from(RAW), { 'x-anet-signature': SIGNATURE })).rejects.toThrow(
      /does not match/,
    );
  });

  it('answers a correctly signed body that is not a notification, or a payment notification naming no transaction, with WebhookPayloadError', async () => {
    const noTransaction = anetFixture(FIXTURE);
    delete noTransaction.payload.id;
    for (const body of [
      'not json',
      '{"eventType":"net.authorize.payment.authcapture.created"}',
      JSON.stringify(noTransaction),
    ]) {
      await expect(
        webhook.verify(Buffer.from(body), {
          'x-anet-signature': signAuthorizenetPayload(body, FIXTURE_SIGNATURE_KEY),
        }),
      ).rejects.toBeInstanceOf(WebhookPayloadError);
    }
  });
});

describe('AuthorizeNetWebhook.normalize', () => {
  beforeAll(() => nock.disableNetConnect());
  afterEach(expectEveryMockUsed);
  afterAll(() => nock.enableNetConnect());

  /** A notification fixture with another event type (real bodies exist only for authcapture and fraud.held). */
  function notification(name: string, eventType?: string, id?: string): string {
    const body = anetFixture(name);
    if (eventType) body.eventType = eventType;
    if (id) body.payload.id = id;
    return JSON.stringify(body);
  }

  it('reads the transaction the real notification names and reports only what getTransactionDetails returns', async () => {
    const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], newClient());
    // The notification says responseCode 0 and authAmount 0.0; the API says settled, 1018.88.
    nockDetails(
      BASE,
      '40005915599',
      detailsAnswer({ transId: '40005915599', order: { invoiceNumber: '01jh3k9q2m4v8c1tk0bd' } }),
    );
    nockMerchantDetails(BASE);
    const [event, ...rest] = await webhook.normalize(RAW);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'charge.succeeded',
      gateway: 'authorizenet',
      gatewayEventId: '182cbbff-cab2-4080-931d-80e5d818f23a',
      gatewayTransactionId: '40005915599',
      reference: 'txn_01jh3k9q2m4v8c1tk0bd',
      amount: 101888n,
      currency: 'USD',
    });
    expect(event!.occurredAt.toISOString()).toBe('2017-08-18T20:40:52.772Z');
    expect(event!.failureCode).toBeUndefined();
    expect(typeof event!.amount).toBe('bigint');
  });

  it('caches the account currency: one getMerchantDetails for many notifications', async () => {
    const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], newClient());
    nockMerchantDetails(BASE);
    nockDetails(BASE, '40005915599', detailsAnswer({ transId: '40005915599' }));
    nockDetails(
      BASE,
      '2154067719',
      detailsAnswer({ transId: '2154067719', transactionStatus: 'FDSPendingReview' }),
    );
    const first = await webhook.normalize(RAW);
    const second = await webhook.normalize(anetFixtureRaw('webhook.net.authorize.payment.fraud.held.json'));
    expect([first[0]!.type, second[0]!.type]).toEqual(['charge.succeeded', 'charge.pending']);
    // An invoice number that is not a billhook id (the sample's "60") is no reference.
    expect(first[0]!.reference).toBeUndefined();
  });

  /** The API as the client reads it: the real details answer with `transaction` changed, parsed as the client parses. */
  const source = (transaction: Record<string, unknown>): TransactionSource => ({
    transactionDetails: async (transId) => ({
      kind: 'found',
      transaction: (parseAnetJson(JSON.stringify(detailsAnswer({ transId, ...transaction }))) as any)
        .transaction,
    }),
    accountCurrencies: async () => ['USD'],
  });

  it.each([
    [
      'webhook.net.authorize.payment.authcapture.created.docs-sample.json',
      undefined,
      { transactionStatus: 'capturedPendingSettlement' },
      'charge.succeeded',
    ],
    [
      'webhook.net.authorize.payment.authcapture.created.json',
      'net.authorize.payment.capture.created',
      { transactionStatus: 'settledSuccessfully' },
      'charge.succeeded',
    ],
    [
      'webhook.net.authorize.payment.authcapture.created.json',
      'net.authorize.payment.priorAuthCapture.created',
      { transactionStatus: 'capturedPendingSettlement' },
      'charge.succeeded',
    ],
    [
      'webhook.net.authorize.payment.fraud.held.json',
      undefined,
      { transactionStatus: 'FDSPendingReview' },
      'charge.pending',
    ],
    [
      'webhook.net.authorize.payment.fraud.held.json',
      undefined,
      { transactionStatus: 'FDSAuthorizedPendingReview' },
      'charge.pending',
    ],
    [
      'webhook.net.authorize.payment.fraud.held.json',
      'net.authorize.payment.fraud.approved',
      { transactionStatus: 'capturedPendingSettlement' },
      'charge.succeeded',
    ],
    [
      'webhook.net.authorize.payment.fraud.held.json',
      'net.authorize.payment.fraud.approved',
      { transactionStatus: 'approvedReview' },
      'charge.pending',
    ],
    [
      'webhook.net.authorize.payment.fraud.held.json',
      'net.authorize.payment.fraud.declined',
      {
        transactionStatus: 'declined',
        responseReasonCode: '254',
        responseReasonDescription: 'Your transaction has been declined.',
      },
      'charge.failed',
    ],
    [
      'webhook.net.authorize.payment.fraud.held.json',
      'net.authorize.payment.fraud.declined',
      { transactionStatus: 'failedReview' },
      'charge.failed',
    ],
    [
      'webhook.net.authorize.payment.authcapture.created.json',
      undefined,
      { transactionStatus: 'generalError' },
      'charge.failed',
    ],
    [
      'webhook.net.authorize.payment.authcapture.created.json',
      'net.authorize.payment.void.created',
      { transactionStatus: 'voided' },
      'charge.canceled',
    ],
  ])('%s as %s with status %o → %s', async (fixture, eventType, transaction, expected) => {
    const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], source(transaction));
    const [event] = await webhook.normalize(notification(fixture, eventType));
    expect(event!.type).toBe(expected);
    expect(event!.gatewayTransactionId).toBe(anetFixture(fixture).payload.id);
    if (expected === 'charge.failed') expect(event!.failureCode).toBeTruthy();
  });

  it('keeps the reason of a declined charge', async () => {
    const webhook = new AuthorizeNetWebhook(
      [FIXTURE_SIGNATURE_KEY],
      source({
        transactionStatus: 'declined',
        responseReasonCode: '2',
        responseReasonDescription: 'This transaction has been declined.',
      }),
    );
    const [event] = await webhook.normalize(
      notification('webhook.net.authorize.payment.fraud.held.json', 'net.authorize.payment.fraud.declined'),
    );
    expect(event).toMatchObject({ failureCode: '2', failureMessage: 'This transaction has been declined.' });
  });

  it('maps a refund transaction to refund.succeeded: the refund transId, the refunded charge, our re_ reference', async () => {
    const refund = {
      transactionType: 'refundTransaction',
      transactionStatus: 'refundPendingSettlement',
      refTransId: '2228446239',
      order: { invoiceNumber: '01jh3m0000000000000a' },
      authAmount: '10.00',
    };
    const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], source(refund));
    const [event] = await webhook.normalize(
      notification(FIXTURE, 'net.authorize.payment.refund.created', '2230581367'),
    );
    expect(event).toMatchObject({
      type: 'refund.succeeded',
      gatewayRefundId: '2230581367',
      gatewayTransactionId: '2228446239',
      reference: 're_01jh3m0000000000000a',
      amount: 1000n,
      currency: 'USD',
    });
    const settled = new AuthorizeNetWebhook(
      [FIXTURE_SIGNATURE_KEY],
      source({ ...refund, transactionStatus: 'refundSettledSuccessfully' }),
    );
    expect(
      (await settled.normalize(notification(FIXTURE, 'net.authorize.payment.refund.created')))[0]!.type,
    ).toBe('refund.succeeded');
    const declined = new AuthorizeNetWebhook(
      [FIXTURE_SIGNATURE_KEY],
      source({ ...refund, transactionStatus: 'declined' }),
    );
    expect(
      (await declined.normalize(notification(FIXTURE, 'net.authorize.payment.refund.created')))[0]!.type,
    ).toBe('refund.failed');
  });

  it('reports what a partial capture or settlement moved: settleAmount, not authAmount', async () => {
    // The real settled details answer, authorized 1018.88 but settled 800.00.
    const webhook = new AuthorizeNetWebhook(
      [FIXTURE_SIGNATURE_KEY],
      source({ transactionStatus: 'settledSuccessfully', authAmount: 1018.88, settleAmount: 800.0 }),
    );
    const [event] = await webhook.normalize(RAW);
    expect(event).toMatchObject({ type: 'charge.succeeded', amount: 80000n, currency: 'USD' });
    // A declined charge settles 0: its event carries the amount it asked for.
    const declined = new AuthorizeNetWebhook(
      [FIXTURE_SIGNATURE_KEY],
      source({ transactionStatus: 'declined', authAmount: 1018.88, settleAmount: 0 }),
    );
    expect((await declined.normalize(RAW))[0]).toMatchObject({ type: 'charge.failed', amount: 101888n });
  });

  it('reads an account with several currencies in the currency of billhook’s own charge or refund', async () => {
    const severalCurrencies = (transaction: Record<string, unknown>): TransactionSource => ({
      ...source(transaction),
      accountCurrencies: async () => ['USD', 'CAD'],
    });
    const ours = { order: { invoiceNumber: '01jh3k9q2m4v8c1tk0bd' }, authAmount: 46.2 };
    const asked: string[] = [];
    const currencyOf = async (reference: string) => {
      asked.push(reference);
      return reference === 'txn_01jh3k9q2m4v8c1tk0bd' ? 'CAD' : undefined;
    };
    const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], severalCurrencies(ours), currencyOf);
    expect((await webhook.normalize(RAW))[0]).toMatchObject({
      reference: 'txn_01jh3k9q2m4v8c1tk0bd',
      amount: 4620n,
      currency: 'CAD',
    });
    expect(asked).toEqual(['txn_01jh3k9q2m4v8c1tk0bd']);
    // A transaction that is not billhook's (the sample's invoice number "60"): no currency can be known.
    const foreign = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], severalCurrencies({}), currencyOf);
    await expect(foreign.normalize(RAW)).rejects.toThrow(WebhookPayloadError);
    // Nor for one of ours in a currency the account does not process.
    const elsewhere = new AuthorizeNetWebhook(
      [FIXTURE_SIGNATURE_KEY],
      severalCurrencies(ours),
      async () => 'EUR',
    );
    await expect(elsewhere.normalize(RAW)).rejects.toThrow(/processes USD, CAD/);
  });

  it('ignores event types it does not reconcile, without calling the API', async () => {
    const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], unusedSource);
    const body = anetFixture(FIXTURE);
    body.eventType = 'net.authorize.customer.created';
    body.payload = { entityName: 'customerProfile', id: '394' };
    expect(await webhook.normalize(JSON.stringify(body))).toEqual([]);
  });

  it('throws a plain error (the job retries) when the transaction cannot be read yet or the API is down', async () => {
    const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], newClient());
    nockDetails(BASE, '40005915599', RECORD_NOT_FOUND_ANSWER);
    const notFound = await webhook.normalize(RAW).catch((error: unknown) => error);
    expect(notFound).toBeInstanceOf(Error);
    expect(notFound).not.toBeInstanceOf(WebhookPayloadError);
    expect(String(notFound)).toMatch(/E00040/);
    nock(BASE).post('/xml/v1/request.api').reply(503);
    await expect(webhook.normalize(RAW)).rejects.toThrow(/HTTP 503/);
  });

  it('answers a body that is not a notification, or names no transaction, with WebhookPayloadError', async () => {
    const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], unusedSource);
    await expect(webhook.normalize('{')).rejects.toBeInstanceOf(WebhookPayloadError);
    const body = anetFixture(FIXTURE);
    delete body.payload.id;
    await expect(webhook.normalize(JSON.stringify(body))).rejects.toBeInstanceOf(WebhookPayloadError);
  });

  it('refuses an amount with more decimals than the currency allows (never rounds money)', async () => {
    const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], source({ authAmount: '10.001' }));
    await expect(webhook.normalize(RAW)).rejects.toBeInstanceOf(WebhookPayloadError);
  });
});
