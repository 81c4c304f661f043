import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.ts';
import { parseSecurePaySettlementCsv } from '../../../src/gateways/securepay/settlement.ts';
import { parseSettlementCsv } from '../../../src/gateways/settlement-csv.ts';

/** A constructed SecurePay answer (test/fixtures/securepay/SOURCES.md), parsed. */
const answer = (name: string) =>
  JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../fixtures/securepay', name), 'utf8'));
const PAID = answer('api.customers.payments.paid.constructed.json');
const REFUNDED = answer('api.orders.refunds.paid.constructed.json');

// No public sample of SecurePay's own settlement report exists (test/fixtures/securepay/SOURCES.md):
// SecurePay's settlements are imported in billhook's format, SecurePay's ids written as billhook
// stores them (src/gateways/securepay/settlement.ts).
const EXAMPLE = readFileSync(
  path.resolve(import.meta.dirname, '../../fixtures/settlement/billhook-format.csv'),
);

/** A file of `header` and `rows`, CRLF-separated. */
const file = (header: string, ...rows: string[]): string => `${[header, ...rows].join('\r\n')}\r\n`;

describe('SecurePay settlement import', () => {
  it("reads billhook's example file, each charge's orderId standing for billhook's reference", () => {
    const generic = parseSettlementCsv(EXAMPLE);
    const report = parseSecurePaySettlementCsv(EXAMPLE);
    expect(report.payouts.map((payout) => payout.amount)).toEqual([12188n, 16088n]);
    const charge = report.payouts[1]?.lines?.[0];
    expect(charge).toEqual({ ...generic.payouts[1]?.lines?.[0], reference: 'txn_7Tc4Vb9Nm2Qx8Lw3Kp6Zr1Jh' });
    expect(report.lines[0]).toEqual({ ...generic.lines[0], reference: 'txn_2Bv6Nc1Xz8Lk4Qw7Pm3Tr9Yd' });
    // A refund's row names the refunded order: its reference is the refund's own, never the order's.
    expect(report.payouts[0]?.lines?.[2]).toEqual(generic.payouts[0]?.lines?.[2]);
    expect(report.payouts[0]?.lines?.[2]?.reference).toBeUndefined();
  });

  it('reads a paid order and its refund as the SecurePay client recorded them (orderId, re_ reference)', () => {
    const orderId = PAID.orderId as string;
    // The constructed answers' amounts in cents (10000, 2500), written in dollars as a report shows them.
    const report = parseSecurePaySettlementCsv(
      file(
        'payout_id,payout_date,kind,gateway_transaction_id,gateway_refund_id,currency,gross,fee,occurred_at',
        `SP-1,2026-11-04,charge,${orderId},,AUD,100.00,1.75,${PAID.createdAt}`,
        `SP-1,2026-11-04,refund,${REFUNDED.orderId},re_5Hq2Wn8Ls3Kd7Pz1Vc4Xm9Tb,AUD,-25.00,0,${REFUNDED.createdAt}`,
      ),
    );
    expect(report.payouts[0]).toMatchObject({
      amount: 7325n,
      lines: [
        {
          kind: 'charge',
          gatewayTransactionId: orderId,
          reference: orderId,
          gross: BigInt(PAID.amount),
          fee: 175n,
        },
        {
          kind: 'refund',
          gatewayTransactionId: orderId,
          gatewayRefundId: 're_5Hq2Wn8Ls3Kd7Pz1Vc4Xm9Tb',
          gross: -BigInt(REFUNDED.amount),
        },
      ],
    });
  });

  it.each(['JPY', 'KWD'])(
    'refuses a %s row: SecurePay counts cents, documented for two decimals only',
    (currency) => {
      const text = file('kind,currency,gross,occurred_at', `charge,${currency},1000,2026-11-03`);
      expect(() => parseSettlementCsv(text)).not.toThrow();
      try {
        parseSecurePaySettlementCsv(text);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).fields).toEqual({
          'row 2, column currency': expect.stringContaining(`SecurePay does not take ${currency}`),
        });
      }
    },
  );
});
