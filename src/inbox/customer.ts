import { type RawBuilder, sql } from 'kysely';

/**
 * The gateway ids of the charges, refunds and disputes an inbox row's normalised events name, as one
 * JSON array: the expression the `inbox_gateway_ids` GIN index (migration 0031) holds, written
 * exactly as it, so the planner can use the index.
 */
const inboxGatewayIds = sql`(jsonb_path_query_array(named.events, '$[*].gatewayTransactionId') ||
      jsonb_path_query_array(named.events, '$[*].gatewayRefundId') ||
      jsonb_path_query_array(named.events, '$[*].gatewayDisputeId'))`;

/**
 * The condition, on a row of `inbox`, that the delivery is about one customer's money: one of its
 * normalised events (`events`, written once processed) names a transaction of the customer
 * (`gatewayTransactionId`), a refund or a dispute of one (`gatewayRefundId`, `gatewayDisputeId`), at
 * the same gateway and gateway account the delivery came to. Exact: a delivery not processed yet, or
 * naming only what billhook has no record of, matches no customer.
 * First narrowed, through the `inbox_gateway_ids` index (migration 0031), to the deliveries naming
 * one of the gateway ids of the customer's transactions, refunds or disputes (any gateway): their ids
 * are read once (an array the planner computes first, so it cannot choose to scan the whole inbox
 * newest first instead), and the exact check reads those rows only.
 * @param customerId a `cus_…` id (an unknown one matches no row)
 */
export function inboxTouchesCustomer(customerId: string): RawBuilder<boolean> {
  return sql<boolean>`inbox.id = ANY(ARRAY(
    SELECT named.id FROM inbox named WHERE named.events IS NOT NULL AND ${inboxGatewayIds} ?| ARRAY(
      SELECT t.gateway_transaction_id FROM transactions t
      WHERE t.customer_id = ${customerId} AND t.gateway_transaction_id IS NOT NULL
      UNION ALL SELECT r.gateway_refund_id FROM refunds r JOIN transactions t ON t.id = r.transaction_id
      WHERE t.customer_id = ${customerId} AND r.gateway_refund_id IS NOT NULL
      UNION ALL SELECT d.gateway_dispute_id FROM disputes d JOIN transactions t ON t.id = d.transaction_id
      WHERE t.customer_id = ${customerId} AND d.gateway_dispute_id IS NOT NULL
    ))) AND EXISTS (
    SELECT 1 FROM jsonb_array_elements(COALESCE(inbox.events, '[]'::jsonb)) AS e(event)
    JOIN transactions t ON t.gateway = inbox.gateway
      AND t.gateway_account IS NOT DISTINCT FROM inbox.gateway_account
      AND t.customer_id = ${customerId}
    WHERE t.gateway_transaction_id = e.event->>'gatewayTransactionId'
      OR t.id IN (SELECT r.transaction_id FROM refunds r WHERE r.gateway_refund_id = e.event->>'gatewayRefundId')
      OR t.id IN (SELECT d.transaction_id FROM disputes d WHERE d.gateway_dispute_id = e.event->>'gatewayDisputeId')
  )`;
}
