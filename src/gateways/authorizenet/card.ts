import { cardOrNothing, lastFour } from '../card.ts';
import type { CardDetails } from '../types.ts';
import type { TransactionResponse } from './schemas.ts';

/**
 * The card a transaction charged, from `transactionResponse.accountNumber` (masked, `XXXX1111`) and
 * `accountType` (`Visa`, `MasterCard`, `AmericanExpress`, `Discover`, `JCB`, `DinersClub`, `eCheck`)
 * (https://developer.authorize.net/api/reference/index.html#payment-transactions-charge-a-customer-profile,
 * response fields; test/fixtures/authorizenet/api.createTransaction.authCapture.approved.json).
 * Authorize.Net's answer does not give the expiry: null. Undefined for an eCheck (a bank account,
 * not a card) or an answer without them.
 */
export function cardOfTransaction(response: TransactionResponse): CardDetails | undefined {
  if (response.accountType === 'eCheck') return undefined;
  return cardOrNothing({
    brand: response.accountType ? response.accountType : null,
    last4: lastFour(response.accountNumber),
    expMonth: null,
    expYear: null,
  });
}
