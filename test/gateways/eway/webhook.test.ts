import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EwayWebhook, parseHint } from '../../../src/gateways/eway/webhook.ts';
import { GatewayUnreachable } from '../../../src/gateways/http.ts';
import { WebhookPayloadError } from '../../../src/gateways/types.ts';
import { expectEveryMockUsed } from '../../support/nock.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';
import { EWAY_TEST_AUTHORIZATION, EWAY_TEST_KEY, EWAY_TEST_PASSWORD, ewayFixture } from './fixtures.ts';

const BASE = 'https://eway.webhook.test';
const webhook = new EwayWebhook({
  apiKey: EWAY_TEST_KEY,
  apiPassword: EWAY_TEST_PASSWORD,
  apiBase: BASE,
  timeoutMs: ANSWERED_CALL_TIMEOUT_MS,
});
const ACCESS_CODE: string = ewayFixture('api.access_code_shared.create.json').AccessCode;
const DECLINE = ewayFixture('api.transaction.purchase.declined_D4401.json');

/** The SDK's Transaction Query answer with `change` applied to its one transaction. */
function query(change: (t: any) => void = () => {}) {
  const answer = ewayFixture('api.transaction.query_by_id.json');
  change(answer.Transactions[0]);
  return answer;
}

/** The real D4401 decline as eWAY's Transaction Query reports it: its fields in the query item's shape. */
const declinedQuery = () =>
  query((t) =>
    Object.assign(t, {
      TransactionID: DECLINE.TransactionID,
      TransactionStatus: DECLINE.TransactionStatus,
      ResponseCode: DECLINE.ResponseCode,
      ResponseMessage: DECLINE.ResponseMessage,
      AuthorisationCode: DECLINE.AuthorisationCode,
      InvoiceReference: DECLINE.Payment.InvoiceReference,
      TotalAmount: DECLINE.Payment.TotalAmount,
      CurrencyCode: DECLINE.Payment.CurrencyCode,
    }),
  );

/** Expects eWAY to be asked about `id`, with our credentials and API version, and to answer `answer`. */
function ewayHas(id: number | string, answer: unknown, status = 200) {
  return nock(BASE)
    .get(`/Transaction/${id}`)
    .matchHeader('authorization', EWAY_TEST_AUTHORIZATION)
    .matchHeader('x-eway-apiversion', '47')
    .reply(status, answer as nock.Body);
}

const verify = (body: string, headers = {}) => webhook.verify(Buffer.from(body), headers);

describe('EwayWebhook.verify (an untrusted hint: shape only)', () => {
  it.each([
    ['form', 'TransactionID=12345678'],
    ['JSON number', '{"TransactionID":12345678}'],
    ['JSON string', '{"TransactionID":"12345678"}'],
    ['other key case', 'transactionId=12345678&foo=bar'],
    ['leading zeros', '{"transactionid":"00012345678"}'],
    [
      'with a claimed status and amount, ignored',
      '{"TransactionID":12345678,"TransactionStatus":true,"TotalAmount":999999}',
    ],
    ['with an AccessCode too (the id wins)', `TransactionID=12345678&AccessCode=${ACCESS_CODE}`],
  ])(
    'accepts a TransactionID hint as %s, with an event id derived from it; only the hint is stored',
    async (_shape, body) => {
      expect(await verify(body)).toEqual({
        eventId: 'transaction:12345678',
        eventType: 'transaction',
        storedBody: '{"TransactionID":"12345678"}',
      });
    },
  );

  it.each([
    ['form', `AccessCode=${ACCESS_CODE}`],
    ['JSON', JSON.stringify({ AccessCode: ACCESS_CODE })],
  ])('accepts the real access code as %s', async (_shape, body) => {
    expect(await verify(body)).toEqual({
      eventId: `access_code:${ACCESS_CODE}`,
      eventType: 'access_code',
      storedBody: JSON.stringify({ AccessCode: ACCESS_CODE }),
    });
  });

  it('needs no header: eWAY signs nothing', async () => {
    expect((await verify('TransactionID=1', { 'content-type': 'text/plain' })).eventId).toBe('transaction:1');
  });

  it.each([
    ['an empty body', ''],
    ['plain text', 'hello'],
    ['broken JSON', '{"TransactionID":'],
    ['a JSON array', '[12345678]'],
    ['no id at all', '{"TransactionStatus":true,"TotalAmount":100}'],
    ['a non-numeric id', '{"TransactionID":"12a"}'],
    ['a negative id', '{"TransactionID":-5}'],
    ['a fractional id', '{"TransactionID":1.5}'],
    ['a zero id', 'TransactionID=0'],
    ['an oversized id', `TransactionID=${'9'.repeat(19)}`],
    ['a path in the access code', 'AccessCode=../../Transaction/1'],
    ['an SQL-ish access code', "AccessCode=x' OR 1=1 --"],
  ])('rejects %s with WebhookPayloadError (400, nothing stored)', async (_what, body) => {
    await expect(verify(body)).rejects.toBeInstanceOf(WebhookPayloadError);
  });

  it('explains what is missing', () => {
    expect(() => parseHint('foo=bar')).toThrow(/needs a numeric TransactionID or an AccessCode/);
    expect(() => parseHint('{"TransactionID":"x"}')).toThrow(/transactionid/);
  });
});

describe('EwayWebhook.normalize (asks eWAY, believes only eWAY)', () => {
  beforeAll(() => nock.disableNetConnect());
  afterEach(expectEveryMockUsed);
  afterAll(() => nock.enableNetConnect());

  it('maps an approved transaction to charge.succeeded with integer minor units and eWAY ids', async () => {
    ewayHas(
      12345678,
      query((t) => Object.assign(t, { InvoiceReference: 'txn_01jceway0000000000001' })),
    );
    const [event, ...rest] = await webhook.normalize('TransactionID=12345678');
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'charge.succeeded',
      gateway: 'eway',
      gatewayEventId: 'transaction:12345678',
      gatewayTransactionId: '12345678',
      reference: 'txn_01jceway0000000000001',
      amount: 1000n,
      // The SDK fixture is an API version 31 answer without CurrencyCode: the default currency applies.
      currency: 'AUD',
      failureCode: undefined,
    });
    expect(typeof event!.amount).toBe('bigint');
    // No card or customer data travels on.
    expect(JSON.stringify(event!.raw)).not.toMatch(/Customer|CardDetails|Email/);
  });

  it('takes the currency and time from a version ≥ 40 answer', async () => {
    ewayHas(
      12345678,
      query((t) =>
        Object.assign(t, { CurrencyCode: 'NZD', TransactionDateTime: '2025-11-04T15:05:33+11:00' }),
      ),
    );
    const [event] = await webhook.normalize('{"TransactionID":12345678}');
    expect(event).toMatchObject({ currency: 'NZD', amount: 1000n });
    expect(event!.occurredAt.toISOString()).toBe('2025-11-04T04:05:33.000Z');

    ewayHas(
      12345678,
      query((t) => Object.assign(t, { CurrencyCode: 'jpy', TransactionDateTime: '/Date(1422795600000)/' })),
    );
    const [jpy] = await webhook.normalize('{"TransactionID":12345678}');
    expect(jpy).toMatchObject({ currency: 'JPY', amount: 1000n });
    expect(jpy!.occurredAt.getTime()).toBe(1422795600000);
  });

  it('maps the real D4401 decline to charge.failed with the code kept', async () => {
    ewayHas(10324297, declinedQuery());
    const [event] = await webhook.normalize('TransactionID=10324297');
    expect(event).toMatchObject({
      type: 'charge.failed',
      gatewayTransactionId: '10324297',
      reference: '1',
      amount: 101n,
      currency: 'AUD',
      failureCode: 'D4401',
      failureMessage: 'D4401 Refer to Issuer (bank response code 01)',
    });
  });

  it('never believes the hint: a body claiming success for a declined transaction gives charge.failed', async () => {
    ewayHas(10324297, declinedQuery());
    const [event] = await webhook.normalize(
      JSON.stringify({
        TransactionID: 10324297,
        TransactionStatus: true,
        TotalAmount: 999999,
        ResponseMessage: 'A2000',
      }),
    );
    expect(event).toMatchObject({ type: 'charge.failed', amount: 101n, failureCode: 'D4401' });
  });

  it('maps an uncaptured authorisation and a missing status to charge.pending', async () => {
    ewayHas(
      12345678,
      query((t) => Object.assign(t, { TransactionCaptured: false })),
    );
    expect((await webhook.normalize('TransactionID=12345678'))[0]!.type).toBe('charge.pending');
    ewayHas(
      12345678,
      query((t) => Object.assign(t, { TransactionStatus: null })),
    );
    expect((await webhook.normalize('TransactionID=12345678'))[0]!.type).toBe('charge.pending');
  });

  it('resolves an access code with GET /AccessCode/{code}, then reads the transaction', async () => {
    nock(BASE)
      .get(`/AccessCode/${ACCESS_CODE}`)
      .matchHeader('authorization', EWAY_TEST_AUTHORIZATION)
      .reply(200, ewayFixture('api.access_code.query.constructed.json'));
    ewayHas(12345678, query());
    const [event] = await webhook.normalize(`AccessCode=${ACCESS_CODE}`);
    expect(event).toMatchObject({
      type: 'charge.succeeded',
      gatewayEventId: `access_code:${ACCESS_CODE}`,
      gatewayTransactionId: '12345678',
      amount: 1000n,
    });
  });

  it('gives no event for an access code not completed yet, or a transaction eWAY does not have', async () => {
    nock(BASE)
      .get(`/AccessCode/${ACCESS_CODE}`)
      .reply(200, {
        ...ewayFixture('api.access_code.query.constructed.json'),
        TransactionID: null,
        TransactionStatus: null,
        Errors: 'S5099',
      });
    expect(await webhook.normalize(`AccessCode=${ACCESS_CODE}`)).toEqual([]);
    ewayHas(99999999, { Transactions: [], Errors: '' });
    expect(await webhook.normalize('TransactionID=99999999')).toEqual([]);
    // An answer about another transaction is not an answer about this one.
    ewayHas(12345679, query());
    expect(await webhook.normalize('TransactionID=12345679')).toEqual([]);
  });

  it('throws a retryable error when eWAY cannot be asked, and WebhookPayloadError for a bad stored body', async () => {
    ewayHas(12345678, 'Internal Server Error', 500);
    const failed = webhook.normalize('TransactionID=12345678');
    await expect(failed).rejects.toThrow(/eWAY Transaction Query answered HTTP 500/);
    await expect(failed).rejects.not.toBeInstanceOf(WebhookPayloadError);
    ewayHas(12345678, '<html>maintenance</html>');
    await expect(webhook.normalize('TransactionID=12345678')).rejects.toThrow(/not understood/);
    nock(BASE).get('/Transaction/12345678').replyWithError('socket hang up');
    await expect(webhook.normalize('TransactionID=12345678')).rejects.toBeInstanceOf(GatewayUnreachable);
    await expect(webhook.normalize('nothing useful')).rejects.toBeInstanceOf(WebhookPayloadError);
  });

  it('rejects an answer whose amount is not an integer of minor units', async () => {
    ewayHas(
      12345678,
      query((t) => Object.assign(t, { TotalAmount: 10.5 })),
    );
    await expect(webhook.normalize('TransactionID=12345678')).rejects.toThrow(/TotalAmount/);
  });
});
