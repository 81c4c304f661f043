import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { onGatewaySteps } from '../../src/billing/cancellation.ts';
import type { TransactionRow } from '../../src/db/schema.ts';

/** A payment through `gateway` (only its gateway and id are read). */
const payment = (id: string, gateway: TransactionRow['gateway']) => ({ id, gateway }) as TransactionRow;

/**
 * The cash parts of a cancellation's refund taken down to each gateway's step (gateways/currencies.ts
 * `gatewayStep`), the rest returned for the customer's credit: nothing lost, nothing rounded up.
 */
describe('onGatewaySteps', () => {
  it('Stripe KWD 667 → 660 and 7; 5 → nothing and 5; PayPal HUF 6667 → 6600 and 67; EUR as it is', () => {
    const stripe = payment('txn_s', 'stripe');
    const paypal = payment('txn_p', 'paypal');
    expect(onGatewaySteps([{ transaction: stripe, amount: 667n }], 'KWD')).toEqual({
      parts: [{ transaction: stripe, amount: 660n }],
      rest: 7n,
    });
    expect(onGatewaySteps([{ transaction: stripe, amount: 5n }], 'KWD')).toEqual({ parts: [], rest: 5n });
    expect(onGatewaySteps([{ transaction: paypal, amount: 6667n }], 'HUF')).toEqual({
      parts: [{ transaction: paypal, amount: 6600n }],
      rest: 67n,
    });
    expect(onGatewaySteps([{ transaction: stripe, amount: 667n }], 'EUR')).toEqual({
      parts: [{ transaction: stripe, amount: 667n }],
      rest: 0n,
    });
    // Two payments: each part on its own gateway's step (Stripe KWD 10).
    expect(
      onGatewaySteps(
        [
          { transaction: stripe, amount: 500n },
          { transaction: payment('txn_s2', 'stripe'), amount: 167n },
        ],
        'KWD',
      ),
    ).toEqual({
      parts: [
        { transaction: stripe, amount: 500n },
        { transaction: payment('txn_s2', 'stripe'), amount: 160n },
      ],
      rest: 7n,
    });
  });

  it('parts + rest add up to what was owed, each part a multiple of the step, the rest below one step per part', () => {
    const cases: [TransactionRow['gateway'], string, bigint][] = [
      ['stripe', 'KWD', 10n],
      ['stripe', 'BHD', 10n],
      ['stripe', 'MGA', 100n],
      ['stripe', 'ISK', 1n],
      ['paypal', 'HUF', 100n],
      ['paypal', 'JPY', 1n],
      ['stripe', 'USD', 1n],
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...cases),
        fc.array(fc.bigInt({ min: 1n, max: 10n ** 9n }), { minLength: 1, maxLength: 4 }),
        ([gateway, currency, step], amounts) => {
          const parts = amounts.map((amount, i) => ({ transaction: payment(`txn_${i}`, gateway), amount }));
          const out = onGatewaySteps(parts, currency);
          const sum = (xs: { amount: bigint }[]) => xs.reduce((t, p) => t + p.amount, 0n);
          expect(sum(out.parts) + out.rest).toBe(sum(parts));
          for (const part of out.parts) expect(part.amount % step).toBe(0n);
          expect(out.rest < step * BigInt(parts.length)).toBe(true);
          expect(out.rest >= 0n).toBe(true);
        },
      ),
    );
  });
});
