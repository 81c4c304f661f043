import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import { PayoutReportSchema, SettlementLineSchema } from '../../src/gateways/settlement.ts';
import { parseSettlementCsv } from '../../src/gateways/settlement-csv.ts';

const EXAMPLE = readFileSync(path.resolve(import.meta.dirname, '../fixtures/settlement/billhook-format.csv'));

const HEADER = 'line_id,kind,gateway_transaction_id,currency,gross,fee,net,occurred_at';

/** A file of `header` and `rows`, CRLF-separated as RFC 4180 writes them. */
const file = (header: string, ...rows: string[]): string => `${[header, ...rows].join('\r\n')}\r\n`;

/** The `fields` of the ValidationError `parse` throws (the whole file refused). */
function refusal(parse: () => unknown): Record<string, string> {
  try {
    parse();
  } catch (error) {
    if (error instanceof ValidationError) return error.fields ?? {};
    throw error;
  }
  throw new Error('expected the file to be refused');
}

describe('billhook settlement CSV', () => {
  it('reads the example file (docs/settlement-csv.md) to exact minor units, payouts grouped by payout_id', () => {
    const report = parseSettlementCsv(EXAMPLE);
    expect(
      report.payouts.map((payout) => ({ ...payout, lines: payout.lines?.map((line) => line.gatewayLineId) })),
    ).toEqual([
      {
        gatewayPayoutId: 'SP-20261103',
        status: 'paid',
        currency: 'AUD',
        amount: 12188n, // 98.25 + 48.63 - 25.00: the sum of its nets, no payout_amount given
        createdAt: new Date('2026-11-03T00:00:00Z'),
        arrivalDate: new Date('2026-11-04T00:00:00Z'),
        lines: [expect.stringMatching(/^csv_[0-9a-f]{24}$/), expect.any(String), expect.any(String)],
      },
      {
        gatewayPayoutId: 'SP-20261104',
        status: 'paid',
        currency: 'AUD',
        amount: 16088n,
        createdAt: new Date('2026-11-04T00:00:00Z'),
        arrivalDate: new Date('2026-11-05T00:00:00Z'),
        lines: ['SP-LINE-000231', 'SP-LINE-000232'],
      },
    ]);
    const [first, second] = report.payouts;
    expect(first?.lines?.[1]).toEqual({
      gatewayLineId: expect.stringMatching(/^csv_/),
      kind: 'charge',
      gatewayTransactionId: 'txn_9Xr2Lk7PqW3nZc8vB1mT6yHd',
      reference: 'txn_9Xr2Lk7PqW3nZc8vB1mT6yHd',
      currency: 'AUD',
      gross: 4950n,
      fee: 87n,
      net: 4863n,
      occurredAt: new Date('2026-11-02T03:40:00Z'),
      description: 'Order 1042, two items',
    });
    expect(first?.lines?.[2]).toMatchObject({
      kind: 'refund',
      gatewayTransactionId: 'txn_3mQ8c1WcKx2PZv9aTq4Lb7sN',
      gatewayRefundId: 're_5Hq2Wn8Ls3Kd7Pz1Vc4Xm9Tb',
      gross: -2500n,
      fee: 0n,
      net: -2500n,
    });
    expect(second?.lines?.[1]).toEqual({
      gatewayLineId: 'SP-LINE-000232',
      kind: 'fee',
      currency: 'AUD',
      gross: -123n,
      fee: 0n,
      net: -123n,
      occurredAt: new Date('2026-11-03T12:59:00Z'),
      description: 'Monthly "gateway" fee, November',
    });
    expect(report.lines).toEqual([
      {
        gatewayLineId: expect.stringMatching(/^csv_/),
        kind: 'charge',
        gatewayTransactionId: 'txn_2Bv6Nc1Xz8Lk4Qw7Pm3Tr9Yd',
        currency: 'AUD',
        gross: 8000n,
        fee: 140n,
        net: 7860n,
        occurredAt: new Date('2026-11-04T00:20:00Z'),
        description: 'Not yet paid out',
      },
    ]);
    for (const payout of report.payouts) expect(PayoutReportSchema.safeParse(payout).success).toBe(true);
    for (const line of report.lines) expect(SettlementLineSchema.safeParse(line).success).toBe(true);
  });

  it('has the example file in docs/settlement-csv.md as it is in the fixture', () => {
    const docs = readFileSync(path.resolve(import.meta.dirname, '../../docs/settlement-csv.md'), 'utf8');
    const shown = /```csv\n([\s\S]*?)```/.exec(docs)?.[1];
    expect(shown).toBe(EXAMPLE.toString('utf8').replaceAll('\r\n', '\n'));
  });

  it('skips rows whose every value is blank, as spreadsheets export them', () => {
    const text = file('kind,currency,gross,occurred_at', ',,,', 'charge,AUD,1,2026-11-03', ' , ,,');
    expect(parseSettlementCsv(text).lines).toHaveLength(1);
    expect(refusal(() => parseSettlementCsv(file('kind,currency,gross,occurred_at', ',,,')))).toEqual({
      file: 'has a header row but no lines',
    });
  });

  it('reads the same file to the same values every time, line ids included', () => {
    const once = parseSettlementCsv(EXAMPLE);
    expect(parseSettlementCsv(EXAMPLE)).toEqual(once);
    expect(parseSettlementCsv(EXAMPLE.toString('utf8'))).toEqual(once);
    const ids = [...once.lines, ...once.payouts.flatMap((payout) => payout.lines ?? [])].map(
      (line) => line.gatewayLineId,
    );
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('gives a line without line_id the same id in a later file, once paid out (available_on said then) and written differently', () => {
    const unpaid = parseSettlementCsv(
      file(
        'kind,gateway_transaction_id,currency,gross,fee,occurred_at',
        'charge,txn_a,AUD,10.5,0.2,2026-11-02T09:15:00+11:00',
      ),
    );
    const paid = parseSettlementCsv(
      file(
        'payout_id,payout_date,kind,gateway_transaction_id,currency,gross,fee,net,occurred_at,available_on',
        'P1,2026-11-03,charge,txn_a,aud,10.50,0.20,10.30,2026-11-01T22:15:00Z,2026-11-03',
      ),
    );
    expect(paid.payouts[0]?.lines?.[0]?.gatewayLineId).toBe(unpaid.lines[0]?.gatewayLineId);
    // The id earlier versions gave this row (before available_on was left out), so that lines
    // already imported keep theirs.
    expect(unpaid.lines[0]?.gatewayLineId).toBe('csv_769d6fa8434e36cdc07bd8f1');
    // The paid row carries the id earlier versions derived for it (available_on in the hash), so a
    // line recorded under it is this line (settlement/lines.ts `recordSettlementLine`); the unpaid
    // row, whose id did not change, carries none.
    expect(paid.payouts[0]?.lines?.[0]?.formerLineId).toBe('csv_ec507f9989fcca5f48938762');
    expect(unpaid.lines[0]).not.toHaveProperty('formerLineId');
  });

  it('tells identical rows apart by their order, the same way each time', () => {
    const text = file(
      'kind,currency,gross,occurred_at,description',
      'fee,AUD,-1.00,2026-11-03,SMS fee',
      'fee,AUD,-1.00,2026-11-03,SMS fee',
    );
    const [a, b] = parseSettlementCsv(text).lines.map((line) => line.gatewayLineId);
    expect(b).toBe(`${a}_2`);
    expect(parseSettlementCsv(text).lines.map((line) => line.gatewayLineId)).toEqual([a, b]);
  });

  it.each([
    ['JPY', '1500', '30', 1500n, 30n],
    ['JPY', '-200', '0', -200n, 0n],
    ['KWD', '12.345', '0.105', 12345n, 105n],
    ['BHD', '0.005', '0.001', 5n, 1n],
    ['USD', '10.5', '0.3', 1050n, 30n],
    ['AUD', '1234567.89', '0', 123456789n, 0n],
  ])(
    'reads %s %s (fee %s) exactly with its ISO 4217 exponent',
    (currency, gross, fee, grossMinor, feeMinor) => {
      const kind = grossMinor < 0n ? 'refund' : 'charge';
      const [line] = parseSettlementCsv(
        file('kind,currency,gross,fee,occurred_at', `${kind},${currency},${gross},${fee},2026-11-03`),
      ).lines;
      expect(line).toMatchObject({ currency, gross: grossMinor, fee: feeMinor, net: grossMinor - feeMinor });
    },
  );

  it.each([
    ['JPY', '1500.00', '"1500.00" has 2 decimals but JPY has 0: amounts are never rounded'],
    ['KWD', '1.2345', '"1.2345" has 4 decimals but KWD has 3: amounts are never rounded'],
    ['BHD', '0.0005', '"0.0005" has 4 decimals but BHD has 3: amounts are never rounded'],
    ['USD', '10.505', '"10.505" has 3 decimals but USD has 2: amounts are never rounded'],
  ])('refuses %s %s rather than round it', (currency, gross, message) => {
    expect(
      refusal(() =>
        parseSettlementCsv(file('kind,currency,gross,occurred_at', `charge,${currency},${gross},2026-11-03`)),
      ),
    ).toEqual({ 'row 2, column gross': message.replaceAll('"', '') });
  });

  it.each(['1,234.56', '$10.00', '+10.00', '1e3', '.50', '10.', '10 000'])(
    'refuses the amount %s',
    (gross) => {
      const fields = refusal(() =>
        parseSettlementCsv(file('kind,currency,gross,occurred_at', `charge,USD,"${gross}",2026-11-03`)),
      );
      expect(fields['row 2, column gross']).toMatch(/is not a decimal amount/);
    },
  );

  it('refuses each bad row naming its row and column, and returns nothing of the file', () => {
    const text = file(
      HEADER,
      'L1,charge,txn_a,AUD,10.00,0.20,9.80,2026-11-03T10:00:00Z',
      'L2,chargeback,txn_b,AUD,10.00,0.20,9.80,2026-11-03T10:00:00Z',
      'L3,charge,txn_c,AUX,10.00,0.20,9.80,2026-11-03T10:00:00Z',
      'L4,charge,txn_d,AUD,10.001,0.20,9.80,2026-11-03T10:00:00Z',
      'L5,charge,txn_e,AUD,10.00,0.20,9.90,2026-11-03T10:00:00Z',
      'L6,refund,txn_f,AUD,25.00,0,25.00,2026-11-03T10:00:00Z',
      'L7,charge,txn_g,AUD,10.00,0.20,9.80,2026-11-03 10:00',
      'L1,charge,txn_h,AUD,10.00,0.20,9.80,2026-11-03T10:00:00Z',
      'L9,charge,,AUD,,0.20,,2026-11-03T10:00:00Z',
      'L10,charge,txn_j,AUD,10.00',
    );
    expect(refusal(() => parseSettlementCsv(text))).toEqual({
      'row 3, column kind':
        '"chargeback" is not one of charge, refund, dispute, fee, adjustment, payout_return',
      'row 4, column currency': '"AUX" is not an ISO 4217 currency code',
      'row 5, column gross': '10.001 has 3 decimals but AUD has 2: amounts are never rounded',
      'row 6, column net': '9.90 is not gross - fee (10.00 - 0.20)',
      'row 7, column gross':
        'a refund is money out of the gateway balance: its gross is negative, e.g. -25.00',
      'row 8, column occurred_at':
        '"2026-11-03 10:00" is not an ISO 8601 date (2026-11-03) or time with a zone (2026-11-03T14:05:00+11:00)',
      'row 9, column line_id': 'L1 is also on row 2',
      'row 10, column gross': 'is required',
      'row 11': 'has 5 fields but the header has 8 columns',
    });
  });

  it('refuses an id beyond 255 characters and a description beyond 1000', () => {
    expect(
      refusal(() =>
        parseSettlementCsv(
          file(
            'line_id,kind,currency,gross,occurred_at,description',
            `${'L'.repeat(256)},charge,AUD,1,2026-11-03,${'d'.repeat(1001)}`,
          ),
        ),
      ),
    ).toEqual({
      'row 2, column line_id': 'is 256 characters long; at most 255',
      'row 2, column description': 'is 1001 characters long; at most 1000',
    });
  });

  it('says how many problems there are and lists the first 50', () => {
    const rows = Array.from({ length: 60 }, () => 'charge,AUD,1.001,2026-11-03');
    try {
      parseSettlementCsv(file('kind,currency,gross,occurred_at', ...rows));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      const refused = error as ValidationError;
      expect(refused.status).toBe(422);
      expect(refused.message).toBe(
        'settlement file refused: row 2, column gross: 1.001 has 3 decimals but AUD has 2: amounts are never rounded (and 59 more); nothing was imported',
      );
      expect(Object.keys(refused.fields ?? {})).toHaveLength(50);
    }
  });

  it('refuses a header without a required column, an unknown column, a column twice', () => {
    expect(
      refusal(() => parseSettlementCsv(file('kind,currency,occurred_at', 'charge,AUD,2026-11-03'))),
    ).toEqual({
      'header, column gross': 'is required and missing',
    });
    expect(
      refusal(() =>
        parseSettlementCsv(file('kind,currency,gross,occurred_at,notes', 'charge,AUD,1,2026-11-03,x')),
      ),
    ).toEqual({
      'header, column 5': expect.stringMatching(/^unknown column "notes"; the columns are payout_id, /),
    });
    expect(
      refusal(() =>
        parseSettlementCsv(file('kind,currency,gross,gross,occurred_at', 'charge,AUD,1,1,2026-11-03')),
      ),
    ).toEqual({ 'header, column gross': 'appears twice' });
  });

  it('takes a column without a name (a trailing comma) while its values are blank', () => {
    expect(
      parseSettlementCsv(file('kind,currency,gross,occurred_at,', 'charge,AUD,1,2026-11-03,')).lines,
    ).toHaveLength(1);
    expect(
      refusal(() =>
        parseSettlementCsv(file('kind,currency,gross,occurred_at,', 'charge,AUD,1,2026-11-03,x')),
      ),
    ).toEqual({
      'row 2, column 5': 'has a value but its column has no name in the header',
    });
  });

  it('reads column names whatever their case and spacing, and codes whatever their case', () => {
    const [line] = parseSettlementCsv(
      file(' Kind ,CURRENCY,Gross,Occurred_At', 'Charge,eur, 5.00 ,2026-11-03'),
    ).lines;
    expect(line).toMatchObject({ kind: 'charge', currency: 'EUR', gross: 500n, fee: 0n, net: 500n });
  });

  it.each([
    ['2026-11-03', '2026-11-03T00:00:00.000Z'],
    ['2026-11-03T14:05+11:00', '2026-11-03T03:05:00.000Z'],
    ['2026-11-03T03:05:09.123456789Z', '2026-11-03T03:05:09.123Z'],
  ])('reads the time %s', (occurredAt, instant) => {
    const [line] = parseSettlementCsv(
      file('kind,currency,gross,occurred_at', `charge,AUD,1,${occurredAt}`),
    ).lines;
    expect(line?.occurredAt.toISOString()).toBe(instant);
  });

  it.each(['2026-02-30', '2026-11-03T14:05:00', '03/11/2026'])('refuses the time %s', (occurredAt) => {
    expect(
      refusal(() =>
        parseSettlementCsv(file('kind,currency,gross,occurred_at', `charge,AUD,1,${occurredAt}`)),
      ),
    ).toEqual({ 'row 2, column occurred_at': expect.stringMatching(/is not an ISO 8601 date/) });
  });

  it('refuses an empty file, a header without rows, semicolons, text that is not UTF-8', () => {
    expect(refusal(() => parseSettlementCsv(''))).toEqual({
      file: 'is empty: it needs a header row and one row per line',
    });
    expect(refusal(() => parseSettlementCsv(file(HEADER)))).toEqual({
      file: 'has a header row but no lines',
    });
    expect(
      refusal(() => parseSettlementCsv(file('kind;currency;gross;occurred_at', 'charge;AUD;1;2026-11-03'))),
    ).toEqual({
      header: 'the columns are separated by semicolons: save the file as "CSV UTF-8 (comma delimited)"',
    });
    const latin1 = Buffer.from(
      file('kind,currency,gross,occurred_at,description', 'charge,EUR,1,2026-11-03,caf\xe9'),
      'latin1',
    );
    expect(refusal(() => parseSettlementCsv(latin1))).toEqual({
      file: 'is not UTF-8 text: save it as "CSV UTF-8"',
    });
  });

  it('keeps a payout_amount that differs from its lines, for the payout check', () => {
    const [payout] = parseSettlementCsv(
      file(
        'payout_id,payout_date,payout_amount,kind,currency,gross,fee,occurred_at',
        'P1,2026-11-04,100.00,charge,AUD,60.00,1.00,2026-11-03',
        'P1,,,charge,AUD,40.00,1.00,2026-11-03',
      ),
    ).payouts;
    expect(payout?.amount).toBe(10000n);
    expect(payout?.lines?.reduce((sum, line) => sum + line.net, 0n)).toBe(9800n);
  });

  it('reads a payout in transit with no arrival date, its fields written once', () => {
    const [payout] = parseSettlementCsv(
      file(
        'payout_id,payout_status,payout_date,kind,currency,gross,occurred_at',
        'P1,,,charge,AUD,60.00,2026-11-03',
        'P1,In_Transit,2026-11-04T02:00:00Z,charge,AUD,40.00,2026-11-03',
      ),
    ).payouts;
    expect(payout).toMatchObject({
      status: 'in_transit',
      createdAt: new Date('2026-11-04T02:00:00Z'),
      arrivalDate: null,
      amount: 10000n,
    });
  });

  it("refuses a payout whose rows disagree, lack its date, or a payout's field on a row without one", () => {
    expect(
      refusal(() =>
        parseSettlementCsv(
          file(
            'payout_id,payout_date,payout_amount,kind,currency,gross,occurred_at',
            'P1,2026-11-04,100.00,charge,AUD,100.00,2026-11-03',
            'P1,2026-11-05,100.00,charge,NZD,0,2026-11-03',
            'P2,,,charge,AUD,1.00,2026-11-03',
            ',,5.00,charge,AUD,1.00,2026-11-03',
          ),
        ),
      ),
    ).toEqual({
      'row 3, column currency': 'payout P1 has NZD here but AUD on row 2',
      'row 3, column payout_date': 'payout P1 has 2026-11-05 here but 2026-11-04 on row 2',
      'row 4, column payout_date': 'payout P2 needs the date it was made on one of its rows',
      'row 5, column payout_amount': 'is about a payout: give the payout_id too',
    });
  });

  it('reads the original currency and amount of a line settled in another currency', () => {
    const [line] = parseSettlementCsv(
      file(
        'kind,currency,gross,fee,original_currency,original_amount,occurred_at,available_on',
        'charge,AUD,152.40,2.67,USD,100.00,2026-11-03T10:00:00Z,2026-11-05',
      ),
    ).lines;
    expect(line).toMatchObject({
      gross: 15240n,
      original: { currency: 'USD', amount: 10000n },
      availableOn: new Date('2026-11-05T00:00:00Z'),
    });
    expect(
      refusal(() =>
        parseSettlementCsv(
          file('kind,currency,gross,original_currency,occurred_at', 'charge,AUD,1,USD,2026-11-03'),
        ),
      ),
    ).toEqual({
      'row 2, column original_amount':
        'original_currency and original_amount go together: give both or neither',
    });
  });
});
