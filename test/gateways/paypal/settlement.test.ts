import { describe, expect, it } from 'vitest';
import { captureLine, PaypalSettlementError, refundLine } from '../../../src/gateways/paypal/settlement.ts';
import { PaypalWebhook } from '../../../src/gateways/paypal/webhook.ts';
import { WebhookPayloadError } from '../../../src/gateways/types.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';
import { paypalFixture, paypalFixtureRaw, simulatorDelivery } from './fixtures.ts';

const EVENT_TIME = new Date('2026-12-06T10:00:00Z');
const normalize = (body: object | string) =>
  new PaypalWebhook({ webhookId: 'WEBHOOK_ID', timeoutMs: ANSWERED_CALL_TIMEOUT_MS }).normalize(
    typeof body === 'string' ? body : JSON.stringify(body),
  );
const simulator = (event: 'COMPLETED' | 'REFUNDED' | 'REVERSED') =>
  JSON.parse(simulatorDelivery(event).body.toString('utf8'));
/** A fixture event whose resource has `change` applied. */
const withResource = (event: any, change: (resource: any) => void) => {
  const copy = structuredClone(event);
  change(copy.resource);
  return copy;
};

describe('captureLine: a capture’s seller_receivable_breakdown', () => {
  it('translates PayPal’s documented USD 2.51 capture: gross 251, fee 37, net 214, keyed by the capture id', () => {
    const event = paypalFixture('webhook.PAYMENT.CAPTURE.COMPLETED.json');
    expect(captureLine(event.resource, EVENT_TIME)).toEqual({
      gatewayLineId: '27M47624FP291604U',
      kind: 'charge',
      gatewayTransactionId: '27M47624FP291604U',
      reference: undefined,
      currency: 'USD',
      gross: 251n,
      fee: 37n,
      net: 214n,
      occurredAt: new Date('2019-02-14T21:49:58Z'),
      description: 'PayPal capture',
    });
  });

  it('counts a partner’s platform fee as fee: the simulator’s USD 30.00 with 1.54 + 2.00 fees nets 26.46', () => {
    const line = captureLine(simulator('COMPLETED').resource, EVENT_TIME);
    expect(line).toMatchObject({ gross: 3000n, fee: 354n, net: 2646n, reference: '5840243-146' });
    expect(line?.description).toMatch(/platform fees of 200 minor units/);
  });

  it('reads a zero-decimal currency through PayPal’s table: JPY 12000 with fee 468 is 12000 minor units', () => {
    const event = paypalFixture('constructed/webhook.PAYMENT.CAPTURE.COMPLETED.jpy.constructed.json');
    expect(captureLine(event.resource, EVENT_TIME)).toMatchObject({
      gatewayLineId: '3UL30467DS8273713',
      reference: 'txn_01jh3k9q2m4v8c1xk0bd',
      currency: 'JPY',
      gross: 12000n,
      fee: 468n,
      net: 11532n,
    });
  });

  it('books a cross-currency capture in the receivable currency with the payment’s own as original', () => {
    const event = paypalFixture(
      'constructed/webhook.PAYMENT.CAPTURE.COMPLETED.cross_currency.constructed.json',
    );
    // USD 10.99 paid; CNY 59.26 received after PayPal's CNY 1.13 fee.
    expect(captureLine(event.resource, EVENT_TIME)).toMatchObject({
      currency: 'CNY',
      gross: 6039n,
      fee: 113n,
      net: 5926n,
      original: { currency: 'USD', amount: 1099n },
    });
  });

  it('gives no line when the fee is known only in the payment’s currency (no exact amount in the balance’s)', () => {
    const event = withResource(
      paypalFixture('constructed/webhook.PAYMENT.CAPTURE.COMPLETED.cross_currency.constructed.json'),
      (resource) => {
        delete resource.seller_receivable_breakdown.paypal_fee_in_receivable_currency;
      },
    );
    expect(captureLine(event.resource, EVENT_TIME)).toBeUndefined();
  });

  it('gives no line for a capture that is not COMPLETED or carries no breakdown', () => {
    expect(
      captureLine(paypalFixture('webhook.PAYMENT.CAPTURE.DENIED.json').resource, EVENT_TIME),
    ).toBeUndefined();
    const noBreakdown = withResource(paypalFixture('webhook.PAYMENT.CAPTURE.COMPLETED.json'), (resource) => {
      delete resource.seller_receivable_breakdown;
    });
    expect(captureLine(noBreakdown.resource, EVENT_TIME)).toBeUndefined();
  });

  it('refuses a breakdown that does not add up, is finer than the currency, or mixes currencies', () => {
    const sample = paypalFixture('webhook.PAYMENT.CAPTURE.COMPLETED.json');
    const broken = (change: (breakdown: any) => void) =>
      withResource(sample, (resource) => change(resource.seller_receivable_breakdown)).resource;
    expect(() =>
      captureLine(
        broken((b) => (b.net_amount.value = '2.15')),
        EVENT_TIME,
      ),
    ).toThrow(/net_amount 215 is not gross_amount 251 minus fees 37/);
    expect(() =>
      captureLine(
        broken((b) => (b.paypal_fee.value = '0.371')),
        EVENT_TIME,
      ),
    ).toThrow(PaypalSettlementError);
    expect(() =>
      captureLine(
        broken((b) => (b.paypal_fee.currency_code = 'EUR')),
        EVENT_TIME,
      ),
    ).toThrow(/paypal_fee is in EUR, not in the breakdown's USD/);
    expect(() =>
      captureLine(
        broken((b) => delete b.gross_amount),
        EVENT_TIME,
      ),
    ).toThrow(/gross_amount/);
  });
});

describe('refundLine: a refund’s seller_payable_breakdown', () => {
  it('signs the simulator’s USD 0.99 refund from the balance: gross −99, the 0.02 fee returned −2, net −97', () => {
    expect(refundLine(simulator('REFUNDED').resource, 'refund', EVENT_TIME)).toEqual({
      gatewayLineId: '1Y107995YT783435V',
      kind: 'refund',
      gatewayTransactionId: '0JF852973C016714D',
      gatewayRefundId: '1Y107995YT783435V',
      reference: undefined,
      currency: 'USD',
      gross: -99n,
      fee: -2n,
      net: -97n,
      original: undefined,
      occurredAt: new Date('2018-08-15T19:13:29Z'),
      description: 'PayPal refund',
    });
  });

  it('translates the real sandbox EUR 7.00 refund with 0.13 fee returned', () => {
    const event = paypalFixture('webhook.PAYMENT.CAPTURE.REFUNDED.json');
    expect(refundLine(event.resource, 'refund', EVENT_TIME)).toMatchObject({
      gatewayLineId: '97E25940SA3983253',
      currency: 'EUR',
      gross: -700n,
      fee: -13n,
      net: -687n,
    });
  });

  it('keys a reversal (chargeback) as a dispute of the capture', () => {
    expect(refundLine(simulator('REVERSED').resource, 'dispute', EVENT_TIME)).toMatchObject({
      gatewayLineId: '09E71677NS257044M',
      kind: 'dispute',
      gatewayTransactionId: '4L335234718889942',
      gatewayDisputeId: '4L335234718889942',
      gross: -251n,
      fee: 0n,
      net: -251n,
    });
  });
});

describe('PaypalWebhook.normalize with the fee breakdown', () => {
  it('adds a settlement.line after the capture’s charge.succeeded, which stays what it was without the breakdown', async () => {
    const sample = paypalFixture('webhook.PAYMENT.CAPTURE.COMPLETED.json');
    const bare = withResource(sample, (resource) => delete resource.seller_receivable_breakdown);
    const [before, ...none] = await normalize(bare);
    expect(none).toEqual([]);
    const [charge, line, ...rest] = await normalize(sample);
    expect(rest).toEqual([]);
    expect(charge).toEqual({ ...before, raw: sample.resource });
    expect(line).toEqual({
      type: 'settlement.line',
      gateway: 'paypal',
      gatewayEventId: 'WH-58D329510W468432D-8HN650336L201105X',
      gatewayTransactionId: '27M47624FP291604U',
      gatewayRefundId: undefined,
      gatewayDisputeId: undefined,
      reference: undefined,
      amount: 251n,
      currency: 'USD',
      occurredAt: new Date('2019-02-14T21:50:07.940Z'),
      settlementLine: captureLine(sample.resource, EVENT_TIME),
      raw: sample.resource,
    });
  });

  it('adds the refund’s and the reversal’s lines after refund.succeeded and dispute.lost', async () => {
    const refunded = await normalize(paypalFixtureRaw('webhook.PAYMENT.CAPTURE.REFUNDED.json'));
    expect(refunded.map((e) => e.type)).toEqual(['refund.succeeded', 'settlement.line']);
    expect(refunded[1]).toMatchObject({
      gatewayRefundId: '97E25940SA3983253',
      amount: 700n,
      settlementLine: { gross: -700n, fee: -13n, net: -687n },
    });
    const reversed = await normalize(simulator('REVERSED'));
    expect(reversed.map((e) => e.type)).toEqual(['dispute.lost', 'settlement.line']);
    expect(reversed[1]).toMatchObject({ gatewayDisputeId: '4L335234718889942', amount: 251n });
  });

  it('adds nothing to a pending or failed refund, a declined capture, or a cross-currency fee it cannot convert', async () => {
    const pending = withResource(paypalFixture('webhook.PAYMENT.CAPTURE.REFUNDED.json'), (resource) => {
      resource.status = 'PENDING';
    });
    expect((await normalize(pending)).map((e) => e.type)).toEqual(['refund.pending']);
    expect(
      (await normalize(paypalFixture('webhook.PAYMENT.CAPTURE.DENIED.json'))).map((e) => e.type),
    ).toEqual(['charge.failed']);
    const unconvertible = withResource(
      paypalFixture('constructed/webhook.PAYMENT.CAPTURE.COMPLETED.cross_currency.constructed.json'),
      (resource) => delete resource.seller_receivable_breakdown.paypal_fee_in_receivable_currency,
    );
    expect((await normalize(unconvertible)).map((e) => e.type)).toEqual(['charge.succeeded']);
  });

  it('answers a breakdown that does not add up as a payload error, like any amount it cannot book', async () => {
    const broken = withResource(paypalFixture('webhook.PAYMENT.CAPTURE.COMPLETED.json'), (resource) => {
      resource.seller_receivable_breakdown.net_amount.value = '2.50';
    });
    await expect(normalize(broken)).rejects.toThrow(WebhookPayloadError);
  });
});
