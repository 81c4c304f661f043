import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MINOR_UNITS } from '../../src/money/amount.ts';
import {
  AmountNotRepresentable,
  assertRepresentable,
  type DecimalAmounts,
  fromGateway,
  type IntegerAmounts,
  toGateway,
} from '../../src/money/gateway-amount.ts';

// The engine on its own, with tables made up for the test; each gateway's real rules are tested
// against their sources in test/gateways/<gateway>/currencies.test.ts.
const ISO_INTEGERS: IntegerAmounts = { gateway: 'Minor', format: 'integer', rules: {}, source: 'test' };
const ISO_DECIMALS: DecimalAmounts = { gateway: 'Decimal', format: 'decimal', rules: {}, source: 'test' };
const SHIFTED: IntegerAmounts = {
  gateway: 'Shifted',
  format: 'integer',
  rules: {
    ISK: { exponent: 2, rule: 'ISK is read with two decimals' },
    MGA: { exponent: 0, rule: 'MGA is read in whole units' },
    KWD: { exponent: 3, granularity: 10n, rule: 'the last digit must be 0' },
  },
  refused: { IQD: 'no format' },
  source: 'https://example.test/currencies',
};
const LISTED: DecimalAmounts = {
  gateway: 'Listed',
  format: 'decimal',
  supported: new Set(['USD', 'HUF']),
  rules: { HUF: { exponent: 0, rule: 'no decimals in HUF' } },
  source: 'test',
};
const CENTS: IntegerAmounts = {
  gateway: 'Cents',
  format: 'integer',
  isoExponents: [2],
  rules: {},
  source: 'test',
};

describe('toGateway / fromGateway with ISO 4217 units', () => {
  it.each([
    [251n, 'USD', '2.51'],
    [5n, 'USD', '0.05'],
    [0n, 'EUR', '0.00'],
    [700n, 'EUR', '7.00'],
    [500n, 'JPY', '500'],
    [1234n, 'KWD', '1.234'],
    [1n, 'BHD', '0.001'],
    [12345n, 'CLF', '1.2345'],
  ])(
    '%s minor units of %s is "%s" as a decimal and the same integer as a JSON number',
    (amount, currency, text) => {
      expect(toGateway(ISO_DECIMALS, amount, currency)).toBe(text);
      expect(fromGateway(ISO_DECIMALS, text, currency)).toBe(amount);
      expect(toGateway(ISO_INTEGERS, amount, currency)).toBe(Number(amount));
      expect(fromGateway(ISO_INTEGERS, Number(amount), currency)).toBe(amount);
    },
  );

  it('reads decimals with fewer digits than the exponent, and trailing zeros', () => {
    expect(fromGateway(ISO_DECIMALS, '7', 'EUR')).toBe(700n);
    expect(fromGateway(ISO_DECIMALS, '1.5', 'USD')).toBe(150n);
    expect(fromGateway(ISO_DECIMALS, '2.510', 'USD')).toBe(251n);
    expect(fromGateway(ISO_DECIMALS, '500.00', 'JPY')).toBe(500n);
  });

  it.each([
    ['2.515', 'USD'],
    ['1.5', 'JPY'],
    ['-1.00', 'USD'],
    ['1e3', 'USD'],
    ['', 'USD'],
    ['abc', 'USD'],
    ['1,00', 'EUR'],
    ['10000000000000.01', 'USD'],
    ['1.00', 'XYZ'],
  ])('refuses the decimal "%s" %s', (text, currency) => {
    expect(() => fromGateway(ISO_DECIMALS, text, currency)).toThrow(AmountNotRepresentable);
  });

  it.each([46.2, -1, '4620', Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY, null, undefined])(
    'refuses the JSON amount %s (a float never becomes money)',
    (value) => {
      expect(() => fromGateway(ISO_INTEGERS, value, 'USD')).toThrow(/is not a non-negative integer/);
    },
  );

  it.each([-1n, MAX_MINOR_UNITS + 1n])('refuses to send %s minor units', (amount) => {
    expect(() => toGateway(ISO_INTEGERS, amount, 'USD')).toThrow(AmountNotRepresentable);
  });

  it('round-trips every amount in every exponent (property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_MINOR_UNITS }),
        fc.constantFrom('JPY', 'USD', 'EUR', 'KWD', 'CLF'),
        (amount, currency) =>
          fromGateway(ISO_DECIMALS, toGateway(ISO_DECIMALS, amount, currency), currency) === amount,
      ),
    );
  });

  it('keeps the digits of the decimal string equal to the minor units (property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_MINOR_UNITS }),
        fc.constantFrom('USD', 'KWD', 'JPY'),
        (amount, currency) => BigInt(toGateway(ISO_DECIMALS, amount, currency).replace('.', '')) === amount,
      ),
    );
  });
});

describe('a table whose units differ from ISO 4217', () => {
  it('multiplies where the gateway counts finer units (ISK 5 → 500) and reads back only whole ones', () => {
    expect(toGateway(SHIFTED, 5n, 'ISK')).toBe(500);
    expect(fromGateway(SHIFTED, 500, 'ISK')).toBe(5n);
    expect(() => fromGateway(SHIFTED, 550, 'ISK')).toThrow(
      /finer than ISK's ISO 4217 minor unit \(ISK is read/,
    );
  });

  it('divides where the gateway counts coarser units (MGA 100000n → 1000) and refuses a remainder', () => {
    expect(toGateway(SHIFTED, 100_000n, 'MGA')).toBe(1000);
    expect(fromGateway(SHIFTED, 1000, 'MGA')).toBe(100_000n);
    expect(() => toGateway(SHIFTED, 100_050n, 'MGA')).toThrow(
      'Shifted cannot take 1000.50 MGA (100050 minor units) exactly: Shifted counts MGA in units of 1.00 MGA (MGA is read in whole units); the nearest it takes: 1000.00 MGA (100000) and 1001.00 MGA (100100); see https://example.test/currencies',
    );
  });

  it('refuses an amount off the step but reads back what the gateway reports', () => {
    expect(toGateway(SHIFTED, 1290n, 'KWD')).toBe(1290);
    expect(() => assertRepresentable(SHIFTED, 1296n, 'KWD')).toThrow(
      'Shifted cannot take 1.296 KWD (1296 minor units) exactly: Shifted takes KWD only in steps of 0.010 KWD (the last digit must be 0); the nearest it takes: 1.290 KWD (1290) and 1.300 KWD (1300)',
    );
    expect(fromGateway(SHIFTED, 1296, 'KWD')).toBe(1296n);
  });

  it('refuses listed, unlisted and undocumented currencies both ways', () => {
    expect(() => toGateway(SHIFTED, 1000n, 'IQD')).toThrow('Shifted does not take IQD: no format');
    expect(() => fromGateway(LISTED, '1', 'EUR')).toThrow(
      /Listed does not take EUR: it is not in Listed's list/,
    );
    expect(() => toGateway(CENTS, 500n, 'JPY')).toThrow(
      /documented for currencies with 2 decimals only, JPY has 0/,
    );
    expect(toGateway(CENTS, 500n, 'AUD')).toBe(500);
  });

  it('writes a decimal in the gateway unit (HUF 100000n → "1000") and refuses what it cannot write', () => {
    expect(toGateway(LISTED, 100_000n, 'HUF')).toBe('1000');
    expect(fromGateway(LISTED, '1000', 'HUF')).toBe(100_000n);
    expect(() => toGateway(LISTED, 100_050n, 'HUF')).toThrow(/Listed cannot take 1000.50 HUF/);
  });

  it('is a 422 `amount_not_representable` for the API', () => {
    const error = (() => {
      try {
        assertRepresentable(SHIFTED, 1296n, 'KWD');
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(AmountNotRepresentable);
    expect(error).toMatchObject({ status: 422, type: 'invalid_request', code: 'amount_not_representable' });
  });
});
