import { describe, expect, it } from 'vitest';
import { cardOfTransaction } from '../../src/gateways/authorizenet/card.ts';
import { lastFour, month, year } from '../../src/gateways/card.ts';
import { cardOfTransactionAnswer } from '../../src/gateways/eway/card.ts';
import { cardOfOrder } from '../../src/gateways/paypal/card.ts';
import { cardOfIntent } from '../../src/gateways/stripe/card.ts';
import { stripeFixture } from '../support/stripe.ts';
import { paypalFixture } from './paypal/fixtures.ts';

/** The card details each adapter reads from its gateway's charge answer, on the real fixtures. */
describe('card details in charge answers', () => {
  it('reads masked numbers, months and years, and nothing else', () => {
    expect([
      lastFour('XXXX1111'),
      lastFour('444433XXXXXX1111'),
      lastFour('XXXX'),
      lastFour(undefined),
    ]).toEqual(['1111', '1111', null, null]);
    expect([month('09'), month(12), month('13'), month(0), month('x')]).toEqual([9, 12, null, null, null]);
    expect([year('15'), year('2029'), year(2030), year('1'), year(12345)]).toEqual([
      2015,
      2029,
      2030,
      null,
      null,
    ]);
  });

  it('Stripe: the expanded latest_charge card; nothing when latest_charge is an id', () => {
    const intent = stripeFixture('webhook.payment_intent.succeeded.json').data.object;
    expect(cardOfIntent(intent)).toBeUndefined();
    const charge = stripeFixture('api.charge.succeeded.openapi-fixture.json');
    expect(cardOfIntent({ ...intent, latest_charge: charge })).toEqual({
      brand: 'visa',
      last4: '4242',
      expMonth: 8,
      expYear: 2030,
    });
  });

  it('PayPal: payment_source.card; nothing for a PayPal wallet', () => {
    expect(cardOfOrder(paypalFixture('api.orders.create.vaulted_card_capture.completed.json'))).toEqual({
      brand: 'DISCOVER',
      last4: '0004',
      expMonth: 1,
      expYear: 2029,
    });
    expect(
      cardOfOrder({ id: 'O', status: 'COMPLETED', payment_source: { paypal: { email_address: 'a@b.c' } } }),
    ).toBeUndefined();
  });

  it('Authorize.Net: accountNumber and accountType, no expiry; nothing for an eCheck', () => {
    expect(
      cardOfTransaction({ responseCode: '1', accountNumber: 'XXXX0015', accountType: 'MasterCard' }),
    ).toEqual({
      brand: 'MasterCard',
      last4: '0015',
      expMonth: null,
      expYear: null,
    });
    expect(
      cardOfTransaction({ responseCode: '1', accountNumber: 'XXXX1234', accountType: 'eCheck' }),
    ).toBeUndefined();
    expect(cardOfTransaction({ responseCode: '1' })).toBeUndefined();
  });

  it('eWAY: Customer.CardDetails, two-digit year read in this century, no brand', () => {
    const answer = {
      Customer: { CardDetails: { Number: '444433XXXXXX1111', ExpiryMonth: '09', ExpiryYear: '15' } },
    };
    expect(cardOfTransactionAnswer(answer)).toEqual({
      brand: null,
      last4: '1111',
      expMonth: 9,
      expYear: 2015,
    });
    expect(cardOfTransactionAnswer({ Customer: { CardDetails: { Number: '' } } })).toBeUndefined();
    expect(cardOfTransactionAnswer(undefined)).toBeUndefined();
  });
});
