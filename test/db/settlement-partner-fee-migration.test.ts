import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { databaseAtMigration } from '../support/database.ts';

describe('migration 0041: PayPal charge lines booked before it keep the partner fees their fee counted', () => {
  let db: Db;
  beforeAll(async () => {
    db = await databaseAtMigration('0040_idempotent_answer_text');
  });
  afterAll(() => db.destroy());

  it('reads the platform or partner fees billhook appended to a PayPal charge line’s description (every one of a sweep’s); every other line took none', async () => {
    // A capture webhook's line (fee 354 = PayPal's 154 + platform fees 200), a sweep's line that
    // added a T0113 row (149 + 88), a line without partner fees, and a Stripe line.
    await sql`
      INSERT INTO settlement_lines
        (id, gateway, gateway_line_id, kind, currency, gross, fee, net, description, occurred_at) VALUES
        ('stl_webhook', 'paypal', 'CAP1', 'charge', 'USD', 3000, 354, 2646,
         'PayPal capture; the fee includes platform fees of 200 minor units', now()),
        ('stl_sweep', 'paypal', 'CAP2', 'charge', 'USD', 5000, 237, 4763,
         'PayPal T0013: donation; the fee includes partner fees of 88 minor units', now()),
        ('stl_plain', 'paypal', 'CAP3', 'charge', 'USD', 251, 37, 214, 'PayPal capture', now()),
        ('stl_stripe', 'stripe', 'txn_1', 'charge', 'EUR', 4620, 155, 4465, NULL, now()),
        -- A sweep's line of a payment with two T0113 rows: one suffix per row (149 + 50 + 38).
        ('stl_two', 'paypal', 'CAP4', 'charge', 'USD', 5000, 237, 4763,
         'PayPal T0013: donation; the fee includes partner fees of 50 minor units; the fee includes partner fees of 38 minor units', now()),
        -- Subjects (the payer's text) naming partner fees: only the run billhook appended at the end counts.
        ('stl_subject', 'paypal', 'CAP5', 'charge', 'USD', 5000, 237, 4763,
         'PayPal T0013: the fee includes partner fees of 999 minor units; the fee includes partner fees of 5 minor units, thanks; the fee includes partner fees of 88 minor units', now()),
        ('stl_forged', 'paypal', 'CAP6', 'charge', 'USD', 5000, 149, 4851,
         'PayPal T0013: gift; the fee includes partner fees of 500 minor units', now()),
        ('stl_inside', 'paypal', 'CAP7', 'charge', 'USD', 5000, 149, 4851,
         'PayPal T0013: gift; the fee includes partner fees of 40 minor units (not really)', now()),
        ('stl_prefixed', 'paypal', 'CAP8', 'charge', 'USD', 5000, 149, 4851,
         'Note: PayPal capture; the fee includes platform fees of 40 minor units', now())
    `.execute(db);
    await migrateToLatest(db);
    const rows = await db
      .selectFrom('settlement_lines')
      .select(['id', 'partner_fee'])
      .orderBy('id')
      .execute();
    expect(rows).toEqual([
      { id: 'stl_forged', partner_fee: 0n },
      { id: 'stl_inside', partner_fee: 0n },
      { id: 'stl_plain', partner_fee: 0n },
      { id: 'stl_prefixed', partner_fee: 0n },
      { id: 'stl_stripe', partner_fee: 0n },
      { id: 'stl_subject', partner_fee: 88n },
      { id: 'stl_sweep', partner_fee: 88n },
      { id: 'stl_two', partner_fee: 88n },
      { id: 'stl_webhook', partner_fee: 200n },
    ]);
  });
});
