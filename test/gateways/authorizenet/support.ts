import { readFileSync } from 'node:fs';
import path from 'node:path';
import nock from 'nock';
import { noAnswer } from '../../support/timeouts.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/authorizenet');

/** The signature key of stymiee/authnetjson's AuthnetWebhookTest, which signed the webhook fixture. */
export const FIXTURE_SIGNATURE_KEY =
  '52CB4A002C634B84E397DC8A218E1A160BA7CAB7CBE4C05B35E9CBB05E14FE4A2385812E980CCF97D177F17863CE214D1BE6CE8E1E894487AACF3609C1A5FE17';

export const API_PATH = '/xml/v1/request.api';
export const LOGIN_ID = '5KP3u95bQpv';
export const TRANSACTION_KEY = '346HZ32z3fP4hTG2';

/** A fixture from test/fixtures/authorizenet (see SOURCES.md there), parsed. */
export function anetFixture(name: string): any {
  return JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8'));
}

/** The raw bytes of a fixture, exactly as stored. */
export function anetFixtureRaw(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

/** An answer as Authorize.Net sends it: JSON text starting with a UTF-8 byte-order mark. */
export function withBom(body: unknown): string {
  return `\uFEFF${typeof body === 'string' ? body : JSON.stringify(body)}`;
}

/**
 * The real getTransactionDetails answer (api.getTransactionDetails.settledSuccessfully.json) with
 * `change` applied to its `transaction`: how the tests derive other statuses and refunds. As in the
 * fixture, the transaction settles what it authorized (`settleAmount` follows a changed `authAmount`)
 * unless `change` names a `settleAmount` of its own (a partial capture or settlement).
 */
export function detailsAnswer(change: Record<string, unknown> = {}): any {
  const answer = anetFixture('api.getTransactionDetails.settledSuccessfully.json');
  const settled =
    'authAmount' in change && !('settleAmount' in change) ? { settleAmount: change.authAmount } : {};
  Object.assign(answer.transaction, settled, change);
  return answer;
}

/** Authorize.Net's "record not found" answer to getTransactionDetails of an unknown transId. */
export const RECORD_NOT_FOUND_ANSWER = {
  messages: { resultCode: 'Error', message: [{ code: 'E00040', text: 'The record cannot be found.' }] },
};

/** The request object inside an API call body, e.g. `body.createTransactionRequest`. */
export type ApiBody = Record<string, any>;

/**
 * Intercepts one call of `request` (e.g. `createTransactionRequest`) on `base`, when `match` accepts
 * its inner object, answering `answer` with a BOM. The seen inner objects are pushed to `seen`.
 */
export function nockApi(
  base: string,
  request: string,
  answer: unknown,
  match: (inner: ApiBody) => boolean = () => true,
  seen: ApiBody[] = [],
  status = 200,
) {
  return nock(base)
    .post(API_PATH, (body: ApiBody) => {
      const inner = body[request];
      if (!inner || !match(inner)) return false;
      seen.push(inner);
      return true;
    })
    .matchHeader('content-type', 'application/json')
    .reply(status, typeof answer === 'string' ? answer : withBom(answer));
}

/** A getTransactionDetails interception for `transId`. */
export function nockDetails(base: string, transId: string, answer: unknown) {
  return nockApi(base, 'getTransactionDetailsRequest', answer, (inner) => inner.transId === transId);
}

/** The getMerchantDetails interception (account currency USD, the real sample). */
export function nockMerchantDetails(base: string) {
  return nockApi(base, 'getMerchantDetailsRequest', anetFixture('api.getMerchantDetails.json'));
}

/** A call on `base` that never gets an answer, so the client's timeout fires. */
export function nockNoAnswer(base: string) {
  return nock(base).post(API_PATH).reply(noAnswer);
}
