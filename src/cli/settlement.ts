import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { Config } from '../config/env.ts';
import { GATEWAYS, type GatewayName } from '../config/gateways.ts';
import type { Db } from '../db/database.ts';
import type { AccountRegistry, GatewayRegistry } from '../gateways/registry.ts';
import { SettlementReportQuery, settlementReportBody } from '../http/api/settlement.ts';
import { parseInput } from '../http/api/validate.ts';
import { exactJsonIntegers } from '../money/amount.ts';
import {
  importSettlementFile,
  SETTLEMENT_FILE_FORMATS,
  type SettlementFileFormat,
} from '../settlement/import.ts';
import { accountName } from '../settlement/lines.ts';
import { lastDays, runSettlement, settlementSources } from '../settlement/sync.ts';
import { type WithDatabase, withFields } from './accounts.ts';
import type { Output } from './program.ts';

/** The gateways a command calls: each gateway's default account, and the gateway accounts' adapters. */
export interface Gateways {
  registry: GatewayRegistry;
  accounts: AccountRegistry;
}

/** Runs `fn` with the configuration, the database (migrated) and the gateways, then closes them. */
export type WithGateways = <T>(fn: (config: Config, db: Db, gateways: Gateways) => Promise<T>) => Promise<T>;

/** `--account`: a `gwa_…` id, or `default` (the gateway's own, from the environment). */
const accountOption = (value: string | undefined): string | null | undefined =>
  value === undefined ? undefined : value === 'default' ? null : value;

/** The report's JSON, as the API answers it: amounts as integers in minor units. */
const json = (value: unknown) => JSON.stringify(value, exactJsonIntegers, 2);

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
      ...(c.conversions === 0n ? [] : [`    conversions         ${c.conversions}`]),
      ...(c.adjustments === 0n ? [] : [`    adjustments         ${c.adjustments}`]),
      `    payouts             ${c.payouts}`,
      ...(c.other === 0n ? [] : [`    other               ${c.other}`]),
      `  clearing closing      ${c.closing}  (still to be paid out)${c.balances ? '' : '  DOES NOT BALANCE'}`,
      `  gateway fees          ${row.gateway_fees.movements}  (closing ${row.gateway_fees.closing})`,
      ...(row.fx.movements === 0n && row.fx.closing === 0n
        ? []
        : [`  fx                    ${row.fx.movements}  (closing ${row.fx.closing})`]),
      `  payouts in transit    ${row.payouts_in_transit.movements}  (closing ${row.payouts_in_transit.closing})`,
      `  bank                  ${row.bank.movements}  (closing ${row.bank.closing})`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `billhook settlement …` (PRODUCT.md §13): the settlement commands. `report` prints the settlement
 * report of `GET /v1/reports/settlement` (the same query, checked by the same schema; `--json` prints
 * the API's JSON); `sync` runs the daily `settlement.sync` now (every gateway account that can be
 * asked, or one); `import` records a settlement report file as `POST /v1/settlements/import` does.
 * Every settlement subcommand is registered here, on the group this returns.
 */
export function settlementCommands(
  out: Output,
  withDatabase: WithDatabase,
  withGateways: WithGateways,
): Command {
  const settlement = new Command('settlement').description(
    'settlement, fees and payouts: what the gateways paid out against the books',
  );
  settlement
    .command('report')
    .description(
      "per gateway account and currency over [from, to): its clearing account's movements by source (charges, refunds, disputes, fees, conversions, adjustments, payouts) from its opening to its closing balance (still to be paid out), gateway fees, FX, payouts in transit, bank",
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
  settlement
    .command('sync')
    .description(
      'ask the gateways for their settlement data now (fees, payouts, settled batches) and record it, then raise the settlement exceptions: what the daily settlement.sync does',
    )
    .option('--days <days>', 'how many days back (default SETTLEMENT_SYNC_DAYS)')
    .addOption(new Option('--gateway <gateway>', 'only this gateway').choices(GATEWAYS))
    .option('--account <account>', "only this gateway account: a gwa_… id, or default (the gateway's own)")
    .action(async (options: { days?: string; gateway?: GatewayName; account?: string }) => {
      if (options.days !== undefined && !/^[1-9]\d{0,2}$/.test(options.days)) {
        throw new Error('--days must be a whole number of days from 1 to 999');
      }
      const failed = await withGateways(async (config, db, gateways) => {
        const days = options.days === undefined ? config.SETTLEMENT_SYNC_DAYS : Number(options.days);
        const sources = await settlementSources(db, gateways.registry, gateways.accounts, {
          gateway: options.gateway,
          gatewayAccount: accountOption(options.account),
        });
        if (sources.length === 0) {
          out.write('no gateway account can be asked for settlement data (check its credentials)\n');
          return 0;
        }
        const run = await runSettlement(db, 'cli', sources, lastDays(days), config);
        for (const result of run.results) {
          out.write(
            'error' in result
              ? `${accountName(result.account)}: failed: ${result.error.message}\n`
              : `${accountName(result.account)}: ${result.totals.payouts} payout(s) and ${result.totals.lines} line(s) recorded, ${result.totals.unmatched} line(s) unmatched\n`,
          );
        }
        out.write(
          `${run.notPaidOut} charge(s) newly past their payout delay, ${run.unexpectedFees} unexpected fee(s)\n`,
        );
        return run.results.filter((result) => 'error' in result).length;
      });
      if (failed > 0) throw new Error(`${failed} gateway account(s) failed to sync`);
    });

  settlement
    .command('import <file>')
    .description(
      'record a settlement report file (CSV) for a gateway account; importing the same file again changes nothing',
    )
    .addOption(
      new Option('--gateway <gateway>', 'whose settlement it is').choices(GATEWAYS).makeOptionMandatory(),
    )
    .option('--account <account>', "a gwa_… id of that gateway; default: the gateway's own account")
    .addOption(
      new Option('--format <format>', 'billhook (docs/settlement-csv.md) or securepay')
        .choices(SETTLEMENT_FILE_FORMATS)
        .default('billhook'),
    )
    .action(
      async (
        file: string,
        options: { gateway: GatewayName; account?: string; format: SettlementFileFormat },
      ) => {
        const bytes = readFileSync(file);
        const imported = await withDatabase((_config, db) =>
          importSettlementFile(
            db,
            'cli',
            { gateway: options.gateway, gatewayAccount: accountOption(options.account) ?? null },
            options.format,
            bytes,
          ),
        );
        out.write(
          `${file} (sha256 ${imported.sha256}): ${imported.read.payouts} payout(s) and ${imported.read.lines} line(s) read; ${imported.recorded.payouts} payout(s) and ${imported.recorded.lines} line(s) new; ${imported.recorded.unmatched} line(s) unmatched\n`,
        );
      },
    );
  return settlement;
}
