import { type RawBuilder, sql } from 'kysely';

/**
 * The condition, on a row of `inbox`, that the delivery is about one customer's money: one of its
 * normalised events (`events`, written once processed) names a transaction of the customer
 * (`gatewayTransactionId`), a refund or a dispute of one (`gatewayRefundId`, `gatewayDisputeId`), at
 * the same gateway and gateway account the delivery came to. Exact: a delivery not processed yet, or
 * naming only what billhook has no record of, matches no customer.
 * @param customerId a `cus_…` id (an unknown one matches no row)
 */
export function inboxTouchesCustomer(customerId: string): RawBuilder<boolean> {
  return sql<boolean>`EXISTS (
    SELECT 1 FROM jsonb_array_elements(COALESCE(inbox.events, '[]'::jsonb)) AS e(event)
    JOIN transactions t ON t.gateway = inbox.gateway
      AND t.gateway_account IS NOT DISTINCT FROM inbox.gateway_account
      AND t.customer_id = ${customerId}
    WHERE t.gateway_transaction_id = e.event->>'gatewayTransactionId'
      OR t.id IN (SELECT r.transaction_id FROM refunds r WHERE r.gateway_refund_id = e.event->>'gatewayRefundId')
      OR t.id IN (SELECT d.transaction_id FROM disputes d WHERE d.gateway_dispute_id = e.event->>'gatewayDisputeId')
  )`;
}
