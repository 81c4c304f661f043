/**
 * Gateway client timeouts for tests (milliseconds). No test may depend on an idle machine (issue
 * #22, item 14): a call that gets an answer must never race a short timeout, because a process
 * sharing busy cores can be paused for over a second between the fake gateway's answer and its read.
 *
 * - `ANSWERED_CALL_TIMEOUT_MS` for every client or app whose calls get an answer: the production
 *   default of `GATEWAY_TIMEOUT_MS`, so it only ever fires when something is really stuck.
 * - `HANGING_CALL_TIMEOUT_MS` only for a client or app that makes one call, to a gateway that never
 *   answers (`noAnswer`, `nockNoAnswer`): waiting for its timeout is what the test is about.
 */
export const ANSWERED_CALL_TIMEOUT_MS = 30_000;
export const HANGING_CALL_TIMEOUT_MS = 300;

/**
 * Instead of `HANGING_CALL_TIMEOUT_MS`, for an app (`startHangingWeb`) whose gateway needs an OAuth
 * token before the call that never answers (PayPal, SecurePay): the app's token request is answered,
 * under the same timeout. Over four times the slowest answered call seen with 8 busy processes on 2 cores
 * (1.2 s); the test waits it once. (A client built by a test takes `tokenTimeoutMs` instead.)
 */
export const HANGING_AFTER_TOKEN_TIMEOUT_MS = 5_000;

/**
 * A nock `.delay()` past every timeout above, for Stripe's client (stripe-node on Node's `http`,
 * whose timeout nock's delay triggers): the answer never comes while the test runs.
 */
export const NO_ANSWER_DELAY_MS = 10 * ANSWERED_CALL_TIMEOUT_MS;

/**
 * A nock reply that never comes, for timeouts: `nock(base).post(path).reply(noAnswer)`. The client's
 * timeout fires first. (A nock `.delay()` reply that lands after fetch aborted trips an assertion
 * inside undici and fails the run.)
 */
export function noAnswer(): Promise<[number, string]> {
  return new Promise(() => {});
}
