import type { Request, Response } from 'express';
import { z } from 'zod';
import type { AdminSession } from '../../auth/sessions.ts';
import { ValidationError } from '../../errors.ts';
import { abs } from '../../money/amount.ts';
import { exponentOf, isCurrency } from '../../money/currency.ts';
import { type Html, h } from './html.ts';

/** Where the console lives. */
export const ADMIN = '/admin';

/** The console's sections, in the navigation's order. */
const NAV = [
  ['', 'Overview'],
  ['/inbox', 'Inbox'],
  ['/exceptions', 'Exceptions', '?status=open'],
  ['/dead-letters', 'Dead letters'],
  ['/payouts', 'Payouts'],
  ['/settlement', 'Settlement report'],
  ['/accounts', 'Gateway accounts'],
  ['/queues', 'Queues'],
] as const satisfies readonly (readonly [string, string, string?])[];

/** Seconds between two refreshes of a list page (console.js; never while a form is being filled in). */
export const REFRESH_SECONDS = 30;

const STYLE = `
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1f2933; }
  header { background: #102a43; color: #fff; padding: .6rem 1.5rem; display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
  header a { color: #d9e2ec; text-decoration: none; } header a.here { color: #fff; font-weight: 600; }
  header form { margin-left: auto; }
  main { padding: 1rem 1.5rem 3rem; }
  h1 { font-size: 1.35rem; margin: .5rem 0 1rem; } h2 { font-size: 1.05rem; margin-top: 1.6rem; }
  table { border-collapse: collapse; min-width: 40rem; margin: .5rem 0; }
  th, td { border-bottom: 1px solid #d9e2ec; padding: .3rem .6rem; text-align: left; vertical-align: top; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .bad { color: #b42318; font-weight: 600; } .muted { color: #627d98; }
  .notice { background: #e3f9e5; border: 1px solid #31b237; padding: .5rem .8rem; margin: .5rem 0; }
  .error { background: #ffe3e3; border: 1px solid #e12d39; padding: .5rem .8rem; margin: .5rem 0; }
  form.inline { display: inline; } button { margin-right: .4rem; }
  form.filters { display: flex; gap: .6rem; flex-wrap: wrap; align-items: end; margin-bottom: .6rem; }
  form.filters label { display: flex; flex-direction: column; font-size: 12px; color: #486581; }
  pre { background: #f0f4f8; padding: .6rem; overflow: auto; max-height: 30rem; font-size: 12px; }
  code { font-size: 12px; } footer { color: #627d98; font-size: 12px; margin-top: 2rem; }
`;

/** What a console page shows around its body. */
export interface PageOptions {
  title: string;
  /** The section it belongs to (a NAV path, e.g. `/inbox`). */
  section: string;
  /** Whether console.js reloads it every REFRESH_SECONDS (list pages: yes; forms: no). */
  refresh?: boolean;
  /** HTTP status (default 200). */
  status?: number;
}

/**
 * Sends a console page: navigation, the result of the last action (`?notice=` after a redirect),
 * the body, and when it was generated (UTC). List pages refresh on their own (`data-refresh`).
 */
export function sendPage(req: Request, res: Response, options: PageOptions, body: Html): void {
  const session = res.locals.adminSession as AdminSession;
  const notice = typeof req.query.notice === 'string' ? req.query.notice.slice(0, 300) : undefined;
  const nav = NAV.map(
    ([path, label, query = '']) =>
      h`<a href="${ADMIN}${path}${query}" class="${path === options.section ? 'here' : ''}">${label}</a>`,
  );
  res
    .status(options.status ?? 200)
    .type('html')
    .send(
      h`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>billhook · ${options.title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${STYLE}</style><script src="${ADMIN}/console.js" defer></script></head>
<body data-refresh="${options.refresh ? REFRESH_SECONDS : 0}">
<header><strong>billhook</strong> ${nav}
${postForm(session, `${ADMIN}/logout`, 'Log out')}</header>
<main>
<h1>${options.title}</h1>
${notice ? h`<p class="notice" role="status">${notice}</p>` : ''}
${body}
<footer>Generated at <time id="generated-at" datetime="${new Date()}">${new Date()}</time>${options.refresh ? h` · refreshes every ${REFRESH_SECONDS} s` : ''} · signed in with <code>${session.key.id}</code> (${session.key.name})</footer>
</main></body></html>`.text,
    );
}

/**
 * A POST form carrying the session's CSRF token: `fields` as hidden inputs, then `extra` (visible
 * inputs), then one button.
 */
export function postForm(
  session: AdminSession,
  action: string,
  label: string,
  fields: Record<string, string> = {},
  extra: Html | string = '',
): Html {
  const hidden = Object.entries(fields).map(
    ([name, value]) => h`<input type="hidden" name="${name}" value="${value}">`,
  );
  return h`<form class="inline" method="post" action="${action}"><input type="hidden" name="token" value="${session.formToken}">${hidden}${extra}<button type="submit">${label}</button></form>`;
}

/** A console URL with a query (empty values left out). */
export function link(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value) params.set(name, value);
  const text = params.toString();
  return `${ADMIN}${path}${text ? `?${text}` : ''}`;
}

/**
 * The pager of a keyset-paginated list: *First page* when not on it, *Next page* (`starting_after`
 * the last id shown) when more rows exist.
 */
export function pager(
  path: string,
  query: Record<string, string | undefined>,
  lastId: string | undefined,
  hasMore: boolean,
): Html {
  const first = query.starting_after
    ? h`<a href="${link(path, { ...query, starting_after: undefined })}">First page</a>`
    : '';
  const next =
    hasMore && lastId
      ? h` <a rel="next" href="${link(path, { ...query, starting_after: lastId })}">Next page →</a>`
      : '';
  return h`<p class="pager">${first}${next}</p>`;
}

/** One filter field of a list page: a text input, or a select of `options` (with "any"). */
export interface FilterField {
  name: string;
  label: string;
  options?: readonly string[];
  placeholder?: string;
  type?: 'text' | 'datetime-local';
}

/** The GET form of a list page's filters, showing the values in force. */
export function filterForm(
  path: string,
  fields: readonly FilterField[],
  values: Record<string, string | undefined>,
): Html {
  const inputs = fields.map((field) => {
    const value = values[field.name] ?? '';
    const control = field.options
      ? h`<select name="${field.name}"><option value="">any</option>${field.options.map(
          (o) => h`<option value="${o}"${o === value ? h` selected` : ''}>${o}</option>`,
        )}</select>`
      : h`<input name="${field.name}" value="${value}" type="${field.type ?? 'text'}" placeholder="${field.placeholder ?? ''}">`;
    return h`<label>${field.label}${control}</label>`;
  });
  return h`<form class="filters" method="get" action="${ADMIN}${path}">${inputs}<button type="submit">Filter</button><a href="${ADMIN}${path}">Clear</a></form>`;
}

/** A value as pretty JSON text (bigints as numbers' digits). */
export function prettyJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v), 2) ?? 'null';
}

/** The rows a console list page shows at once. */
export const PAGE_SIZE = 50;

/**
 * A time filter of a console form: `2026-12-06T13:40` (what a `datetime-local` input sends; read as
 * UTC), with seconds, or an ISO 8601 time with a zone.
 */
export const FormTime = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$/,
    'must be a date and time',
  )
  .transform((text, ctx) => {
    const date = new Date(/(Z|[+-]\d{2}:\d{2})$/.test(text) ? text : `${text}Z`);
    if (Number.isNaN(date.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'must be a date and time' });
      return z.NEVER;
    }
    return date;
  });

/**
 * A console page's query or form, parsed with `schema` once empty values are dropped (an empty filter
 * field means "any").
 * @throws ValidationError (400, naming each field) when it does not parse
 */
export function parseForm<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const given = Object.fromEntries(
    Object.entries((input ?? {}) as Record<string, unknown>).filter(([, v]) => v !== '' && v !== undefined),
  );
  const parsed = schema.safeParse(given);
  if (parsed.success) return parsed.data;
  const fields = Object.fromEntries(parsed.error.issues.map((i) => [i.path.join('.') || 'query', i.message]));
  throw new ValidationError(
    Object.entries(fields)
      .map(([field, message]) => `${field}: ${message}`)
      .join('; '),
    fields,
  );
}

/**
 * The values of a parsed filter as the strings of a link's query or a form's hidden fields: dates as
 * ISO 8601 in UTC without the zone (`FormTime` reads them back as UTC), to the second, or to the
 * millisecond when they have one — a filter carried to the next page, or to *Replay all*, selects
 * exactly the rows it selected (10:00:00.500 cut to 10:00:00 would take in 10:00:00.200 as well).
 */
export function queryOf(values: Record<string, unknown>): Record<string, string | undefined> {
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [
      k,
      v instanceof Date
        ? v.toISOString().slice(0, v.getUTCMilliseconds() ? 23 : 19)
        : v === undefined
          ? undefined
          : String(v),
    ]),
  );
}

/** The amount columns of a row the console shows raw (a payment, refund, payout, settlement line). */
const AMOUNT_COLUMNS = ['amount', 'amount_captured', 'gross', 'fee', 'net'] as const;

/**
 * A row's amounts in its `currency`'s exponent, `amount 4.620 KWD · amount_captured 4.000 KWD`
 * (`money`), for a page that also shows the row as stored (minor units); empty when the row has no
 * currency or no amount.
 */
export function amountsOf(row: Record<string, unknown>): string {
  const currency = row.currency;
  if (typeof currency !== 'string') return '';
  return AMOUNT_COLUMNS.flatMap((column) => {
    const value = row[column];
    return typeof value === 'bigint' ||
      typeof value === 'number' ||
      (typeof value === 'string' && /^-?\d+$/.test(value))
      ? [`${column} ${money(value, currency.trim())}`]
      : [];
  }).join(' · ');
}

/** An amount in minor units as its decimal text and currency (`-12.34 USD`), exactly (no float). */
export function money(amount: bigint | number | string, currency: string): string {
  const minor = BigInt(amount);
  const exponent = isCurrency(currency) ? exponentOf(currency) : 2;
  const digits = abs(minor)
    .toString()
    .padStart(exponent + 1, '0');
  const whole = exponent ? `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}` : digits;
  return `${minor < 0n ? '-' : ''}${whole} ${currency}`;
}
