import { type Kysely, sql } from 'kysely';

/**
 * Subscription lifecycle as the seeds have it (issue #28 item 3): a cancellation scheduled at a date
 * (`cancel_at`; the status stays until then) and its reason, the reason of a suspension, and a plan or
 * quantity change scheduled for the next renewal (`scheduled_plan_id` + `scheduled_quantity`, both
 * set or both null).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE subscriptions
      ADD COLUMN cancel_at timestamptz,
      ADD COLUMN cancel_reason text CHECK (length(cancel_reason) <= 1000),
      ADD COLUMN suspend_reason text CHECK (length(suspend_reason) <= 1000),
      ADD COLUMN scheduled_plan_id text REFERENCES plans (id),
      ADD COLUMN scheduled_quantity integer CHECK (scheduled_quantity >= 0),
      ADD CONSTRAINT subscriptions_scheduled_change
        CHECK ((scheduled_plan_id IS NULL) = (scheduled_quantity IS NULL));
  `.execute(db);
}
