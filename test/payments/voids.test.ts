import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayClients } from '../../src/accounts/clients.ts';
import type { Db } from '../../src/db/database.ts';
import type { GatewayName } from '../../src/gateways/types.ts';
import { voidTransaction } from '../../src/payments/voids.ts';
import { moneyCoreDatabase, pendingCharge } from '../support/money-core.ts';

/**
 * `voidTransaction`'s refusals that need no gateway: what a gateway can void is its declared
 * capability (capabilities.ts), whether or not it is configured; a gateway that can void but has no
 * credentials here is `gateway_not_configured`. Nothing changes either way.
 */
/** No gateway configured: no default account has credentials, and there is no gateway account. */
const NOTHING_CONFIGURED: GatewayClients = {
  registry: new Map(),
  accounts: { adapterOf: async () => undefined },
};

describe('voidTransaction without the gateway configured', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  /** A pending charge the gateway has named (`gateway_transaction_id` set), in `currency`. */
  async function namedPendingCharge(gateway: GatewayName, currency: string) {
    const { transaction } = await pendingCharge(db, { currency, gateway });
    await db
      .updateTable('transactions')
      .set({ gateway_transaction_id: `${gateway}_${currency}_1` })
      .where('id', '=', transaction.id)
      .execute();
    return transaction;
  }

  it('answers gateway_not_configured for a gateway that voids (Stripe) without credentials, and changes nothing', async () => {
    const transaction = await namedPendingCharge('stripe', 'NOK');
    await expect(voidTransaction(db, 'system', NOTHING_CONFIGURED, transaction.id)).rejects.toMatchObject({
      status: 409,
      code: 'gateway_not_configured',
    });
    const row = await db
      .selectFrom('transactions')
      .select('status')
      .where('id', '=', transaction.id)
      .executeTakeFirst();
    expect(row?.status).toBe('pending');
  });

  it('answers gateway_cannot_void for a gateway that voids none of billhook charges (PayPal), configured or not', async () => {
    const transaction = await namedPendingCharge('paypal', 'DKK');
    await expect(voidTransaction(db, 'system', NOTHING_CONFIGURED, transaction.id)).rejects.toMatchObject({
      status: 409,
      code: 'gateway_cannot_void',
    });
  });
});
