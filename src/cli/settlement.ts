import { Command } from 'commander';
import { SettlementReportQuery, settlementReportBody } from '../http/api/settlement.ts';
import { parseInput } from '../http/api/validate.ts';
import { type WithDatabase, withFields } from './accounts.ts';
import type { Output } from './program.ts';

/** The report's JSON, as the API answers it: amounts as integers in minor units. */
const json = (value: unknown) =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? Number(v) : v), 2);

/** `billhook settlement report`'s answer as a table, one block per gateway account and currency. */
function reportText(body: Awaited<ReturnType<typeof settlementReportBody>>): string {
  const lines = [`settlement report ${body.from.toISOString()} → ${body.to.toISOString()} (minor units)`];
  if (body.data.length === 0) lines.push('no gateway account has booked anything');
  for (const row of body.data) {
    const c = row.clearing;
    lines.push(
      '',
      `${row.gateway} ${row.gateway_account ?? 'default'} ${row.currency}`,
      `  clearing opening      ${c.opening}`,
      `    charges             ${c.charges}`,
      `    refunds             ${c.refunds}`,
      `    disputes            ${c.disputes}`,
      `    fees                ${c.fees}`,
      `    payouts             ${c.payouts}`,
      ...(c.other === 0n ? [] : [`    other               ${c.other}`]),
      `  clearing closing      ${c.closing}  (still to be paid out)${c.balances ? '' : '  DOES NOT BALANCE'}`,
      `  gateway fees          ${row.gateway_fees.movements}  (closing ${row.gateway_fees.closing})`,
      `  payouts in transit    ${row.payouts_in_transit.movements}  (closing ${row.payouts_in_transit.closing})`,
      `  bank                  ${row.bank.movements}  (closing ${row.bank.closing})`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `billhook settlement …` (PRODUCT.md §13): the settlement commands. `report` prints the settlement
 * report of `GET /v1/reports/settlement` (the same query, checked by the same schema; `--json` prints
 * the API's JSON). Every settlement subcommand is registered here, on the group this returns.
 */
export function settlementCommands(out: Output, withDatabase: WithDatabase): Command {
  const settlement = new Command('settlement').description(
    'settlement, fees and payouts: what the gateways paid out against the books',
  );
  settlement
    .command('report')
    .description(
      "per gateway account and currency over [from, to): its clearing account's movements by source (charges, refunds, disputes, fees, payouts) from its opening to its closing balance (still to be paid out), gateway fees, payouts in transit, bank",
    )
    .requiredOption(
      '--from <time>',
      'start, inclusive: a date (2026-11-01, midnight UTC) or an ISO 8601 time',
    )
    .requiredOption('--to <time>', 'end, exclusive: a date or an ISO 8601 time')
    .option('--gateway <gateway>', 'only this gateway: stripe, paypal, authorizenet, eway or securepay')
    .option('--account <account>', "only this gateway account: a gwa_… id, or default (the gateway's own)")
    .option('--currency <code>', 'only this ISO 4217 currency')
    .option('--json', "print the API's JSON")
    .action(
      async (options: {
        from: string;
        to: string;
        gateway?: string;
        account?: string;
        currency?: string;
        json?: boolean;
      }) => {
        const query = withFields('report query', () =>
          parseInput(SettlementReportQuery, {
            from: options.from,
            to: options.to,
            gateway: options.gateway,
            gateway_account: options.account,
            currency: options.currency,
          }),
        );
        const body = await withDatabase((_config, db) => settlementReportBody(db, query));
        out.write(options.json ? `${json(body)}\n` : reportText(body));
      },
    );
  return settlement;
}
