import { describe, expect, it } from 'vitest';
import { STRIPE_CURRENCIES } from '../../../src/gateways/stripe/currencies.ts';
import { AmountNotRepresentable, fromGateway, toGateway } from '../../../src/money/gateway-amount.ts';

// Each rule of STRIPE_CURRENCIES against its source, https://docs.stripe.com/currencies.
const send = (amount: bigint, currency: string) => toGateway(STRIPE_CURRENCIES, amount, currency);
const read = (value: number, currency: string) => fromGateway(STRIPE_CURRENCIES, value, currency);

describe('Stripe currency rules', () => {
  it('two-decimal currencies are ISO 4217 minor units (#minor-units: "1000 to charge 10 USD")', () => {
    expect(send(1000n, 'USD')).toBe(1000);
    expect(send(4620n, 'eur')).toBe(4620);
    expect(read(1000, 'usd')).toBe(1000n);
  });

  it('zero-decimal currencies are whole units (#zero-decimal: "to charge 500 JPY, provide an amount value of 500")', () => {
    expect(send(500n, 'JPY')).toBe(500);
    expect(send(12_000n, 'KRW')).toBe(12_000);
    expect(read(500, 'jpy')).toBe(500n);
  });

  it('MGA is zero-decimal at Stripe although ISO 4217 gives it 2 decimals (#zero-decimal lists MGA)', () => {
    // 1,000 MGA = 100000n ISO minor units → 1000.
    expect(send(100_000n, 'MGA')).toBe(1000);
    expect(read(1000, 'mga')).toBe(100_000n);
    // 1,000.50 MGA cannot be sent: Stripe has no unit below the ariary.
    expect(() => send(100_050n, 'MGA')).toThrow(AmountNotRepresentable);
    expect(() => send(100_050n, 'MGA')).toThrow('Stripe counts MGA in units of 1.00 MGA');
  });

  it.each(['ISK', 'UGX'])(
    '%s is sent two-decimal with decimals 00 (#special-cases: "to charge 5 ISK, provide an amount value of 500")',
    (currency) => {
      // ISO 4217 exponent 0: 5 ISK = 5n → 500; 500 ISK = 500n → 50000.
      expect(send(5n, currency)).toBe(500);
      expect(send(500n, currency)).toBe(50_000);
      expect(read(50_000, currency)).toBe(500n);
      // Reading back, a value that does not end in 00 is not a whole unit: refused.
      expect(() => read(50_050, currency)).toThrow(AmountNotRepresentable);
      expect(() => read(50_050, currency)).toThrow(`finer than ${currency}'s ISO 4217 minor unit`);
    },
  );

  it.each(['HUF', 'TWD'])(
    '%s is two-decimal in the API (#special-cases: zero-decimal for payouts only)',
    (currency) => {
      expect(send(100_050n, currency)).toBe(100_050);
      expect(read(100_050, currency)).toBe(100_050n);
    },
  );

  it.each(['BHD', 'JOD', 'KWD', 'OMR', 'TND'])(
    '%s takes thousandths whose last digit is 0 (#three-decimal: "5.124 KWD must be rounded to 5120 or 5130")',
    (currency) => {
      expect(send(5120n, currency)).toBe(5120);
      expect(() => send(5124n, currency)).toThrow(AmountNotRepresentable);
      expect(() => send(1296n, currency)).toThrow(`the last digit of a ${currency} amount to be 0`);
      // What Stripe reports is booked as it is.
      expect(read(5124, currency)).toBe(5124n);
    },
  );

  it('takes amounts of up to eight digits, IDR up to twelve (#minimum-and-maximum-charge-amounts)', () => {
    // "up to twelve digits for IDR (… 999999999999 for a charge of 9,999,999,999.99 IDR), and up to
    // eight digits for all other currencies (… 99999999 for a charge of 999,999.99 USD)": the digits
    // of the value sent, so in Stripe's unit (ISK and UGX two-decimal, MGA whole ariary).
    expect(send(99_999_999n, 'USD')).toBe(99_999_999);
    expect(() => send(100_000_000n, 'USD')).toThrow(AmountNotRepresentable);
    expect(() => send(100_000_000n, 'USD')).toThrow(
      'Stripe cannot take 1000000.00 USD (100000000 minor units): Stripe takes at most 999999.99 USD (a value of 99999999; Stripe takes amounts of up to eight digits (twelve for IDR))',
    );
    expect(send(99_999_999n, 'JPY')).toBe(99_999_999);
    expect(() => send(100_000_000n, 'JPY')).toThrow('Stripe takes at most 99999999 JPY');
    // 999,999 ISK is 99999900 on the wire; 1,000,000 ISK would be nine digits.
    expect(send(999_999n, 'ISK')).toBe(99_999_900);
    expect(() => send(1_000_000n, 'ISK')).toThrow('Stripe takes at most 999999 ISK');
    // 99,999,999 MGA (whole ariary) is 9999999900n ISO minor units.
    expect(send(9_999_999_900n, 'MGA')).toBe(99_999_999);
    expect(() => send(10_000_000_000n, 'MGA')).toThrow('Stripe takes at most 99999999.00 MGA');
    expect(send(999_999_999_999n, 'IDR')).toBe(999_999_999_999);
    expect(() => send(1_000_000_000_000n, 'IDR')).toThrow('Stripe takes at most 9999999999.99 IDR');
    // What Stripe reports is read as it is.
    expect(read(100_000_000, 'usd')).toBe(100_000_000n);
  });

  it.each(['IQD', 'LYD', 'CLF', 'UYW'])(
    'refuses %s, a currency of more than two decimals outside Stripe’s presentment currencies',
    (currency) => {
      expect(() => send(1000n, currency)).toThrow(`Stripe does not take ${currency}`);
      expect(() => read(1000, currency)).toThrow(AmountNotRepresentable);
    },
  );
});
