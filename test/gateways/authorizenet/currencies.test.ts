import { describe, expect, it } from 'vitest';
import { AUTHORIZENET_CURRENCIES } from '../../../src/gateways/authorizenet/currencies.ts';
import { AmountNotRepresentable, fromGateway, toGateway } from '../../../src/money/gateway-amount.ts';

// AUTHORIZENET_CURRENCIES against its source: createTransactionRequest `amount`, "up to 15 digits
// with a decimal point (no dollar symbol), for example 8.95"
// (https://developer.authorize.net/api/reference/index.html).
const send = (amount: bigint, currency: string) => toGateway(AUTHORIZENET_CURRENCIES, amount, currency);

describe('Authorize.Net currency rules', () => {
  it.each(['USD', 'CAD', 'GBP', 'EUR', 'AUD', 'NZD'])('writes %s with two decimals ("8.95")', (currency) => {
    expect(send(895n, currency)).toBe('8.95');
    expect(send(101_888n, currency)).toBe('1018.88');
    expect(fromGateway(AUTHORIZENET_CURRENCIES, '1018.88', currency)).toBe(101_888n);
  });

  it('takes up to 15 digits: 9999999999999.99 is the largest amount, 10000000000000.00 (16 digits) is refused', () => {
    expect(send(999_999_999_999_999n, 'USD')).toBe('9999999999999.99');
    expect(() => send(1_000_000_000_000_000n, 'USD')).toThrow(
      'Authorize.Net cannot take 10000000000000.00 USD (1000000000000000 minor units): Authorize.Net takes at most 9999999999999.99 USD',
    );
  });

  it.each(['JPY', 'KWD', 'ISK'])(
    'refuses %s: no documented Authorize.Net format for a currency that is not two-decimal',
    (currency) => {
      expect(() => send(1000n, currency)).toThrow(AmountNotRepresentable);
      expect(() => send(1000n, currency)).toThrow(`Authorize.Net does not take ${currency}`);
    },
  );
});
