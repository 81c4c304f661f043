import { type Kysely, sql } from 'kysely';

/**
 * Fixed terms (issue #28 item 2, Billby's `repeat`): a plan's number of billing cycles (null: until
 * cancelled), copied to each subscription on create where it may be overridden; after its last
 * period the renewal ends the subscription. `settled_at`: when `POST /v1/subscriptions/:id/settle`
 * invoiced every remaining cycle of the term (Billby's SETTLED).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE plans
      ADD COLUMN repeat integer CHECK (repeat BETWEEN 1 AND 1200);
    ALTER TABLE subscriptions
      ADD COLUMN repeat integer CHECK (repeat BETWEEN 1 AND 1200),
      ADD COLUMN settled_at timestamptz;
  `.execute(db);
}
