import { chart } from './chart.ts';
import type { EntryInput } from './journal.ts';
import { transfer } from './journal.ts';

/** A succeeded charge that a gateway voided before settlement, with what its success had booked. */
export interface VoidedCharge {
  /** Our transaction id (`txn_…`). */
  transactionId: string;
  gateway: string;
  /** ISO 4217 code of the charge. */
  currency: string;
  /** The customer whose receivable the payment credited. */
  customerId: string;
  /** What the payment booked (`txn_…:succeeded`), minor units, > 0. */
  moved: bigint;
  /** What it booked beyond the invoice as the customer's credit (`txn_…:overpaid`), minor units, ≥ 0. */
  overpaid: bigint;
}

/**
 * The entries that take back exactly what a succeeded charge posted, once its gateway voided it (the
 * money never moved): `txn_…:voided` (debit the customer's receivable, credit the gateway's clearing
 * account: the reverse of `txn_…:succeeded`) and, when the payment went beyond its invoice,
 * `txn_…:overpaid_voided` (debit the customer's credit, credit the receivable: the reverse of
 * `txn_…:overpaid`). Pure: the caller posts them.
 */
export function chargeVoidedEntries(charge: VoidedCharge): EntryInput[] {
  const source = { type: 'transaction', id: charge.transactionId };
  const entries: EntryInput[] = [
    {
      idempotencyKey: `${charge.transactionId}:voided`,
      description: `payment ${charge.transactionId} voided at ${charge.gateway}`,
      source,
      postings: transfer(
        chart.receivable(charge.customerId),
        chart.gatewayClearing(charge.gateway),
        charge.moved,
        charge.currency,
      ),
    },
  ];
  if (charge.overpaid > 0n) {
    entries.push({
      idempotencyKey: `${charge.transactionId}:overpaid_voided`,
      description: `payment ${charge.transactionId} voided: the customer credit it made is taken back`,
      source,
      postings: transfer(
        chart.customerCredit(charge.customerId),
        chart.receivable(charge.customerId),
        charge.overpaid,
        charge.currency,
      ),
    });
  }
  return entries;
}
