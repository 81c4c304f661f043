import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.ts';
import { GATEWAYS } from '../../src/config/gateways.ts';
import { capabilitiesOf, createRegistry } from '../../src/gateways/registry.ts';

describe('gateway capabilities', () => {
  it('are what each adapter declares, configured or not, and what capabilitiesOf answers', () => {
    const registry = createRegistry(loadConfig({}));
    for (const gateway of GATEWAYS) {
      expect(registry.get(gateway)?.capabilities).toBe(capabilitiesOf(gateway));
    }
  });

  it('read as the table of facts the rest of billhook acts on', () => {
    const table = Object.fromEntries(GATEWAYS.map((gateway) => [gateway, capabilitiesOf(gateway)]));
    expect(table).toEqual({
      stripe: {
        partialCapture: false,
        refundRepeatWindowMs: 23 * 3600_000,
        void: 'uncaptured',
        statusCheck: 'query',
        lostDisputePaidAsRefund: false,
        chargeEventsReadBack: false,
        refusalsNotRetried: {
          amount_too_small: expect.stringContaining('https://docs.stripe.com/error-codes#amount-too-small'),
          amount_too_large: expect.stringContaining('https://docs.stripe.com/error-codes#amount-too-large'),
        },
      },
      paypal: {
        partialCapture: false,
        refundRepeatWindowMs: 44 * 24 * 3600_000,
        void: 'none',
        statusCheck: 'repeat',
        lostDisputePaidAsRefund: true,
        chargeEventsReadBack: false,
        refusalsNotRetried: {},
      },
      authorizenet: {
        partialCapture: true,
        refundRepeatWindowMs: null,
        void: 'unsettled',
        statusCheck: 'query',
        lostDisputePaidAsRefund: false,
        chargeEventsReadBack: true,
        refusalsNotRetried: { '39': expect.stringContaining('reason 39') },
      },
      eway: {
        partialCapture: false,
        refundRepeatWindowMs: null,
        void: 'none',
        statusCheck: 'query',
        lostDisputePaidAsRefund: false,
        chargeEventsReadBack: true,
        refusalsNotRetried: {},
      },
      securepay: {
        partialCapture: false,
        refundRepeatWindowMs: 3600_000,
        void: 'none',
        statusCheck: 'repeat',
        lostDisputePaidAsRefund: false,
        chargeEventsReadBack: false,
        refusalsNotRetried: {},
      },
    });
  });
});
