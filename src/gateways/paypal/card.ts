import { z } from 'zod';
import { cardOrNothing, lastFour, month, year } from '../card.ts';
import type { CardDetails } from '../types.ts';

/** `payment_source.card` of an order as far as its card details go. */
const OrderCard = z.looseObject({
  payment_source: z
    .looseObject({
      card: z
        .looseObject({
          brand: z.string().optional(),
          last_digits: z.string().optional(),
          expiry: z.string().optional(),
        })
        .optional(),
    })
    .optional(),
});

/**
 * The card an order charged, from its `payment_source.card`: `brand` (`VISA`, `DISCOVER`, …),
 * `last_digits` and `expiry` as `YYYY-MM` (https://developer.paypal.com/docs/api/orders/v2/#definition-card_response;
 * test/fixtures/paypal/api.orders.create.vaulted_card_capture.completed.json). Undefined for a
 * PayPal wallet (`payment_source.paypal`) or an answer without them.
 */
export function cardOfOrder(body: unknown): CardDetails | undefined {
  const parsed = OrderCard.safeParse(body);
  const card = parsed.success ? parsed.data.payment_source?.card : undefined;
  if (!card) return undefined;
  const [expYear, expMonth] = /^([0-9]{4})-([0-9]{2})$/.exec(card.expiry ?? '')?.slice(1) ?? [];
  return cardOrNothing({
    brand: card.brand ? card.brand : null,
    last4: lastFour(card.last_digits),
    expMonth: month(expMonth),
    expYear: year(expYear),
  });
}
