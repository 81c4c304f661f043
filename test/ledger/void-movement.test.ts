import { describe, expect, it } from 'vitest';
import { chargeVoidedEntries } from '../../src/ledger/void-movement.ts';

const CHARGE = {
  transactionId: 'txn_1',
  gateway: 'authorizenet',
  currency: 'USD',
  customerId: 'cus_1',
  moved: 4620n,
};

describe('chargeVoidedEntries', () => {
  it.each([
    [
      'a payment within its invoice: the receivable owed again, the clearing account emptied',
      0n,
      [
        {
          key: 'txn_1:voided',
          postings: [
            ['receivable:cus_1', 4620n],
            ['gateway_clearing:authorizenet', -4620n],
          ],
        },
      ],
    ],
    [
      'a payment beyond its invoice: the customer credit it made is taken back too',
      620n,
      [
        {
          key: 'txn_1:voided',
          postings: [
            ['receivable:cus_1', 4620n],
            ['gateway_clearing:authorizenet', -4620n],
          ],
        },
        {
          key: 'txn_1:overpaid_voided',
          postings: [
            ['customer_credit:cus_1', 620n],
            ['receivable:cus_1', -620n],
          ],
        },
      ],
    ],
  ])('%s', (_name, overpaid, expected) => {
    const entries = chargeVoidedEntries({ ...CHARGE, overpaid });
    expect(
      entries.map((e) => ({
        key: e.idempotencyKey,
        postings: e.postings.map((p) => [p.account.code, p.amount]),
      })),
    ).toEqual(expected);
    for (const entry of entries) {
      expect(entry.source).toEqual({ type: 'transaction', id: 'txn_1' });
      expect(entry.postings.every((p) => p.currency === 'USD')).toBe(true);
    }
  });
});
