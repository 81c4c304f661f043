import type { ActivityRow } from '../db/schema.ts';
import { exactJsonIntegers } from '../money/amount.ts';

/**
 * billhook's own event types an endpoint can take (PRODUCT.md §14), named as Stripe names its own
 * where Stripe has one (https://docs.stripe.com/api/events/types). `refund.failed` (Stripe's too): a
 * refund the gateway failed, after it had succeeded as well (the money came back to the merchant and
 * the refund was reversed), so a system that booked its `refund.succeeded` takes it back.
 * `invoice.payment_reversed` (billhook's own): a payment of the invoice taken back, because the gateway
 * voided it before it settled (the money never moved), settled it for less than billhook booked
 * (`reason` `settled_short`, `amount` the difference: payments/settled-short.ts), or an offline payment
 * was reversed (a bounced cheque); a PAID invoice is OPEN again with `amount_due`.
 */
export const OUTBOUND_EVENT_TYPES = [
  'invoice.paid',
  'invoice.payment_failed',
  'invoice.payment_reversed',
  'refund.succeeded',
  'refund.failed',
  'dispute.opened',
  'dispute.closed',
  'reconciliation_exception.opened',
  'payout.paid',
] as const;

/** One of {@link OUTBOUND_EVENT_TYPES}. */
export type OutboundEventType = (typeof OUTBOUND_EVENT_TYPES)[number];

/** The activity actions the dispatcher reads: each becomes the event type {@link eventTypeOf} gives. */
export const EVENT_ACTIONS = [
  'invoice.paid',
  'invoice.payment_reversed',
  'transaction.failed',
  'refund.succeeded',
  'refund.failed',
  'dispute.opened',
  'dispute.won',
  'dispute.lost',
  'reconciliation_exception.opened',
  'payout.paid',
] as const;

/**
 * The event an activity is, or undefined when it is none: the activity's action itself, except
 * `transaction.failed` of an invoice's charge (`invoice.payment_failed`; a failed attempt outside an
 * invoice is no event) and a won or lost dispute (`dispute.closed`, its `status` saying which).
 */
export function eventTypeOf(activity: Pick<ActivityRow, 'action' | 'data'>): OutboundEventType | undefined {
  switch (activity.action) {
    case 'transaction.failed':
      return typeof activity.data.invoice === 'string' ? 'invoice.payment_failed' : undefined;
    case 'dispute.won':
    case 'dispute.lost':
      return 'dispute.closed';
    default:
      return (OUTBOUND_EVENT_TYPES as readonly string[]).includes(activity.action)
        ? (activity.action as OutboundEventType)
        : undefined;
  }
}

/**
 * The fields of the event actions' activity data that are amounts in minor units (the activity log
 * keeps them as decimal strings: activities.ts): invoice.paid's, a transaction's, a refund's, a
 * dispute's and a payout's.
 */
const AMOUNT_FIELDS = new Set([
  'amount',
  'amount_paid',
  'amount_due',
  'amount_captured',
  'amount_refunded',
  'bad_debt_recovered',
  'credit_applied',
  'proration_credited',
  'proration_tax_credited',
]);

/**
 * `data` with each amount field ({@link AMOUNT_FIELDS}) written as an integer (`"4620"` → `4620n`),
 * as the API answers amounts; other fields, and an amount field that is not an integer's text (null),
 * unchanged.
 */
function withIntegerAmounts(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(data).map(([key, value]) => [
      key,
      AMOUNT_FIELDS.has(key) && typeof value === 'string' && /^-?\d{1,30}$/.test(value)
        ? BigInt(value)
        : value,
    ]),
  );
}

/**
 * An event as it is sent (Stripe's event shape, https://docs.stripe.com/api/events/object):
 * `created` in Unix seconds (the activity's time); `data.object` the resource the activity is about,
 * with the fields its activity recorded, amounts as integers in minor units beside their `currency`
 * (bigints: write the body with {@link eventText}).
 */
export interface OutboundEventBody {
  id: string;
  object: 'event';
  type: OutboundEventType;
  created: number;
  data: { object: Record<string, unknown> };
}

/**
 * The event of `activity` (of type `type`): its id `evt_…` derived from the activity's id, so one
 * activity is always the same event. `invoice.payment_failed` is about the invoice, the failed
 * attempt in its `transaction`; a closed dispute's `status` is `won` or `lost`; the others are about
 * the activity's resource, with the activity's data.
 */
export function eventOf(
  activity: Pick<
    ActivityRow,
    'id' | 'resource_type' | 'resource_id' | 'customer_id' | 'action' | 'data' | 'created_at'
  >,
  type: OutboundEventType,
): OutboundEventBody {
  const data = withIntegerAmounts(activity.data);
  const customer = activity.customer_id === null ? {} : { customer: activity.customer_id };
  const object: Record<string, unknown> =
    type === 'invoice.payment_failed'
      ? {
          id: data.invoice,
          object: 'invoice',
          ...customer,
          transaction: { id: activity.resource_id, object: 'transaction', ...data },
        }
      : {
          ...data,
          id: activity.resource_id,
          object: activity.resource_type,
          ...customer,
          ...(type === 'dispute.closed' ? { status: activity.action.slice('dispute.'.length) } : {}),
        };
  return {
    id: `evt_${activity.id.slice(activity.id.indexOf('_') + 1)}`,
    object: 'event',
    type,
    created: Math.floor(activity.created_at.getTime() / 1000),
    data: { object },
  };
}

/**
 * The JSON text of an event as stored and sent (and signed): its amounts as JSON integers with every
 * digit (`exactJsonIntegers`: one beyond 2^53 as its decimal digits, never rounded to a double).
 */
export function eventText(body: OutboundEventBody): string {
  return JSON.stringify(body, exactJsonIntegers);
}
