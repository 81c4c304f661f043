import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { buildPaypalTestDelivery } from '../../src/gateways/paypal/test-events.ts';
import { PaypalWebhook } from '../../src/gateways/paypal/webhook.ts';
import { TEST_KEY_FILE } from '../gateways/paypal/fixtures.ts';
import {
  applyAsBatch,
  booksIn,
  countEntries,
  entryPostings,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/**
 * A PayPal card chargeback the merchant wins after PayPal reversed the capture. PayPal takes a
 * chargeback's money at once (`PAYMENT.CAPTURE.REVERSED`, read as a `dispute.lost` reversal keyed by
 * the capture) while the card issuer decides; when the issuer finds for the seller, the dispute is
 * `CUSTOMER.DISPUTE.RESOLVED` with `RESOLVED_SELLER_FAVOUR` and PayPal returns the money
 * (Transaction Search `T1202` "chargeback reversal"). PRODUCT.md §11: money the gateway reports is
 * what is booked. The won resolution used to be `stale` (a lost dispute was final): the 10000 stayed a
 * chargeback loss, nothing said. Events built by the test builder and normalised by billhook's own
 * PayPal webhook, as delivered.
 */

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
}, 120_000);
afterAll(() => db?.destroy());

const CONFIG = { PAYPAL_WEBHOOK_ID: '8PT597110X687430LKGECATA' };
const webhook = new PaypalWebhook({ webhookId: CONFIG.PAYPAL_WEBHOOK_ID, timeoutMs: 1000 });

type Resource = Record<string, unknown>;

/** A PayPal event of `type` as the test builder writes it, `change` applied to its resource, normalised by billhook. */
async function normalized(
  type: string,
  options: {
    amount: number;
    currency: string;
    captureId: string;
    objectId?: string;
    disputeOutcome?: string;
  },
  change: (resource: Resource) => void = () => {},
) {
  const { body } = buildPaypalTestDelivery(type, { ...options, keyFile: TEST_KEY_FILE }, CONFIG);
  const event = JSON.parse(body);
  change(event.resource);
  const events = await webhook.normalize(JSON.stringify(event));
  return events.filter((e) => e.type !== 'settlement.line');
}

/** A dispute filed with the buyer's card issuer (a chargeback), not a PayPal claim. */
const chargeback = (resource: Resource) => {
  resource.dispute_channel = 'EXTERNAL';
};

/** Applies every canonical event of PayPal event `type` as a reconcile batch; their outcome kinds. */
async function deliver(
  type: string,
  options: Parameters<typeof normalized>[1],
  change?: (resource: Resource) => void,
): Promise<string[]> {
  const kinds: string[] = [];
  for (const event of await normalized(type, options, change))
    kinds.push((await applyAsBatch(db, event)).kind);
  return kinds;
}

/** The PayPal clearing, disputed funds and chargeback losses in `currency` (minor units, 0n when none). */
async function paypalBooks(currency: string) {
  const books = await booksIn(db, currency);
  return {
    clearing: books['gateway_clearing:paypal'] ?? 0n,
    disputed: books.disputed_funds ?? 0n,
    losses: books.chargeback_losses ?? 0n,
  };
}

/** The dispute of `capture` and the exceptions raised about transaction `transactionId` (their kinds). */
async function disputeAndExceptions(capture: string, transactionId: string) {
  const dispute = await db
    .selectFrom('disputes')
    .select(['id', 'status', 'amount', 'reversed'])
    .where('gateway', '=', 'paypal')
    .where('gateway_dispute_id', '=', capture)
    .executeTakeFirstOrThrow();
  const exceptions = await db
    .selectFrom('reconciliation_exceptions')
    .select('kind')
    .where('transaction_id', '=', transactionId)
    .execute();
  return { dispute, exceptions: exceptions.map((x) => x.kind) };
}

describe('a PayPal chargeback won after PayPal reversed the capture', () => {
  /*
   * Worked by hand, minor units (HKD): captured 10000 (clearing 10000). The chargeback is filed: the
   * hold takes 10000 (clearing 0, disputed 10000). PayPal reverses 10000: lost (disputed 0, losses
   * 10000). The issuer finds for the merchant and PayPal returns the 10000: clearing 10000, losses 0,
   * disputed 0, the dispute won (`dp_…:loss_returned`). The resolution delivered again changes nothing.
   */
  it('gives the reversed 10000 HKD back when the chargeback is resolved for the merchant, once', async () => {
    const currency = 'HKD';
    const capture = 'CAPHKDCHARGEBACKWON';
    const { transaction } = await succeededCharge(db, {
      currency,
      amount: 10000n,
      gateway: 'paypal',
      gatewayTransactionId: capture,
    });
    const dispute = { captureId: capture, amount: 10000, currency, objectId: 'PP-D-HKD01' };
    expect(await deliver('CUSTOMER.DISPUTE.CREATED', dispute, chargeback)).toEqual(['applied']);
    expect(await paypalBooks(currency)).toEqual({ clearing: 0n, disputed: 10000n, losses: 0n });
    expect(
      await deliver('PAYMENT.CAPTURE.REVERSED', { captureId: capture, amount: 10000, currency }),
    ).toEqual(['applied']);
    expect(await paypalBooks(currency)).toEqual({ clearing: 0n, disputed: 0n, losses: 10000n });

    const resolved = { ...dispute, disputeOutcome: 'RESOLVED_SELLER_FAVOUR' };
    expect(await deliver('CUSTOMER.DISPUTE.RESOLVED', resolved, chargeback)).toEqual(['applied']);
    expect(await paypalBooks(currency)).toEqual({ clearing: 10000n, disputed: 0n, losses: 0n });
    const { dispute: won, exceptions } = await disputeAndExceptions(capture, transaction.id);
    expect(won).toMatchObject({ status: 'won', amount: 10000n, reversed: true });
    expect(exceptions).toEqual([]);
    expect(await entryPostings(db, `${won.id}:loss_returned`)).toEqual({
      'gateway_clearing:paypal': 10000n,
      chargeback_losses: -10000n,
    });

    const entries = await countEntries(db);
    expect(await deliver('CUSTOMER.DISPUTE.RESOLVED', resolved, chargeback)).toEqual(['duplicate']);
    expect(await countEntries(db)).toBe(entries);
    expect(await paypalBooks(currency)).toEqual({ clearing: 10000n, disputed: 0n, losses: 0n });
  });

  /*
   * A reversal with no dispute recorded before it (its CUSTOMER.DISPUTE.CREATED not delivered):
   * captured 10000, reversed (clearing 0, losses 10000), the chargeback resolved for the merchant:
   * clearing 10000, losses 0.
   */
  it('gives it back when the reversal came without the dispute’s creation', async () => {
    const currency = 'TWD';
    const capture = 'CAPTWDCHARGEBACKWON';
    await succeededCharge(db, { currency, amount: 10000n, gateway: 'paypal', gatewayTransactionId: capture });
    await deliver('PAYMENT.CAPTURE.REVERSED', { captureId: capture, amount: 10000, currency });
    expect(await paypalBooks(currency)).toEqual({ clearing: 0n, disputed: 0n, losses: 10000n });
    const resolved = {
      captureId: capture,
      amount: 10000,
      currency,
      objectId: 'PP-D-TWD01',
      disputeOutcome: 'RESOLVED_SELLER_FAVOUR',
    };
    expect(await deliver('CUSTOMER.DISPUTE.RESOLVED', resolved, chargeback)).toEqual(['applied']);
    expect(await paypalBooks(currency)).toEqual({ clearing: 10000n, disputed: 0n, losses: 0n });
  });

  /*
   * The chargeback's resolution delivered before its reversal (the reversal's webhook retried later):
   * captured 10000 (clearing 10000), the hold (clearing 0, disputed 10000), resolved for the merchant
   * (clearing 10000, disputed 0), then the reversal of the same 10000, which the win already gave back:
   * nothing booked, ending where the delivery in order ends (clearing 10000, losses 0). It was booked
   * as a second chargeback lost (clearing 0, losses 10000). A person is told, once, in case PayPal took
   * the money again.
   */
  it('books nothing for the reversal of a chargeback already won, delivered after its resolution (was: a second chargeback, 10000 SGD lost)', async () => {
    const currency = 'SGD';
    const capture = 'CAPSGDRESOLVEDFIRST';
    const { transaction } = await succeededCharge(db, {
      currency,
      amount: 10000n,
      gateway: 'paypal',
      gatewayTransactionId: capture,
    });
    const dispute = { captureId: capture, amount: 10000, currency, objectId: 'PP-D-SGD01' };
    await deliver('CUSTOMER.DISPUTE.CREATED', dispute, chargeback);
    const resolved = { ...dispute, disputeOutcome: 'RESOLVED_SELLER_FAVOUR' };
    expect(await deliver('CUSTOMER.DISPUTE.RESOLVED', resolved, chargeback)).toEqual(['applied']);
    expect(await paypalBooks(currency)).toEqual({ clearing: 10000n, disputed: 0n, losses: 0n });
    const entries = await countEntries(db);
    const reversal = { captureId: capture, amount: 10000, currency };
    expect(await deliver('PAYMENT.CAPTURE.REVERSED', reversal)).toEqual(['duplicate']);
    expect(await countEntries(db)).toBe(entries);
    expect(await paypalBooks(currency)).toEqual({ clearing: 10000n, disputed: 0n, losses: 0n });
    const { dispute: won, exceptions } = await disputeAndExceptions(capture, transaction.id);
    expect(won).toMatchObject({ status: 'won', amount: 10000n, reversed: true });
    expect(exceptions).toEqual(['unknown_outcome']);
    const disputes = await db
      .selectFrom('disputes')
      .select('gateway_dispute_id')
      .where('transaction_id', '=', transaction.id)
      .execute();
    expect(disputes).toEqual([{ gateway_dispute_id: capture }]);
    // Another delivery of a reversal of it raises nothing more.
    expect(await deliver('PAYMENT.CAPTURE.REVERSED', reversal)).toEqual(['duplicate']);
    expect((await disputeAndExceptions(capture, transaction.id)).exceptions).toEqual(['unknown_outcome']);
  });

  /*
   * A PayPal claim (not a chargeback) resolved for the merchant after PayPal reversed the capture:
   * perhaps the claim was won before a chargeback took the money, its resolution delivered late, so
   * whether the money came back cannot be told. Nothing changes (clearing 0, losses 10000, the
   * dispute lost) and a dispute_won_after_loss exception names it for a person.
   */
  it('raises dispute_won_after_loss, changing nothing, when a claim is reported won after a reversal', async () => {
    const currency = 'THB';
    const capture = 'CAPTHBCLAIMWONLATE';
    const { transaction } = await succeededCharge(db, {
      currency,
      amount: 10000n,
      gateway: 'paypal',
      gatewayTransactionId: capture,
    });
    await deliver('PAYMENT.CAPTURE.REVERSED', { captureId: capture, amount: 10000, currency });
    const books = await paypalBooks(currency);
    const resolved = {
      captureId: capture,
      amount: 10000,
      currency,
      objectId: 'PP-D-THB01',
      disputeOutcome: 'RESOLVED_SELLER_FAVOUR',
    };
    expect(await deliver('CUSTOMER.DISPUTE.RESOLVED', resolved)).toEqual(['stale']);
    expect(await paypalBooks(currency)).toEqual(books);
    expect(books).toEqual({ clearing: 0n, disputed: 0n, losses: 10000n });
    const { dispute, exceptions } = await disputeAndExceptions(capture, transaction.id);
    expect(dispute).toMatchObject({ status: 'lost', amount: 10000n });
    expect(exceptions).toEqual(['dispute_won_after_loss']);
  });

  /*
   * A claim won, then a chargeback on the same capture, then that chargeback won (PayPal keys both by
   * the capture). Worked by hand, minor units (MYR): captured 10000 (clearing 10000); the claim's hold
   * (clearing 0, disputed 10000); the claim won (clearing 10000, disputed 0); the chargeback's reversal,
   * a dispute of its own `<capture>:reversal` (clearing 0, losses 10000); the chargeback resolved for
   * the merchant: PayPal returns the 10000 (clearing 10000, losses 0). The win landed on the claim,
   * already won (a duplicate), and the 10000 stayed a chargeback loss.
   */
  it('gives the chargeback’s 10000 MYR back when it is won after a claim on the same capture was won', async () => {
    const currency = 'MYR';
    const capture = 'CAPMYRCLAIMTHENCB';
    const { transaction } = await succeededCharge(db, {
      currency,
      amount: 10000n,
      gateway: 'paypal',
      gatewayTransactionId: capture,
    });
    const claim = { captureId: capture, amount: 10000, currency, objectId: 'PP-D-MYR01' };
    await deliver('CUSTOMER.DISPUTE.CREATED', claim);
    await deliver('CUSTOMER.DISPUTE.RESOLVED', { ...claim, disputeOutcome: 'RESOLVED_SELLER_FAVOUR' });
    expect(await paypalBooks(currency)).toEqual({ clearing: 10000n, disputed: 0n, losses: 0n });
    await deliver('PAYMENT.CAPTURE.REVERSED', { captureId: capture, amount: 10000, currency });
    expect(await paypalBooks(currency)).toEqual({ clearing: 0n, disputed: 0n, losses: 10000n });
    const cb = { captureId: capture, amount: 10000, currency, objectId: 'PP-D-MYR02' };
    await deliver('CUSTOMER.DISPUTE.CREATED', cb, chargeback);
    expect(await paypalBooks(currency)).toEqual({ clearing: 0n, disputed: 0n, losses: 10000n });
    const resolved = { ...cb, disputeOutcome: 'RESOLVED_SELLER_FAVOUR' };
    expect(await deliver('CUSTOMER.DISPUTE.RESOLVED', resolved, chargeback)).toEqual(['applied']);
    expect(await paypalBooks(currency)).toEqual({ clearing: 10000n, disputed: 0n, losses: 0n });
    const disputes = await db
      .selectFrom('disputes')
      .select(['gateway_dispute_id', 'status'])
      .where('transaction_id', '=', transaction.id)
      .orderBy('gateway_dispute_id')
      .execute();
    expect(disputes).toEqual([
      { gateway_dispute_id: capture, status: 'won' },
      { gateway_dispute_id: `${capture}:reversal`, status: 'won' },
    ]);
    const entries = await countEntries(db);
    expect(await deliver('CUSTOMER.DISPUTE.RESOLVED', resolved, chargeback)).toEqual(['duplicate']);
    expect(await countEntries(db)).toBe(entries);
    expect((await disputeAndExceptions(capture, transaction.id)).exceptions).toEqual([]);
  });
});
