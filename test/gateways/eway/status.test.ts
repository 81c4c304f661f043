import { describe, expect, it } from 'vitest';
import { describeCodes, splitCodes } from '../../../src/gateways/eway/codes.ts';
import { EwayResult } from '../../../src/gateways/eway/schemas.ts';
import {
  chargeEventTypeOf,
  chargeOutcomeOf,
  combineOutcomes,
  refundOutcomeOf,
  verdictOf,
  voidOutcomeOf,
} from '../../../src/gateways/eway/status.ts';
import { ewayFixture } from './fixtures.ts';

const verdict = (answer: unknown) => verdictOf(EwayResult.parse(answer));

describe('eWAY status table (status.ts)', () => {
  it('reads the real answers: approval, D4401 decline, validation errors, S5010 refund failure', () => {
    expect(verdict(ewayFixture('api.transaction.token_payment.approved.json'))).toEqual({
      kind: 'approved',
      transactionId: '10328337',
    });
    expect(verdict(ewayFixture('api.transaction.purchase.declined_D4401.json'))).toEqual({
      kind: 'declined',
      code: 'D4401',
      message: 'D4401 Refer to Issuer (bank response code 01)',
      transactionId: '10324297',
    });
    expect(verdict(ewayFixture('api.transaction.token_payment.failed.json'))).toEqual({
      kind: 'declined',
      code: 'V6040,V6021,V6022,V6101,V6102',
      message:
        'V6040 Invalid TokenCustomerID; V6021 EWAY_CARDHOLDERNAME Required; V6022 EWAY_CARDNUMBER Required; ' +
        'V6101 Invalid EWAY_CARDEXPIRYMONTH; V6102 Invalid EWAY_CARDEXPIRYYEAR',
      transactionId: undefined,
    });
    expect(verdict(ewayFixture('api.refund.failed.json'))).toMatchObject({
      kind: 'declined',
      code: 'S5010',
      message: 'S5010 Unknown error returned by gateway',
    });
    expect(verdict(ewayFixture('api.transaction.direct_purchase.approved.json'))).toEqual({
      kind: 'approved',
      transactionId: '11818347',
    });
    expect(verdict(ewayFixture('api.cancel_authorisation.approved.json'))).toEqual({
      kind: 'approved',
      transactionId: '12345679',
    });
  });

  it('only TransactionStatus true is success; an uncaptured authorisation is pending', () => {
    const base = { TransactionID: 42, ResponseCode: '00', ResponseMessage: 'A2000', Errors: '' };
    expect(verdict({ ...base, TransactionStatus: true, TransactionCaptured: false }).kind).toBe('authorised');
    expect(verdict({ ...base, TransactionStatus: true, TransactionCaptured: true }).kind).toBe('approved');
    // A2000 and bank code 00 without TransactionStatus true are not an approval.
    expect(verdict({ ...base, TransactionStatus: null })).toEqual({
      kind: 'open',
      reason: 'eWAY reported no TransactionStatus',
      transactionId: '42',
    });
    expect(verdict({ ...base, TransactionID: null, TransactionStatus: true })).toEqual({
      kind: 'open',
      reason: 'approved without a TransactionID',
    });
  });

  it('keeps an open code open in ResponseMessage too, and D4409 "Request In Progress" (still at the bank)', () => {
    // eWAY writes a result's codes in ResponseMessage as well as in Errors (api.refund.failed.json
    // carries S5010 in both): "Transaction in unknown state" there is no refusal either.
    expect(
      verdict({ TransactionID: 42, TransactionStatus: false, ResponseMessage: 'S5666', Errors: null }),
    ).toEqual({
      kind: 'open',
      reason: 'S5666 Transaction in unknown state',
      transactionId: '42',
    });
    // ISO 8583 response 09, eWAY's D4409: the issuer is still working on the request, nothing refused yet.
    const inProgress = {
      TransactionID: 42,
      TransactionStatus: false,
      ResponseCode: '09',
      ResponseMessage: 'D4409',
    };
    expect(verdict(inProgress)).toEqual({
      kind: 'open',
      reason: 'D4409 Request In Progress',
      transactionId: '42',
    });
    expect(chargeOutcomeOf(verdict(inProgress))).toEqual({
      status: 'unknown',
      message: 'eWAY transaction 42: D4409 Request In Progress',
    });
    expect(chargeEventTypeOf(verdict(inProgress))).toBe('charge.pending');
    // Beside a bank decline it stays open: an answer saying the request is still in progress proves no refusal.
    expect(verdict({ ...inProgress, ResponseMessage: 'D4409,D4451' }).kind).toBe('open');
  });

  it('keeps S5666, S5000 and S5099 open, known codes a refusal, and a code it does not know open', () => {
    for (const code of ['S5666', 'S5000', 'S5099']) {
      expect(verdict({ TransactionID: null, TransactionStatus: false, Errors: code }).kind).toBe('open');
    }
    expect(verdict({ TransactionID: null, TransactionStatus: null, Errors: 'S5029' })).toMatchObject({
      kind: 'declined',
      code: 'S5029',
      message: 'S5029 API Rate Limit Exceeded',
    });
    // Any V-code is a validation refusal, listed or not.
    expect(verdict({ TransactionID: null, Errors: 'V6999' })).toMatchObject({
      kind: 'declined',
      code: 'V6999',
    });
    // An S-code billhook does not know, without TransactionStatus false: not a refusal (PRODUCT.md §11).
    expect(verdict({ TransactionID: 9, TransactionStatus: null, Errors: 'S5777' })).toEqual({
      kind: 'open',
      reason: 'codes billhook does not know: S5777 unknown eWAY code',
      transactionId: '9',
    });
    // With eWAY's explicit failure flag it is a decline all the same.
    expect(verdict({ TransactionID: 9, TransactionStatus: false, Errors: 'S5777' }).kind).toBe('declined');
  });

  it('falls back to the bank code, then to "declined", and names unknown and fraud codes', () => {
    expect(
      verdict({ TransactionID: 7, TransactionStatus: false, ResponseCode: '05', ResponseMessage: '' }),
    ).toEqual({
      kind: 'declined',
      code: '05',
      message: 'declined by eWAY (bank response code 05)',
      transactionId: '7',
    });
    expect(verdict({ TransactionID: 7, TransactionStatus: false })).toMatchObject({ code: 'declined' });
    expect(describeCodes(['D4405', 'F9023', 'X0001'])).toBe(
      'D4405 Do Not Honour; F9023 declined by a fraud rule (Beagle); X0001 unknown eWAY code',
    );
    expect(splitCodes(' D4405, F9023 ,,')).toEqual(['D4405', 'F9023']);
    expect(splitCodes(null)).toEqual([]);
  });

  it('maps verdicts to charge, event, refund and void outcomes', () => {
    const approved = { kind: 'approved', transactionId: '1' } as const;
    const authorised = { kind: 'authorised', transactionId: '1' } as const;
    const declined = { kind: 'declined', code: 'D4401', message: 'm', transactionId: '1' } as const;
    const openWithId = { kind: 'open', reason: 'r', transactionId: '1' } as const;
    const openNoId = { kind: 'open', reason: 'r' } as const;
    expect(chargeOutcomeOf(approved)).toEqual({ status: 'succeeded', gatewayTransactionId: '1' });
    expect(chargeOutcomeOf(authorised)).toEqual({ status: 'pending', gatewayTransactionId: '1' });
    expect(chargeOutcomeOf(declined)).toEqual({
      status: 'declined',
      code: 'D4401',
      message: 'm',
      gatewayTransactionId: '1',
    });
    expect(chargeOutcomeOf(openWithId)).toEqual({ status: 'unknown', message: 'eWAY transaction 1: r' });
    expect(chargeOutcomeOf(openNoId)).toEqual({ status: 'unknown', message: 'eWAY: r' });
    expect([approved, authorised, declined, openWithId].map(chargeEventTypeOf)).toEqual([
      'charge.succeeded',
      'charge.pending',
      'charge.failed',
      'charge.pending',
    ]);
    expect(refundOutcomeOf(approved)).toEqual({ status: 'succeeded', gatewayRefundId: '1' });
    expect(refundOutcomeOf(openNoId)).toEqual({ status: 'unknown', message: 'eWAY: r' });
    expect(refundOutcomeOf(openWithId)).toEqual({ status: 'unknown', message: 'eWAY transaction 1: r' });
    expect(refundOutcomeOf(authorised).status).toBe('unknown');
    expect(voidOutcomeOf(approved)).toEqual({ status: 'succeeded' });
    expect(voidOutcomeOf(declined)).toEqual({ status: 'declined', code: 'D4401', message: 'm' });
    expect(voidOutcomeOf(openNoId).status).toBe('unknown');
  });

  it('combines several matches of one reference: one approval wins, then anything open, then the last decline', () => {
    const charge = { amount: 100n, currency: 'AUD' };
    const declined = {
      verdict: { kind: 'declined', code: 'D4405', message: 'm' },
      outcome: { status: 'declined', code: 'D4405', message: 'm' },
    } as const;
    const succeeded = {
      verdict: { kind: 'approved', transactionId: '2' },
      outcome: { status: 'succeeded', gatewayTransactionId: '2' },
    } as const;
    const open = {
      verdict: { kind: 'open', reason: 'r', transactionId: '3' },
      outcome: { status: 'unknown', message: 'eWAY transaction 3: r' },
    } as const;
    const partial = {
      verdict: { kind: 'approved', transactionId: '4' },
      outcome: { status: 'unknown', message: 'partial', reported: { amount: 50n, currency: 'AUD' } },
    } as const;
    expect(combineOutcomes(charge, [])).toEqual({ status: 'not_found' });
    expect(combineOutcomes(charge, [declined, succeeded, open])).toBe(succeeded.outcome);
    expect(combineOutcomes(charge, [declined, open, partial])).toBe(partial.outcome);
    expect(combineOutcomes(charge, [declined, open])).toBe(open.outcome);
    const otherDecline = { ...declined, outcome: { ...declined.outcome, code: 'D4451' } };
    expect(combineOutcomes(charge, [declined, otherDecline])).toMatchObject({ code: 'D4451' });
  });

  it('leaves more than one approval or authorisation unknown, reporting what they moved in all', () => {
    const charge = { amount: 100n, currency: 'aud' };
    const approved = (transactionId: string, reported?: { amount: bigint | null; currency: string }) => ({
      verdict: { kind: 'approved', transactionId } as const,
      outcome: reported
        ? ({ status: 'unknown', message: 'other', reported } as const)
        : ({ status: 'succeeded', gatewayTransactionId: transactionId } as const),
    });
    const authorised = {
      verdict: { kind: 'authorised', transactionId: '9' },
      outcome: { status: 'pending', gatewayTransactionId: '9' },
    } as const;
    expect(combineOutcomes(charge, [approved('1'), authorised])).toMatchObject({
      status: 'unknown',
      reported: { amount: 200n, currency: 'AUD' },
    });
    expect(
      combineOutcomes(charge, [approved('1', { amount: 50n, currency: 'AUD' }), approved('2')]),
    ).toMatchObject({ status: 'unknown', reported: { amount: 150n, currency: 'AUD' } });
    // Another currency, or an amount eWAY wrote unreadably, cannot be summed: amount null.
    expect(
      combineOutcomes(charge, [approved('1'), approved('2', { amount: 100n, currency: 'NZD' })]),
    ).toMatchObject({ status: 'unknown', reported: { amount: null, currency: 'NZD' } });
    expect(
      combineOutcomes(charge, [approved('1'), approved('2', { amount: null, currency: 'AUD' })]),
    ).toMatchObject({ status: 'unknown', reported: { amount: null, currency: 'AUD' } });
  });
});
