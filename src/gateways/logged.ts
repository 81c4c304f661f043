import type { Logger } from 'pino';
import type { GatewayRegistry } from './registry.ts';
import type {
  ChargeRequest,
  GatewayAdapter,
  GatewayClient,
  GatewayName,
  RefundRequest,
  TransactionQuery,
  VoidRequest,
} from './types.ts';

/**
 * The ids a person needs to act on one gateway call: our transaction (`txn_…`), refund (`re_…`) and
 * invoice ids, the gateway's id of the payment, and which status check of the poll schedule it was.
 * Never the payment method, a token or a body.
 */
interface CallIds {
  transactionId: string;
  refundId?: string;
  invoiceId?: string;
  gatewayReference?: string;
  attempt?: number;
}

const chargeIds = (r: ChargeRequest): CallIds => ({ transactionId: r.reference, invoiceId: r.invoiceId });
const refundIds = (r: RefundRequest): CallIds => ({
  transactionId: r.chargeReference,
  refundId: r.reference,
  gatewayReference: r.gatewayTransactionId,
  attempt: r.repeat ? 2 : 1,
});
const voidIds = (r: VoidRequest): CallIds => ({
  transactionId: r.reference,
  gatewayReference: r.gatewayTransactionId,
});
const queryIds = (q: TransactionQuery): CallIds => ({
  transactionId: q.reference,
  invoiceId: q.charge.invoiceId,
  gatewayReference: q.gatewayTransactionId,
  attempt: q.attempt,
});

type Outcome =
  | { status: string }
  | { status: 'declined'; code: string; message: string; gatewayTransactionId?: string }
  | { status: 'unknown'; message: string };

/**
 * The same adapters, each outbound call that did not succeed logged at warn (`gateway call failed`)
 * with the gateway, the operation, the ids of {@link CallIds} and how it failed: `outcome` `declined`
 * with the gateway's decline `code` and `reason`, `unknown` (no answer, a timeout, a 5xx, an answer
 * that could not be read: `reason` says which), or `error` when the adapter threw (the error's message;
 * the error is thrown on). Successes, pending answers and "no such charge" are not logged here.
 */
export function logGatewayFailures(registry: GatewayRegistry, log: Logger): GatewayRegistry {
  return new Map(
    [...registry].map(([name, adapter]): [GatewayName, GatewayAdapter] => {
      const client = adapter.client;
      if (!client) return [name, adapter];
      const logged =
        <R, O extends Outcome>(
          operation: keyof GatewayClient,
          idsOf: (request: R) => CallIds,
          call: (request: R) => Promise<O>,
        ) =>
        async (request: R): Promise<O> => {
          const fields = { gateway: name, operation, ...idsOf(request) };
          let outcome: O;
          try {
            outcome = await call(request);
          } catch (error) {
            const reason = error instanceof Error ? error.message : String(error);
            log.warn({ ...fields, outcome: 'error', reason }, 'gateway call failed');
            throw error;
          }
          if ('code' in outcome && outcome.status === 'declined') {
            log.warn(
              {
                ...fields,
                gatewayReference: fields.gatewayReference ?? outcome.gatewayTransactionId,
                outcome: 'declined',
                code: outcome.code,
                reason: outcome.message,
              },
              'gateway call failed',
            );
          } else if ('message' in outcome && outcome.status === 'unknown') {
            log.warn({ ...fields, outcome: 'unknown', reason: outcome.message }, 'gateway call failed');
          }
          return outcome;
        };
      const wrapped: GatewayClient = {
        charge: logged('charge', chargeIds, (r) => client.charge(r)),
        refund: logged('refund', refundIds, (r) => client.refund(r)),
        void: logged('void', voidIds, (r) => client.void(r)),
        fetchTransaction: logged('fetchTransaction', queryIds, (r) => client.fetchTransaction(r)),
        ...accountCurrenciesLogged(client, name, log),
      };
      return [name, { ...adapter, client: wrapped }];
    }),
  );
}

/**
 * `client.accountCurrencies`, when it has one, with its failure logged (the call it guards is then
 * sent anyway: gateways/currencies.ts `assertAccountCurrency`) and rethrown.
 */
function accountCurrenciesLogged(
  client: GatewayClient,
  gateway: string,
  log: Logger,
): Pick<GatewayClient, 'accountCurrencies'> {
  const read = client.accountCurrencies?.bind(client);
  if (!read) return {};
  return {
    accountCurrencies: async () => {
      try {
        return await read();
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        log.warn(
          { gateway, operation: 'accountCurrencies', outcome: 'error', reason },
          'gateway call failed',
        );
        throw error;
      }
    },
  };
}
