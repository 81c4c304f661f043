import { z } from 'zod';
import { type SettlementLine, SettlementLineSchema } from '../settlement.ts';
import {
  Link,
  linkedId,
  type Money,
  minorUnits,
  SellerPayableBreakdown,
  SellerReceivableBreakdown,
  signedMinorUnits,
} from './schemas.ts';

/**
 * PayPal's fee data of one capture or refund as a settlement line (src/gateways/settlement.ts):
 * what the capture's `seller_receivable_breakdown` and the refund's `seller_payable_breakdown` say
 * (Payments v2, https://developer.paypal.com/docs/api/payments/v2/, definitions
 * `seller_receivable_breakdown` and `seller_payable_breakdown`). The webhook events carry them
 * (`PAYMENT.CAPTURE.COMPLETED`, `.REFUNDED`, `.REVERSED`, see webhook.ts) and Transaction Search
 * reports the same captures and refunds with the same ids (transaction-search.ts), so a line is
 * booked once whichever arrives first: `gatewayLineId` is the capture's id for a charge and the
 * refund's id for a refund or reversal.
 */

/** Raised when PayPal's settlement data is not the documented shape or does not add up. */
export class PaypalSettlementError extends Error {
  override name = 'PaypalSettlementError';
}

/** The settlement fields of a capture resource. */
const CaptureResource = z.looseObject({
  id: z.string().min(1),
  status: z.string().min(1),
  custom_id: z.string().optional(),
  invoice_id: z.string().optional(),
  create_time: z.string().optional(),
  seller_receivable_breakdown: z.unknown().optional(),
});

/** The settlement fields of a refund (or reversal) resource. */
const RefundResource = z.looseObject({
  id: z.string().min(1),
  status: z.string().min(1),
  custom_id: z.string().optional(),
  create_time: z.string().optional(),
  links: z.array(Link).optional(),
  seller_payable_breakdown: z.unknown().optional(),
});

/**
 * Minor units of `money` (`signed`: a decimal that may start with `-`), exactly.
 * @throws PaypalSettlementError naming `what` for an amount PayPal's currency table cannot read exactly
 */
export function settlementUnits(
  money: Money,
  what: string,
  signed = false,
): { amount: bigint; currency: string } {
  try {
    return signed ? signedMinorUnits(money) : minorUnits(money);
  } catch (error) {
    throw new PaypalSettlementError(`${what}: ${(error as Error).message}`);
  }
}

/** Minor units of `money`, which must be in `currency`; absent money is 0. */
function unitsIn(money: Money | undefined, currency: string, what: string): bigint {
  if (!money) return 0n;
  const { amount, currency: its } = settlementUnits(money, what);
  if (its !== currency) {
    throw new PaypalSettlementError(`${what} is in ${its}, not in the breakdown's ${currency}`);
  }
  return amount;
}

/** When the resource says it was created (its `create_time`), else `fallback`. */
function createdAt(createTime: string | undefined, fallback: Date): Date {
  const time = createTime ? new Date(createTime) : undefined;
  return time && !Number.isNaN(time.getTime()) ? time : fallback;
}

/** Gross, fees and net of a breakdown in its transaction currency, checked: `net = gross - fees`. */
interface Amounts {
  currency: string;
  gross: bigint;
  fee: bigint;
  net: bigint;
  platformFee: bigint;
}

/**
 * The amounts of a breakdown in the transaction's currency. The fee is PayPal's fee plus the
 * platform (partner) fees, since both leave the merchant's balance: the simulator's capture of USD
 * 30.00 has `paypal_fee` 1.54, `platform_fees` 2.00 and `net_amount` 26.46.
 * @throws PaypalSettlementError when an amount is not in the gross's currency or `net_amount`
 * differs from gross minus fees
 */
function amountsOf(breakdown: SellerReceivableBreakdown | SellerPayableBreakdown, what: string): Amounts {
  const { amount: gross, currency } = settlementUnits(breakdown.gross_amount, `${what} gross_amount`);
  const paypalFee = unitsIn(breakdown.paypal_fee, currency, `${what} paypal_fee`);
  const platformFee = (breakdown.platform_fees ?? []).reduce(
    (sum, fee, i) => sum + unitsIn(fee.amount, currency, `${what} platform_fees[${i}]`),
    0n,
  );
  const fee = paypalFee + platformFee;
  const net = breakdown.net_amount
    ? unitsIn(breakdown.net_amount, currency, `${what} net_amount`)
    : gross - fee;
  if (net !== gross - fee) {
    throw new PaypalSettlementError(
      `${what}: net_amount ${net} is not gross_amount ${gross} minus fees ${fee} (minor units of ${currency})`,
    );
  }
  return { currency, gross, fee, net, platformFee };
}

/**
 * The line's money in the balance's currency. Same currency: the amounts as they are. Another
 * currency (the payee holds no balance in the buyer's currency): the net is `receivable` and the fee
 * `feeInReceivable` (PayPal's `…_in_receivable_currency` fields), the gross their sum, and `original`
 * the gross in the payment's currency; the conversion's difference is the FX account's.
 * @returns undefined when the fee (or a platform fee) was charged in the transaction's currency only:
 *   its amount in the balance's currency is not reported, and billhook never books a converted guess
 */
function inBalance(
  amounts: Amounts,
  receivable: Money | undefined,
  feeInReceivable: Money | undefined,
  what: string,
): Pick<SettlementLine, 'currency' | 'gross' | 'fee' | 'net' | 'original'> | undefined {
  const { currency, gross, fee, net } = amounts;
  if (!receivable) return { currency, gross, fee, net };
  const held = settlementUnits(receivable, `${what} receivable amount`);
  if (held.currency === currency) {
    if (held.amount !== net) {
      throw new PaypalSettlementError(
        `${what}: receivable amount ${held.amount} differs from the net ${net}`,
      );
    }
    return { currency, gross, fee, net };
  }
  if (amounts.platformFee !== 0n) return undefined;
  let heldFee: bigint;
  if (feeInReceivable)
    heldFee = unitsIn(feeInReceivable, held.currency, `${what} fee in receivable currency`);
  else if (fee === 0n) heldFee = 0n;
  else return undefined;
  return {
    currency: held.currency,
    gross: held.amount + heldFee,
    fee: heldFee,
    net: held.amount,
    original: { currency, amount: gross },
  };
}

/**
 * Checks PayPal's settlement data (or a translation of it) against `schema`.
 * @throws PaypalSettlementError `<what> is not PayPal's shape: <field path>: <problem>`
 */
export function parseSettlement<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const first = result.error.issues[0];
    throw new PaypalSettlementError(
      `${what} is not PayPal's shape: ${first?.path.join('.') || '(root)'}: ${first?.message}`,
    );
  }
  return result.data;
}

/** A line checked against the shared schema (net = gross - fee). */
function checked(line: SettlementLine): SettlementLine {
  return parseSettlement(SettlementLineSchema, line, `settlement line ${line.gatewayLineId}`);
}

/**
 * A completed capture's settlement line, from its `seller_receivable_breakdown`: kind `charge`,
 * `gatewayLineId` = `gatewayTransactionId` = the capture id (as billhook stores a PayPal payment),
 * `reference` = `custom_id` else `invoice_id` (our `txn_…`), gross positive, fee = `paypal_fee`
 * (plus platform fees, also its `partnerFee`), net = `net_amount`; e.g. the documented USD 2.51 capture → gross 251n, fee
 * 37n, net 214n. Cross-currency (`receivable_amount` in another currency): see `inBalance`.
 * `occurredAt` is the capture's `create_time` (else `fallbackTime`).
 * @param resource the capture as PayPal sends it (a webhook resource or an API answer)
 * @returns undefined when the capture is not `COMPLETED`, has no breakdown (PayPal gives none while
 *   pending), or its fee is known only before a currency conversion
 * @throws PaypalSettlementError when the breakdown is malformed or does not add up
 */
export function captureLine(resource: unknown, fallbackTime: Date): SettlementLine | undefined {
  const capture = parseSettlement(CaptureResource, resource, 'PayPal capture');
  if (capture.status !== 'COMPLETED' || capture.seller_receivable_breakdown === undefined) return undefined;
  const what = `PayPal capture ${capture.id}`;
  const breakdown = parseSettlement(
    SellerReceivableBreakdown,
    capture.seller_receivable_breakdown,
    `${what} seller_receivable_breakdown`,
  );
  const amounts = amountsOf(breakdown, what);
  const money = inBalance(
    amounts,
    breakdown.receivable_amount,
    breakdown.paypal_fee_in_receivable_currency,
    what,
  );
  if (!money) return undefined;
  return checked({
    gatewayLineId: capture.id,
    kind: 'charge',
    gatewayTransactionId: capture.id,
    reference: capture.custom_id || capture.invoice_id || undefined,
    ...money,
    occurredAt: createdAt(capture.create_time, fallbackTime),
    ...(amounts.platformFee !== 0n ? { partnerFee: amounts.platformFee } : {}),
    description:
      amounts.platformFee !== 0n
        ? `PayPal capture; the fee includes platform fees of ${amounts.platformFee} minor units`
        : 'PayPal capture',
  });
}

/**
 * A completed refund's (or reversal's) settlement line, from its `seller_payable_breakdown`, signed
 * from the balance's side: gross = −`gross_amount`, fee = −`paypal_fee` (the fee PayPal gives back
 * is a negative fee, platform fees given back counted in it), net = −`net_amount`; e.g. the
 * simulator's USD 0.99 refund with 0.02 fee returned → gross −99n, fee −2n, net −97n. Platform
 * (partner) fees given back (`platform_fees`) are also its `partnerFee` (≥ 0: what of the fee given
 * back is theirs), so settlement/ books them once with a `T0113` row giving them back
 * (transaction-search.ts). `gatewayLineId` is the refund's id; the captured payment is its `up` link.
 * - kind `refund` (a `PAYMENT.CAPTURE.REFUNDED` resource): `gatewayRefundId` = the refund id,
 *   `reference` = its `custom_id` (our `re_…`);
 * - kind `dispute` (a `PAYMENT.CAPTURE.REVERSED` resource, a chargeback): `gatewayDisputeId` = the
 *   capture id, as webhook.ts keys PayPal disputes.
 * Cross-currency (`net_amount_in_receivable_currency`): see `inBalance`.
 * @returns undefined when the refund is not `COMPLETED`, has no breakdown, or its fee is known only
 *   before a currency conversion
 * @throws PaypalSettlementError when the breakdown is malformed or does not add up, or the refund
 *   has no `up` link to its capture
 */
export function refundLine(
  resource: unknown,
  kind: 'refund' | 'dispute',
  fallbackTime: Date,
): SettlementLine | undefined {
  const refund = parseSettlement(RefundResource, resource, 'PayPal refund');
  if (refund.status !== 'COMPLETED' || refund.seller_payable_breakdown === undefined) return undefined;
  const what = `PayPal ${kind === 'refund' ? 'refund' : 'reversal'} ${refund.id}`;
  const breakdown = parseSettlement(
    SellerPayableBreakdown,
    refund.seller_payable_breakdown,
    `${what} seller_payable_breakdown`,
  );
  const captureId = linkedId(refund.links, 'up', 'captures');
  if (!captureId) throw new PaypalSettlementError(`${what} has no up link to its capture`);
  const amounts = amountsOf(breakdown, what);
  const money = inBalance(
    amounts,
    breakdown.net_amount_in_receivable_currency,
    breakdown.paypal_fee_in_receivable_currency,
    what,
  );
  if (!money) return undefined;
  return checked({
    gatewayLineId: refund.id,
    kind,
    gatewayTransactionId: captureId,
    ...(kind === 'refund'
      ? { gatewayRefundId: refund.id, reference: refund.custom_id || undefined }
      : { gatewayDisputeId: captureId }),
    currency: money.currency,
    gross: -money.gross,
    fee: -money.fee,
    net: -money.net,
    original: money.original && { currency: money.original.currency, amount: -money.original.amount },
    occurredAt: createdAt(refund.create_time, fallbackTime),
    ...(amounts.platformFee !== 0n ? { partnerFee: amounts.platformFee } : {}),
    description: `${kind === 'refund' ? 'PayPal refund' : 'PayPal reversal (chargeback)'}${amounts.platformFee !== 0n ? `; the fee given back includes platform fees of ${amounts.platformFee} minor units` : ''}`,
  });
}
