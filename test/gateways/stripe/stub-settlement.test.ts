import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendTestWebhook } from '../../../src/cli/send-test-webhook.ts';
import { loadConfig } from '../../../src/config/env.ts';
import { StripeClient } from '../../../src/gateways/stripe/client.ts';
import { settlementLineOf, settlementLinesOf } from '../../../src/gateways/stripe/settlement.ts';
import { startStripeStub } from '../../../src/gateways/stripe/stub.ts';
import { stubFee } from '../../../src/gateways/stripe/stub-balance.ts';
import { StripeWebhook } from '../../../src/gateways/stripe/webhook.ts';
import type { ChargeRequest } from '../../../src/gateways/types.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';

const SECRET = 'whsec_stub_settlement';

const charge = (reference: string, amount: bigint): ChargeRequest => ({
  reference,
  amount,
  currency: 'USD',
  initiation: 'unscheduled',
  paymentMethod: { token: 'pm_card_visa', customerId: null },
});

/** The README's payout walk-through at the gateway layer: the stub's balance, a payout, its signed event. */
describe('Stripe stub: balance transactions and a payout of the charges it confirmed', () => {
  let stub: Server;
  let base: string;
  let client: StripeClient;
  beforeAll(async () => {
    stub = await startStripeStub(0, 'processing');
    base = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
    client = new StripeClient({
      secretKey: 'sk_test_demo',
      apiBase: base,
      timeoutMs: ANSWERED_CALL_TIMEOUT_MS,
    });
  });
  afterAll(async () => {
    await new Promise((resolve) => stub.close(resolve));
  });

  it('books 2.9% + 30 on each charge, pays out the nets, and lists them as the payout’s lines', async () => {
    expect([stubFee(2500), stubFee(1000), stubFee(1)]).toEqual([103, 59, 30]);
    const first = await client.charge(charge('txn_stubsettle01', 2500n));
    const second = await client.charge(charge('txn_stubsettle02', 1000n));
    if (first.status !== 'pending' || second.status !== 'pending')
      throw new Error('stub charges are pending');
    const refund = await client.refund({
      reference: 're_stubsettle01',
      chargeReference: 'txn_stubsettle02',
      gatewayTransactionId: second.gatewayTransactionId,
      amount: 400n,
      currency: 'USD',
      paymentMethod: { token: 'pm_card_visa', customerId: null },
    });
    if (refund.status !== 'succeeded') throw new Error('stub refunds succeed');

    const created = await fetch(`${base}/v1/payouts`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'currency=usd',
    });
    const payout = (await created.json()) as { id: string; amount: number; status: string };
    expect(payout).toMatchObject({ status: 'paid', amount: 2500 - 103 + (1000 - 59) - 400 });

    const lines = settlementLinesOf(await client.payoutBalanceTransactions(payout.id));
    expect(lines.map((l) => [l.kind, l.gatewayTransactionId, l.gross, l.fee, l.net])).toEqual([
      ['refund', second.gatewayTransactionId, -400n, 0n, -400n],
      ['charge', second.gatewayTransactionId, 1000n, 59n, 941n],
      ['charge', first.gatewayTransactionId, 2500n, 103n, 2397n],
    ]);
    expect(lines[0]).toMatchObject({ gatewayRefundId: refund.gatewayRefundId, reference: 're_stubsettle01' });
    expect(lines.reduce((sum, l) => sum + l.net, 0n)).toBe(BigInt(payout.amount));

    // A charge's own balance transaction, as charge.updated makes billhook ask for it.
    const listed = (await (await fetch(`${base}/v1/balance_transactions?payout=${payout.id}`)).json()) as {
      data: { id: string; type: string }[];
    };
    const own = listed.data.find((t) => t.type === 'charge')!;
    expect(settlementLineOf(await client.balanceTransaction(own.id))).toMatchObject({
      kind: 'charge',
      fee: 59n,
    });
    // Nothing is left to pay out, and the payouts of today are listed.
    expect(
      (await fetch(`${base}/v1/payouts`, { method: 'POST', body: new URLSearchParams({ currency: 'usd' }) }))
        .status,
    ).toBe(400);
    const today = await client.payoutsCreated({
      from: new Date(Date.now() - 60_000),
      to: new Date(Date.now() + 60_000),
    });
    expect(today.map((p: any) => p.id)).toEqual([payout.id]);
  });

  it('send-test-webhook stripe payout.paid --object-id po_… sends the stub’s payout, reconciled with its lines', async () => {
    const paid = await client.charge(charge('txn_stubsettle03', 5000n));
    if (paid.status !== 'pending') throw new Error('stub charges are pending');
    const created = await fetch(`${base}/v1/payouts`, {
      method: 'POST',
      body: new URLSearchParams({ currency: 'usd' }),
    });
    const payout = (await created.json()) as { id: string; amount: number };

    // A receiver standing in for billhook's /webhooks/stripe: the webhook half as the adapter builds it.
    const webhook = new StripeWebhook([SECRET], 300, {
      refundsOfCharge: (id) => client.refundsOfCharge(id),
      paymentIntentOfCharge: (id) => client.paymentIntentOfCharge(id),
      balanceTransaction: (id) => client.balanceTransaction(id),
      payoutBalanceTransactions: (id) => client.payoutBalanceTransactions(id),
    });
    const received: { body: string; headers: IncomingHttpHeaders }[] = [];
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
        res.end('{"received":true}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const config = loadConfig({
        STRIPE_WEBHOOK_SECRET: SECRET,
        STRIPE_SECRET_KEY: 'sk_test_demo',
        STRIPE_API_BASE: base,
      });
      const sent = await sendTestWebhook(config, 'stripe', 'payout.paid', {
        url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
        objectId: payout.id,
        amount: 1000,
        currency: 'usd',
      });
      expect(sent.status).toBe(200);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
    const [delivery] = received;
    const raw = Buffer.from(delivery!.body);
    expect(await webhook.verify(raw, delivery!.headers)).toMatchObject({ eventType: 'payout.paid' });
    expect(JSON.parse(delivery!.body).data.object).not.toHaveProperty('lastResponse');
    const [event, ...rest] = await webhook.normalize(delivery!.body);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'payout.updated',
      amount: BigInt(payout.amount),
      currency: 'USD',
      payout: { gatewayPayoutId: payout.id, status: 'paid', amount: BigInt(5000 - stubFee(5000)) },
    });
    expect(event?.payout?.lines).toEqual([
      expect.objectContaining({
        kind: 'charge',
        gatewayTransactionId: paid.gatewayTransactionId,
        net: 4825n,
      }),
    ]);
  });
});
