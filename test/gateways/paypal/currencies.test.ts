import { describe, expect, it } from 'vitest';
import { PAYPAL_CURRENCIES } from '../../../src/gateways/paypal/currencies.ts';
import { AmountNotRepresentable, fromGateway, toGateway } from '../../../src/money/gateway-amount.ts';

// Each rule of PAYPAL_CURRENCIES against its source,
// https://developer.paypal.com/docs/api/reference/currency-codes/.
const send = (amount: bigint, currency: string) => toGateway(PAYPAL_CURRENCIES, amount, currency);
const read = (value: string, currency: string) => fromGateway(PAYPAL_CURRENCIES, value, currency);

describe('PayPal currency rules', () => {
  it('writes a decimal string with the currency’s decimals ("2.51" USD)', () => {
    expect(send(251n, 'USD')).toBe('2.51');
    expect(send(700n, 'EUR')).toBe('7.00');
    expect(read('2.51', 'USD')).toBe(251n);
    expect(read('7', 'EUR')).toBe(700n);
  });

  it.each([
    ['HUF', 100_000n],
    ['TWD', 100_000n],
    ['JPY', 1000n],
  ])(
    '%s takes no decimals ("This currency does not support decimals"): 1000, not 1000.00',
    (currency, amount) => {
      expect(send(amount, currency)).toBe('1000');
      expect(read('1000', currency)).toBe(amount);
    },
  );

  it('refuses HUF 1,000.50 (100050n): it cannot be written without decimals', () => {
    expect(() => send(100_050n, 'HUF')).toThrow(AmountNotRepresentable);
    expect(() => send(100_050n, 'HUF')).toThrow(
      'PayPal counts HUF in units of 1.00 HUF (PayPal takes no decimals in HUF)',
    );
  });

  it('takes the 25 currencies of its list, and refuses any other (KWD, ISK, MGA)', () => {
    expect(PAYPAL_CURRENCIES.supported?.size).toBe(25);
    for (const code of ['AUD', 'BRL', 'CAD', 'CNY', 'GBP', 'MXN', 'RUB', 'THB', 'USD']) {
      expect(() => send(100n, code)).not.toThrow();
    }
    for (const code of ['KWD', 'ISK', 'MGA', 'INR']) {
      expect(() => send(1000n, code)).toThrow(`PayPal does not take ${code}`);
      expect(() => read('10.00', code)).toThrow(AmountNotRepresentable);
    }
  });
});
