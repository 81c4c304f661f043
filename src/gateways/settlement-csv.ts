import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AppError, ValidationError } from '../errors.ts';
import { MAX_MINOR_UNITS } from '../money/amount.ts';
import { exponentOf, isCurrency } from '../money/currency.ts';
import { assertRepresentable, type GatewayCurrencyTable } from '../money/gateway-amount.ts';
import { readCsv } from './csv.ts';
import {
  PAYOUT_STATUSES,
  type PayoutReport,
  type PayoutStatus,
  SETTLEMENT_LINE_KINDS,
  type SettlementLine,
  type SettlementLineKind,
  type SettlementReport,
} from './settlement.ts';

/**
 * The kinds a file's `kind` column takes (docs/settlement-csv.md): every settlement line kind but
 * `conversion` and `hold`, which only PayPal's Transaction Search gives (a `T02nn` row naming no
 * payment; a hold or its release).
 */
const FILE_LINE_KINDS = SETTLEMENT_LINE_KINDS.filter((kind) => kind !== 'conversion' && kind !== 'hold');

/**
 * billhook's own settlement report format (docs/settlement-csv.md): a CSV file a finance person fills
 * from any gateway's report, one row per balance line, read into the shapes of settlement.ts for
 * `POST /v1/settlements/import` and `billhook settlement import`.
 *
 * Rows that share a `payout_id` form one payout (`PayoutReport` with those rows as its `lines`); rows
 * without one are lines not yet paid out (`SettlementReport.lines`). Amounts are decimals in the
 * currency's major units (`10.50` USD, `1500` JPY, `1.250` KWD) converted exactly to minor units with
 * the ISO 4217 exponents of src/money/currency.ts: more decimals than the currency has is refused,
 * never rounded. Any problem refuses the whole file (nothing is partly imported).
 */

/** The columns a file must have in its header row. */
export const REQUIRED_COLUMNS = ['kind', 'currency', 'gross', 'occurred_at'] as const;

/** Every column the format knows, in the order docs/settlement-csv.md lists them. */
export const SETTLEMENT_CSV_COLUMNS = [
  'payout_id',
  'payout_status',
  'payout_date',
  'arrival_date',
  'payout_amount',
  'line_id',
  'kind',
  'gateway_transaction_id',
  'gateway_refund_id',
  'gateway_dispute_id',
  'reference',
  'currency',
  'gross',
  'fee',
  'net',
  'occurred_at',
  'available_on',
  'original_currency',
  'original_amount',
  'description',
] as const;
type Column = (typeof SETTLEMENT_CSV_COLUMNS)[number];

/** The columns that describe a row's payout rather than the line itself. */
const PAYOUT_COLUMNS = ['payout_status', 'payout_date', 'arrival_date', 'payout_amount'] as const;

/** The longest id, code, amount or date a cell may hold, and the longest description (characters). */
const MAX_VALUE = 255;
const MAX_DESCRIPTION = 1000;

/** At most this many problems are listed in one refusal (the first ones, in file order). */
const MAX_PROBLEMS = 50;

/** How a gateway's import narrows the format (the SecurePay mapping). */
export interface SettlementCsvOptions {
  /**
   * The gateway's currency rules: a row in a currency the gateway does not take is refused. Only the
   * currency is checked against them: amounts are read in the currency's ISO 4217 exponent, as a
   * settlement amount (a fee, a conversion) may be finer than the gateway's step for a charge.
   */
  currencies?: GatewayCurrencyTable;
}

/** One data row read into its line, with what it says of its payout. */
interface ReadRow {
  row: number;
  /** The line, its `gatewayLineId` the row's `line_id` or derived from the line once all rows are read. */
  line: SettlementLine;
  payout?: {
    id: string;
    status?: PayoutStatus;
    createdAt?: Date;
    arrivalDate?: Date;
    amount?: bigint;
  };
  /** The row's cells as written, quoted in refusals. */
  cells: Partial<Record<Column, string>>;
}

/** Problems found so far, keyed `row N, column C` (or `header, column C`, `file`). */
class Problems {
  readonly fields: Record<string, string> = {};
  #count = 0;

  add(key: string, message: string): void {
    this.#count += 1;
    if (this.#count <= MAX_PROBLEMS && !(key in this.fields)) this.fields[key] = message;
  }

  /** How many problems were found (more than `fields` lists when beyond `MAX_PROBLEMS`). */
  get count(): number {
    return this.#count;
  }

  /** @throws ValidationError listing the problems, when there are any */
  throwIfAny(): void {
    if (this.#count === 0) return;
    const [first] = Object.entries(this.fields);
    const more = this.#count > 1 ? ` (and ${this.#count - 1} more)` : '';
    throw new ValidationError(
      `settlement file refused: ${first?.[0]}: ${first?.[1]}${more}; nothing was imported`,
      this.fields,
    );
  }
}

const at = (row: number, column: string): string => `row ${row}, column ${column}`;

/**
 * A decimal in major units as exact minor units of `currency`: `("10.50", "USD")` → `1050n`,
 * `("-3", "JPY")` → `-3n`, `("1.250", "KWD")` → `1250n`. An optional leading `-`; no `+`, currency
 * symbol, thousands separator or exponent.
 * @returns the amount, or the reason it is refused
 */
function toMinorUnits(text: string, currency: string): bigint | string {
  const match = /^(-?)(\d{1,19})(?:\.(\d{1,19}))?$/.exec(text);
  if (!match) {
    return `${JSON.stringify(text)} is not a decimal amount (digits, an optional leading - and a . before the decimals, e.g. -10.50)`;
  }
  const [, sign = '', whole = '0', fraction = ''] = match;
  const exponent = exponentOf(currency);
  if (fraction.length > exponent) {
    return `${text} has ${fraction.length} decimals but ${currency} has ${exponent}: amounts are never rounded`;
  }
  const magnitude = BigInt(whole + fraction.padEnd(exponent, '0'));
  if (magnitude > MAX_MINOR_UNITS) return `${text} ${currency} is beyond the largest amount billhook books`;
  return sign === '-' ? -magnitude : magnitude;
}

/** ISO 8601 times with a zone, with seconds (and any decimals) or to the minute. */
const TIMES = [z.iso.datetime({ offset: true }), z.iso.datetime({ offset: true, precision: -1 })];
const DAY = z.iso.date();

/**
 * An ISO 8601 time with a zone (`2026-11-03T14:05:00+11:00`, `2026-11-03T03:05Z`) or a date
 * (`2026-11-03`, read as UTC midnight).
 * @returns the time, or the reason it is refused
 */
function toDate(text: string): Date | string {
  if (DAY.safeParse(text).success) return new Date(`${text}T00:00:00Z`);
  if (TIMES.some((time) => time.safeParse(text).success)) return new Date(text);
  return `${JSON.stringify(text)} is not an ISO 8601 date (2026-11-03) or time with a zone (2026-11-03T14:05:00+11:00)`;
}

/**
 * The id of a row without `line_id`: `csv_` and 24 hex digits of a SHA-256 of what the line is (kind,
 * ids, currency, amounts in minor units, when it occurred), so the same line gets the same id in every
 * file it appears in, with or without its payout, and a line is booked once however often it is
 * imported. `available_on` is not part of it: a report may give it only once the line is paid out,
 * and the unpaid line and its payout's line are one line. A repeat of an identical line in one file
 * gets `_2`, `_3`… (a second identical fee on the same day). Earlier versions hashed `available_on`
 * too (`availableOn` given: the former id, counted in a `seen` of its own as they counted it, over
 * every row), so a row whose id changed carries the former one as `formerLineId`: a line recorded
 * under it is this line (settlement/lines.ts `recordSettlementLine`).
 */
function derivedLineId(
  line: Omit<SettlementLine, 'gatewayLineId'>,
  seen: Map<string, number>,
  availableOn?: Date | null,
): string {
  const digest = createHash('sha256')
    .update(
      JSON.stringify([
        line.kind,
        line.gatewayTransactionId ?? '',
        line.gatewayRefundId ?? '',
        line.gatewayDisputeId ?? '',
        line.reference ?? '',
        line.currency,
        String(line.gross),
        String(line.fee),
        String(line.net),
        line.original ? [line.original.currency, String(line.original.amount)] : [],
        line.occurredAt.toISOString(),
        // Where `available_on` once was (the former id's): a line without it keeps the id it had.
        availableOn?.toISOString() ?? '',
      ]),
    )
    .digest('hex')
    .slice(0, 24);
  const count = (seen.get(digest) ?? 0) + 1;
  seen.set(digest, count);
  return count === 1 ? `csv_${digest}` : `csv_${digest}_${count}`;
}

/** Reads the header row into the column each position holds, or records why it cannot be read. */
function readHeader(fields: string[], problems: Problems): (Column | undefined)[] {
  const known = new Set<string>(SETTLEMENT_CSV_COLUMNS);
  const columns = fields.map((name) => name.trim().toLowerCase());
  if (columns.length === 1 && columns[0]?.includes(';')) {
    problems.add(
      'header',
      'the columns are separated by semicolons: save the file as "CSV UTF-8 (comma delimited)"',
    );
    return [];
  }
  columns.forEach((name, index) => {
    if (name === '') return; // a column a spreadsheet added without a name: its values must be blank
    if (!known.has(name)) {
      problems.add(
        `header, column ${index + 1}`,
        `unknown column ${JSON.stringify(name)}; the columns are ${SETTLEMENT_CSV_COLUMNS.join(', ')}`,
      );
    } else if (columns.indexOf(name) !== index) {
      problems.add(`header, column ${name}`, 'appears twice');
    }
  });
  for (const required of REQUIRED_COLUMNS) {
    if (!columns.includes(required)) problems.add(`header, column ${required}`, 'is required and missing');
  }
  return columns.map((name) => (known.has(name) ? (name as Column) : undefined));
}

/**
 * Reads one data row, recording its problems; undefined when it has any. `seen` counts the derived
 * line ids given so far (`derivedLineId`), `formerSeen` the ids earlier versions derived (`lineIds`).
 */
function readRow(
  row: number,
  cells: Partial<Record<Column, string>>,
  options: SettlementCsvOptions,
  problems: Problems,
  seen: Map<string, number>,
  formerSeen: Map<string, number>,
): ReadRow | undefined {
  const before = problems.count;
  const fail = (column: Column, message: string): undefined => {
    problems.add(at(row, column), message);
    return undefined;
  };
  const text = (column: Column): string | undefined => {
    const value = cells[column]?.trim();
    return value === '' ? undefined : value;
  };
  for (const column of SETTLEMENT_CSV_COLUMNS) {
    const limit = column === 'description' ? MAX_DESCRIPTION : MAX_VALUE;
    const length = text(column)?.length ?? 0;
    if (length > limit) fail(column, `is ${length} characters long; at most ${limit}`);
  }
  const required = (column: Column): string | undefined => text(column) ?? fail(column, 'is required');
  const date = (column: Column): Date | undefined => {
    const value = text(column);
    if (value === undefined) return undefined;
    const read = toDate(value);
    return typeof read === 'string' ? fail(column, read) : read;
  };
  const currencyIn = (column: Column): string | undefined => {
    const value = text(column);
    if (value === undefined) return undefined;
    const code = value.toUpperCase();
    if (!isCurrency(code)) return fail(column, `${JSON.stringify(value)} is not an ISO 4217 currency code`);
    if (options.currencies) {
      try {
        assertRepresentable(options.currencies, 0n, code);
      } catch (error) {
        if (error instanceof AppError) return fail(column, error.message);
        throw error;
      }
    }
    return code;
  };
  const amount = (column: Column, currency: string | undefined): bigint | undefined => {
    const value = text(column);
    if (value === undefined || currency === undefined) return undefined;
    const read = toMinorUnits(value, currency);
    return typeof read === 'string' ? fail(column, read) : read;
  };

  const kindText = required('kind')?.toLowerCase();
  const kind =
    kindText === undefined || (FILE_LINE_KINDS as readonly string[]).includes(kindText)
      ? (kindText as SettlementLineKind | undefined)
      : fail('kind', `${JSON.stringify(kindText)} is not one of ${FILE_LINE_KINDS.join(', ')}`);
  const currency = required('currency') === undefined ? undefined : currencyIn('currency');
  const gross = required('gross') === undefined ? undefined : amount('gross', currency);
  const fee = text('fee') === undefined ? 0n : amount('fee', currency);
  const givenNet = amount('net', currency);
  const occurredAt = required('occurred_at') === undefined ? undefined : date('occurred_at');
  const availableOn = date('available_on');
  const originalCurrency = currencyIn('original_currency');
  const originalAmount = amount('original_amount', originalCurrency);
  if ((text('original_currency') === undefined) !== (text('original_amount') === undefined)) {
    fail(
      text('original_currency') === undefined ? 'original_currency' : 'original_amount',
      'original_currency and original_amount go together: give both or neither',
    );
  }

  if (gross !== undefined && fee !== undefined) {
    if (givenNet !== undefined && givenNet !== gross - fee) {
      fail('net', `${text('net')} is not gross - fee (${text('gross')} - ${text('fee') ?? '0'})`);
    }
    if (kind === 'refund' && gross >= 0n) {
      fail('gross', 'a refund is money out of the gateway balance: its gross is negative, e.g. -25.00');
    }
    if (kind === 'fee' && gross > 0n) {
      fail('gross', 'a fee row takes money out of the balance: its gross is 0 or negative');
    }
  }

  const payoutId = text('payout_id');
  let payout: ReadRow['payout'];
  if (payoutId === undefined) {
    for (const column of PAYOUT_COLUMNS) {
      if (text(column) !== undefined) fail(column, 'is about a payout: give the payout_id too');
    }
  } else {
    const statusText = text('payout_status')?.toLowerCase();
    const status =
      statusText === undefined || (PAYOUT_STATUSES as readonly string[]).includes(statusText)
        ? (statusText as PayoutStatus | undefined)
        : fail('payout_status', `${JSON.stringify(statusText)} is not one of ${PAYOUT_STATUSES.join(', ')}`);
    // Below 0: the gateway took the difference from the bank (a day of more refunds than payments).
    const payoutAmount = amount('payout_amount', currency);
    payout = {
      id: payoutId,
      status,
      createdAt: date('payout_date'),
      arrivalDate: date('arrival_date'),
      amount: payoutAmount,
    };
  }

  if (problems.count > before || !kind || !currency || gross === undefined || fee === undefined)
    return undefined;
  if (!occurredAt) return undefined;
  const line: Omit<SettlementLine, 'gatewayLineId'> = {
    kind,
    ...optional('gatewayTransactionId', text('gateway_transaction_id')),
    ...optional('gatewayRefundId', text('gateway_refund_id')),
    ...optional('gatewayDisputeId', text('gateway_dispute_id')),
    ...optional('reference', text('reference')),
    currency,
    gross,
    fee,
    net: gross - fee,
    ...(originalCurrency !== undefined && originalAmount !== undefined
      ? { original: { currency: originalCurrency, amount: originalAmount } }
      : {}),
    occurredAt,
    ...optional('availableOn', availableOn),
    ...optional('description', text('description')),
  };
  return {
    row,
    line: { ...lineIds(line, text('line_id'), seen, formerSeen), ...line },
    payout,
    cells,
  };
}

/**
 * The ids of a row's line: its `line_id` (`explicit`), else the one derived from its content
 * (`derivedLineId`, counted in `seen`) and, when earlier versions derived another, that one as
 * `formerLineId` (counted in `formerSeen` over every derived row, as they counted them).
 */
function lineIds(
  line: Omit<SettlementLine, 'gatewayLineId'>,
  explicit: string | undefined,
  seen: Map<string, number>,
  formerSeen: Map<string, number>,
): { gatewayLineId: string; formerLineId?: string } {
  if (explicit !== undefined) return { gatewayLineId: explicit };
  const derived = derivedLineId(line, seen);
  const former = derivedLineId(line, formerSeen, line.availableOn ?? null);
  return { gatewayLineId: derived, ...optional('formerLineId', former !== derived ? former : undefined) };
}

/** `{ [key]: value }` when `value` is set, `{}` otherwise: a line carries no key it has no value for. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * Groups the rows of each payout into a `PayoutReport`, checking that its rows agree on the payout's
 * currency, status, dates and amount (each may be written on one row or repeated on all).
 */
function groupPayouts(rows: ReadRow[], problems: Problems): PayoutReport[] {
  const groups = new Map<string, ReadRow[]>();
  for (const read of rows) {
    if (!read.payout) continue;
    const members = groups.get(read.payout.id);
    if (members) members.push(read);
    else groups.set(read.payout.id, [read]);
  }
  const payouts: PayoutReport[] = [];
  for (const [id, members] of groups) {
    /** The one value the payout's rows give for `column` (blank rows aside), recording any disagreement. */
    const agreed = <T>(
      column: Column,
      pick: (read: ReadRow) => T | undefined,
      key: (value: T) => unknown,
    ) => {
      let first: { value: T; read: ReadRow } | undefined;
      for (const read of members) {
        const mine = pick(read);
        if (mine === undefined) continue;
        if (!first) first = { value: mine, read };
        else if (key(first.value) !== key(mine)) {
          problems.add(
            at(read.row, column),
            `payout ${id} has ${read.cells[column]?.trim()} here but ${first.read.cells[column]?.trim()} on row ${first.read.row}`,
          );
        }
      }
      return first?.value;
    };
    const itself = <T>(value: T): T => value;
    const time = (value: Date): number => value.getTime();
    const currency = agreed('currency', (read) => read.line.currency, itself);
    const status = agreed('payout_status', (read) => read.payout?.status, itself);
    const createdAt = agreed('payout_date', (read) => read.payout?.createdAt, time);
    const arrivalDate = agreed('arrival_date', (read) => read.payout?.arrivalDate, time);
    const amount = agreed('payout_amount', (read) => read.payout?.amount, itself);
    const first = members[0]!.row;
    if (createdAt === undefined) {
      problems.add(at(first, 'payout_date'), `payout ${id} needs the date it was made on one of its rows`);
    }
    const lines = members.map((read) => read.line);
    const sum = lines.reduce((total, line) => total + line.net, 0n);
    if (amount === undefined && sum < 0n) {
      problems.add(
        at(first, 'payout_id'),
        `the nets of payout ${id} sum to less than 0: give payout_amount as the report states it (below 0 when the gateway took the difference from the bank), so that a sign written wrongly is not read as money taken from the bank`,
      );
    }
    if (currency === undefined || createdAt === undefined) continue;
    payouts.push({
      gatewayPayoutId: id,
      status: status ?? 'paid',
      currency,
      amount: amount ?? sum,
      createdAt,
      arrivalDate: arrivalDate ?? null,
      lines,
    });
  }
  return payouts;
}

/**
 * `bytes` as UTF-8 text.
 * @throws ValidationError (field `file`) for bytes that are not UTF-8 (a Latin-1 or UTF-16 export)
 */
function utf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const why = 'is not UTF-8 text: save it as "CSV UTF-8"';
    throw new ValidationError(`settlement file refused: file: ${why}; nothing was imported`, { file: why });
  }
}

/**
 * Reads a settlement file in billhook's format into the lines not yet paid out and the payouts with
 * their lines (src/gateways/settlement.ts), in file order. The same file always reads to the same
 * values: a row without `line_id` gets an id derived from its content (`csv_…`, see docs).
 *
 * Each line: `net = gross - fee` (a `net` given must agree), amounts in minor units of `currency`,
 * signed from the merchant's side (money into the gateway balance positive; a refund's gross negative,
 * a fee row's gross 0 or negative; a fee is positive when charged). Each payout: its rows' `payout_id`;
 * `status` `payout_status` or `paid` (a report lists payouts made); `createdAt` `payout_date`;
 * `arrivalDate` `arrival_date` or null; `amount` `payout_amount` as given (below 0 when the gateway
 * took money from the bank: refunds beyond the payments it paid out), else the sum of its lines' nets,
 * which must then be 0 or more. A `payout_amount` that differs from that sum is kept as given, for the
 * payout check.
 *
 * @param input the file as text or bytes (UTF-8, with or without a byte order mark)
 * @param options a gateway's narrowing of the format (the currencies it takes)
 * @throws ValidationError (422) when anything in the file is refused: `fields` holds each problem (up
 * to 50) keyed `row N, column C` (N as a spreadsheet numbers rows, the header being row 1),
 * `header, column C` or `file`; nothing of the file is returned
 */
export function parseSettlementCsv(
  input: string | Uint8Array,
  options: SettlementCsvOptions = {},
): SettlementReport {
  const problems = new Problems();
  const [header, ...records] = readCsv(typeof input === 'string' ? input : utf8(input));
  if (!header) problems.add('file', 'is empty: it needs a header row and one row per line');
  else if (records.every((record) => record.fields.every((field) => field.trim() === ''))) {
    problems.add('file', 'has a header row but no lines');
  }
  const columns = header ? readHeader(header.fields, problems) : [];
  problems.throwIfAny();

  const rows: ReadRow[] = [];
  const seen = new Map<string, number>();
  const formerSeen = new Map<string, number>();
  const explicitIds = new Map<string, number>();
  for (const record of records) {
    if (record.fields.every((field) => field.trim() === '')) continue; // a spreadsheet's empty row: `,,,,`
    if (record.fields.length !== columns.length) {
      problems.add(
        `row ${record.row}`,
        `has ${record.fields.length} fields but the header has ${columns.length} columns`,
      );
      continue;
    }
    const cells: Partial<Record<Column, string>> = {};
    columns.forEach((column, index) => {
      const value = record.fields[index] ?? '';
      if (column) cells[column] = value;
      else if (value.trim() !== '') {
        problems.add(
          `row ${record.row}, column ${index + 1}`,
          'has a value but its column has no name in the header',
        );
      }
    });
    const lineId = cells.line_id?.trim();
    if (lineId) {
      const earlier = explicitIds.get(lineId);
      if (earlier !== undefined)
        problems.add(at(record.row, 'line_id'), `${lineId} is also on row ${earlier}`);
      else explicitIds.set(lineId, record.row);
    }
    const read = readRow(record.row, cells, options, problems, seen, formerSeen);
    if (read) rows.push(read);
  }
  const payouts = groupPayouts(rows, problems);
  problems.throwIfAny();
  return { lines: rows.filter((read) => !read.payout).map((read) => read.line), payouts };
}
