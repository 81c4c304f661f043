import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/env.ts';
import { newId } from '../../../src/db/ids.ts';
import { AUTHORIZENET_CAPABILITIES } from '../../../src/gateways/authorizenet/capabilities.ts';
import {
  fromInvoiceNumber,
  parseAnetJson,
  parseProfileToken,
  toInvoiceNumber,
} from '../../../src/gateways/authorizenet/conventions.ts';
import { authorizenetAdapter } from '../../../src/gateways/authorizenet/index.ts';
import { meaningOfResponseCode, stateOfStatus } from '../../../src/gateways/authorizenet/status.ts';
import {
  AUTHORIZENET_TEST_EVENT_TYPES,
  buildAuthorizenetTestDelivery,
} from '../../../src/gateways/authorizenet/test-events.ts';
import { AuthorizeNetWebhook } from '../../../src/gateways/authorizenet/webhook.ts';
import { anetFixtureRaw, FIXTURE_SIGNATURE_KEY } from './support.ts';

describe('reference ↔ invoice number (20 characters)', () => {
  it('sends the 20 characters after txn_ / re_ and restores the prefix by transaction kind', () => {
    const txn = newId('txn');
    const re = newId('re');
    expect(txn).toHaveLength(24);
    expect(toInvoiceNumber(txn)).toBe(txn.slice(4));
    expect(toInvoiceNumber(txn)).toHaveLength(20);
    expect(toInvoiceNumber(re)).toBe(re.slice(3));
    expect(fromInvoiceNumber(toInvoiceNumber(txn), 'charge')).toBe(txn);
    expect(fromInvoiceNumber(toInvoiceNumber(re), 'refund')).toBe(re);
  });

  it('never turns an invoice number that is not a billhook id body into a reference', () => {
    expect(fromInvoiceNumber('60', 'charge')).toBeUndefined();
    expect(fromInvoiceNumber('1324567890', 'charge')).toBeUndefined();
    expect(fromInvoiceNumber('INV-0000000000000001', 'charge')).toBeUndefined();
    expect(fromInvoiceNumber(undefined, 'refund')).toBeUndefined();
  });

  it('refuses an id that would not fit', () => {
    expect(toInvoiceNumber('txn_0123456789012345678901')).toBeUndefined();
    expect(toInvoiceNumber('txn_')).toBeUndefined();
  });
});

describe('payment method token', () => {
  it('reads customerProfileId/paymentProfileId, or a payment profile with the customer id', () => {
    expect(parseProfileToken('40338125/1000177237', null)).toEqual({
      customerProfileId: '40338125',
      paymentProfileId: '1000177237',
    });
    expect(parseProfileToken('1000177237', '40338125')).toEqual({
      customerProfileId: '40338125',
      paymentProfileId: '1000177237',
    });
    expect(parseProfileToken('1000177237', null)).toBeUndefined();
    expect(parseProfileToken('pm_card_visa', 'cus_1')).toBeUndefined();
    expect(parseProfileToken('40338125/', null)).toBeUndefined();
  });
});

describe('parseAnetJson', () => {
  it('strips the byte-order mark and keeps decimal amounts as their exact text', () => {
    expect(
      parseAnetJson('\uFEFF{"authAmount":1018.88,"settleAmount":45.00,"responseCode":1,"x":0.1}'),
    ).toEqual({
      authAmount: '1018.88',
      settleAmount: '45.00',
      responseCode: '1',
      x: '0.1',
    });
    expect(() => parseAnetJson('\uFEFF<xml/>')).toThrow(SyntaxError);
  });
});

describe('status table', () => {
  it('makes only explicit success success and only explicit failure failure', () => {
    expect(
      [
        'settledSuccessfully',
        'capturedPendingSettlement',
        'refundSettledSuccessfully',
        'refundPendingSettlement',
      ].map(stateOfStatus),
    ).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(
      ['declined', 'generalError', 'communicationError', 'failedReview', 'expired', 'settlementError'].map(
        stateOfStatus,
      ),
    ).toEqual(Array(6).fill('failed'));
    expect(stateOfStatus('voided')).toBe('canceled');
    expect(
      [
        'FDSPendingReview',
        'FDSAuthorizedPendingReview',
        'underReview',
        'approvedReview',
        'authorizedPendingCapture',
        'authorizedPendingRelease',
        'pendingSettlement',
        'pendingFinalSettlement',
        'updatingSettlement',
        'couldNotVoid',
      ].map(stateOfStatus),
    ).toEqual(Array(10).fill('pending'));
    // Statuses the table does not list are unknown, never pending or failed (PRODUCT.md §11).
    expect(['chargeback', 'returnedItem', 'whatever', ''].map(stateOfStatus)).toEqual(
      Array(4).fill('unknown'),
    );
    expect(['1', '2', '3', '4', '0', ''].map(meaningOfResponseCode)).toEqual([
      'approved',
      'declined',
      'error',
      'held',
      'unknown',
      'unknown',
    ]);
  });
});

describe('buildAuthorizenetTestDelivery', () => {
  it('builds a compact notification signed as Authorize.Net signs, which the verifier accepts', async () => {
    const config = { AUTHORIZENET_SIGNATURE_KEY: FIXTURE_SIGNATURE_KEY };
    const webhook = new AuthorizeNetWebhook([FIXTURE_SIGNATURE_KEY], {
      transactionDetails: () => Promise.reject(new Error('unused')),
      accountCurrencies: () => Promise.reject(new Error('unused')),
    });
    for (const type of AUTHORIZENET_TEST_EVENT_TYPES) {
      const { body, headers } = buildAuthorizenetTestDelivery(
        type,
        { transactionId: '2228446239', amount: 4620, currency: 'USD' },
        config,
      );
      expect(body).toContain('"authAmount":46.20,');
      expect(body).not.toContain('\n');
      expect(headers['X-ANET-Signature']).toMatch(/^sha512=[0-9A-F]{128}$/);
      const delivery = await webhook.verify(Buffer.from(body), {
        'x-anet-signature': headers['X-ANET-Signature'],
      });
      expect(delivery.eventType).toBe(type);
      expect(JSON.parse(body).payload).toMatchObject({ entityName: 'transaction', id: '2228446239' });
    }
    // Same member order as the real notification.
    const real = Object.keys(
      JSON.parse(anetFixtureRaw('webhook.net.authorize.payment.authcapture.created.json')),
    );
    const built = buildAuthorizenetTestDelivery(
      AUTHORIZENET_TEST_EVENT_TYPES[0],
      { transactionId: '1', amount: 1, currency: 'USD' },
      config,
    );
    expect(Object.keys(JSON.parse(built.body))).toEqual(real);
  });

  it('refuses to build without a Signature Key', () => {
    expect(() =>
      buildAuthorizenetTestDelivery(
        'net.authorize.payment.authcapture.created',
        { transactionId: '1', amount: 1, currency: 'USD' },
        { AUTHORIZENET_SIGNATURE_KEY: undefined },
      ),
    ).toThrow(/AUTHORIZENET_SIGNATURE_KEY/);
  });
});

describe('authorizenetAdapter', () => {
  const env = {
    AUTHORIZENET_API_LOGIN_ID: 'login',
    AUTHORIZENET_TRANSACTION_KEY: 'key',
    AUTHORIZENET_SIGNATURE_KEY: FIXTURE_SIGNATURE_KEY,
  };

  it('enables the client with the API credentials, and the webhook only with the Signature Key and the API', () => {
    const both = authorizenetAdapter(loadConfig(env));
    expect(both.name).toBe('authorizenet');
    expect(both.client).toBeDefined();
    expect(both.webhook).toBeDefined();
    const noKey = authorizenetAdapter(loadConfig({ ...env, AUTHORIZENET_SIGNATURE_KEY: '' }));
    expect([noKey.client !== undefined, noKey.webhook !== undefined]).toEqual([true, false]);
    const noApi = authorizenetAdapter(loadConfig({ AUTHORIZENET_SIGNATURE_KEY: FIXTURE_SIGNATURE_KEY }));
    expect([noApi.client, noApi.webhook]).toEqual([undefined, undefined]);
    expect(authorizenetAdapter(loadConfig({}))).toEqual({
      name: 'authorizenet',
      capabilities: AUTHORIZENET_CAPABILITIES,
      client: undefined,
      webhook: undefined,
    });
  });
});
