import { z } from 'zod';
import { cardOrNothing, lastFour, month, year } from '../card.ts';
import type { CardDetails } from '../types.ts';

/** `Customer.CardDetails` of a `POST /Transaction` answer, as far as the card details go. */
const TransactionCard = z.looseObject({
  Customer: z
    .looseObject({
      CardDetails: z
        .looseObject({
          Number: z.string().nullish(),
          ExpiryMonth: z.string().nullish(),
          ExpiryYear: z.string().nullish(),
        })
        .nullish(),
    })
    .nullish(),
});

/**
 * The card a token payment charged, from the answer's `Customer.CardDetails`: `Number` masked
 * (`444433XXXXXX1111`), `ExpiryMonth` (`"09"`) and a two-digit `ExpiryYear` (`"15"`)
 * (https://eway.io/api-v3/#direct-connection and https://eway.io/nz/developers/api/token-payments, response
 * `Customer.CardDetails`;
 * test/fixtures/eway/api.transaction.token_payment.approved.json). eWAY's answer does not name the
 * brand: null. `answer` is the answer's parsed JSON (`parseJsonBody`), the same value `parseAnswer` read.
 * Undefined when the answer carries no card details.
 */
export function cardOfTransactionAnswer(answer: unknown): CardDetails | undefined {
  const parsed = TransactionCard.safeParse(answer);
  const card = parsed.success ? parsed.data.Customer?.CardDetails : undefined;
  if (!card) return undefined;
  return cardOrNothing({
    brand: null,
    last4: lastFour(card.Number),
    expMonth: month(card.ExpiryMonth),
    expYear: year(card.ExpiryYear),
  });
}
