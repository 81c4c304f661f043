import type { CardDetails, ChargeRequest, GatewayClient, GatewayName } from '../../src/gateways/types.ts';

/**
 * What the shared adapter contract suite (test/gateways/contract.test.ts) needs from one gateway:
 * a client aimed at nock, a charge to make, and nock interceptors — on the gateway's real fixture
 * answers — for each scenario. Each `nock…` function sets up exactly the calls its scenario makes.
 */
export interface ContractCase {
  gateway: GatewayName;
  /**
   * A client whose every call goes to the base URL(s) the interceptors use. Its calls time out after
   * `timeoutMs` (default `ANSWERED_CALL_TIMEOUT_MS`); an OAuth token request always gets the default.
   */
  client(timeoutMs?: number): GatewayClient;
  /** The charge every scenario makes: our reference, amount, currency and stored payment method. */
  charge: ChargeRequest;
  /** The gateway approves the charge. */
  nockApproved(): void;
  /** The gateway declines; the outcome must carry this code and a message matching `message`. */
  nockDeclined(): { code: string; message: RegExp };
  /** The charge call gets no answer, ever (after whatever token call the gateway needs). */
  nockTimeout(): void;
  /**
   * After a timeout, the gateway's status answer (or idempotent repeat) says the charge succeeded;
   * a new client asks, so with its token call where the gateway needs one.
   */
  nockPollFindsSuccess(): void;
  /** A refund of `amount` (less than the charge) of the approved charge succeeds. */
  nockPartialRefund(amount: bigint): void;
  /**
   * A void of the approved charge: `succeeded` where the gateway can void it, or a decline with the
   * gateway's code where it cannot void a captured payment (it must be refunded instead).
   */
  nockVoid(): { status: 'succeeded' } | { status: 'declined'; code: string };
  /** The gateway's id of the approved charge, as its fixture answer carries it. */
  approvedTransactionId: string;
  /** The card the approved answer describes (`CardDetails`), where the fixture carries one. */
  approvedCard?: CardDetails;
  /** The card the status check's answer describes, where it carries one (PayPal's repeated create). */
  polledCard?: CardDetails;
  /**
   * The charge is answered HTTP 2xx with `body` (a string is sent as is, an object as JSON), after
   * whatever token call the gateway needs.
   */
  nockChargeAnswer(body: string | object): void;
  /** A refund of `amount` of the approved charge is answered HTTP 2xx with `body`, as above. */
  nockRefundAnswer(amount: bigint, body: string | object): void;
  /** The gateway's approved charge answer with a status its status table does not list. */
  unmappedChargeAnswer: object;
  /** The gateway's refund answer (for `amount`) with a status its status table does not list. */
  unmappedRefundAnswer(amount: bigint): object;
}
