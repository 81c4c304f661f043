import type { AccountType } from '../db/schema.ts';

/** An account of the chart, by code; one ledger account exists per code and currency. */
export interface AccountRef {
  code: string;
  type: AccountType;
}

/**
 * billhook's chart of accounts. Postings are signed: a debit is positive, a credit negative, so an
 * asset's balance is positive and a revenue account's negative (credit balance).
 */
export const chart = {
  /** What one customer owes us (asset). */
  receivable: (customerId: string): AccountRef => ({ code: `receivable:${customerId}`, type: 'asset' }),
  /**
   * Money a payment gateway holds for us before payout (asset), per gateway account (PRODUCT.md §12):
   * `gateway_clearing:<gateway>` for the gateway's default account (the environment's; null), and
   * `gateway_clearing:<gateway>:<gwa_…>` for each gateway account, so each account's books reconcile
   * to its own payouts.
   */
  gatewayClearing: (gateway: string, account: string | null): AccountRef => ({
    code: account === null ? `gateway_clearing:${gateway}` : `gateway_clearing:${gateway}:${account}`,
    type: 'asset',
  }),
  /**
   * What we owe one customer as credit (liability): a downgrade's proration credit or an overpayment,
   * taken off their next invoices at finalization or paid back (billing/customer-credit.ts).
   */
  customerCredit: (customerId: string): AccountRef => ({
    code: `customer_credit:${customerId}`,
    type: 'liability',
  }),
  revenue: { code: 'revenue', type: 'revenue' } as AccountRef,
  taxPayable: { code: 'tax_payable', type: 'liability' } as AccountRef,
  /** Refunds given back (contra-revenue). */
  refunds: { code: 'refunds', type: 'contra_revenue' } as AccountRef,
  /** Money a gateway withheld while a dispute is open (asset). */
  disputedFunds: { code: 'disputed_funds', type: 'asset' } as AccountRef,
  /** Disputes lost to the cardholder (expense). */
  chargebackLosses: { code: 'chargeback_losses', type: 'expense' } as AccountRef,
  /** Payments received outside any gateway: bank transfer, cheque, cash (asset). */
  offlineReceipts: { code: 'offline_receipts', type: 'asset' } as AccountRef,
  /** Receivables written off as uncollectible (expense); a payment that still arrives reverses it. */
  badDebt: { code: 'bad_debt', type: 'expense' } as AccountRef,
} as const;
