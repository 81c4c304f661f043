import { expect } from 'vitest';
import type { TestApp } from './app.ts';
import { ledgerByCode } from './flow.ts';

/**
 * `ledgerByCode` restricted to one currency, keys without the currency: tests that give each
 * scenario its own currency (one customer per currency) read their own books in a shared app.
 */
export async function ledgerIn(app: TestApp, currency: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [key, balance] of Object.entries(await ledgerByCode(app))) {
    const [code, cur] = key.split(' ');
    if (cur === currency) out[code!] = balance;
  }
  return out;
}

/** Creates a customer over the API, optionally with a Stripe payment method (the fixture's ids). */
export async function customerWith(app: TestApp, o: { stripe?: boolean } = {}) {
  const customer = await app.api('POST', '/v1/customers', { email: 'grace@example.com' });
  expect(customer.status).toBe(201);
  if (o.stripe) {
    const method = await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    expect(method.status).toBe(201);
    return { customer: customer.body, method: method.body };
  }
  return { customer: customer.body, method: undefined };
}

/** The actions logged for one resource, in order. */
export async function actionsOf(app: TestApp, resource: string): Promise<string[]> {
  const log = await app.api('GET', `/v1/activities?resource=${resource}&limit=100`);
  return log.body.data.map((a: { action: string }) => a.action);
}
