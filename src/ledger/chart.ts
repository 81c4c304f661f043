import type { AccountType } from '../db/schema.ts';

/** An account of the chart, by code; one ledger account exists per code and currency. */
export interface AccountRef {
  code: string;
  type: AccountType;
}

/** `<prefix>:<gateway>` for a gateway's default account (null), `<prefix>:<gateway>:<gwa_…>` for the others. */
const perGatewayAccount = (prefix: string, gateway: string, account: string | null): string =>
  account === null ? `${prefix}:${gateway}` : `${prefix}:${gateway}:${account}`;

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
    code: perGatewayAccount('gateway_clearing', gateway, account),
    type: 'asset',
  }),
  /**
   * What a gateway kept of the money it took (expense), per gateway account (PRODUCT.md §13): a
   * charge's fee, a dispute's fee, a standalone fee; a fee given back with a refund credits it.
   */
  gatewayFees: (gateway: string, account: string | null): AccountRef => ({
    code: perGatewayAccount('gateway_fees', gateway, account),
    type: 'expense',
  }),
  /** Payouts the gateway has sent to the bank that have not arrived yet (asset), per gateway account. */
  payoutsInTransit: (gateway: string, account: string | null): AccountRef => ({
    code: perGatewayAccount('payouts_in_transit', gateway, account),
    type: 'asset',
  }),
  /** The bank account a gateway account pays out to (asset): payouts that arrived. */
  bank: (gateway: string, account: string | null): AccountRef => ({
    code: perGatewayAccount('bank', gateway, account),
    type: 'asset',
  }),
  /**
   * Currency conversion by a gateway that settles in another currency than the payment's (expense; a
   * credit balance is a gain): a conversion credits clearing in the payment's currency and debits it
   * in the settlement currency, each side against this account in its own currency.
   */
  fx: (gateway: string, account: string | null): AccountRef => ({
    code: perGatewayAccount('fx', gateway, account),
    type: 'expense',
  }),
  /**
   * Money a gateway moved in its balance that is no charge, refund, dispute or fee (a reserve, a
   * correction; expense, or income when credited), for a person to reclassify.
   */
  settlementAdjustments: (gateway: string, account: string | null): AccountRef => ({
    code: perGatewayAccount('settlement_adjustments', gateway, account),
    type: 'expense',
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
  /**
   * What finalization took off invoices so the gateway charging them can take what is due (expense,
   * per currency: PRODUCT §11's explicit rounding line, billing/invoice-rounding.ts); a void reverses it.
   */
  rounding: { code: 'rounding', type: 'expense' } as AccountRef,
  /** Receivables written off as uncollectible (expense); a payment that still arrives reverses it. */
  badDebt: { code: 'bad_debt', type: 'expense' } as AccountRef,
} as const;
