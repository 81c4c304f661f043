import type { GatewayRegistry } from '../gateways/registry.ts';
import type { GatewayAdapter, GatewayClient } from '../gateways/types.ts';
import type { Metrics } from './metrics.ts';

type Operation = keyof GatewayClient;

/**
 * The same adapters, with each outbound call timed into `billhook_gateway_call_seconds` by gateway,
 * account (`default`, or the gateway account's `gwa_…` id: a few values, one per account configured)
 * operation and outcome (succeeded, declined, pending, unknown, not_found).
 */
export function instrumentRegistry(
  registry: GatewayRegistry,
  metrics: Metrics,
  account = 'default',
): GatewayRegistry {
  return new Map(
    [...registry].map(([name, adapter]): [GatewayAdapter['name'], GatewayAdapter] => {
      const client = adapter.client;
      if (!client) return [name, adapter];
      const timed =
        <R, O extends { status: string }>(operation: Operation, call: (request: R) => Promise<O>) =>
        async (request: R): Promise<O> => {
          const end = metrics.gatewayCallSeconds.startTimer({ gateway: name, account, operation });
          const outcome = await call(request);
          end({ outcome: outcome.status });
          return outcome;
        };
      const instrumented: GatewayClient = {
        charge: timed('charge', (r) => client.charge(r)),
        refund: timed('refund', (r) => client.refund(r)),
        void: timed('void', (r) => client.void(r)),
        fetchTransaction: timed('fetchTransaction', (r) => client.fetchTransaction(r)),
        // Not timed: no outcome to label, and answered from the client's cache once known.
        ...(client.accountCurrencies ? { accountCurrencies: client.accountCurrencies.bind(client) } : {}),
      };
      return [name, { ...adapter, client: instrumented }];
    }),
  );
}
