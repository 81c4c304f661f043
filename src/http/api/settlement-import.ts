import express from 'express';
import { z } from 'zod';
import { getGatewayAccount } from '../../accounts/accounts.ts';
import { ValidationError } from '../../errors.ts';
import { importSettlementFile, SETTLEMENT_FILE_FORMATS } from '../../settlement/import.ts';
import { actorOf } from '../actor.ts';
import { sendError } from '../errors.ts';
import { SettlementImport } from './responses.ts';
import { type ApiRoute, route } from './route.ts';
import { Gateway, Id } from './schemas.ts';

/** The largest settlement file `POST /v1/settlements/import` takes: a month of a busy account's lines. */
export const SETTLEMENT_FILE_LIMIT = '20mb';

/** The query of `POST /v1/settlements/import`: whose settlement the file is, and its format. */
export const SettlementImportQuery = z
  .object({
    gateway: Gateway,
    /** A gateway account (`gwa_…`) of that gateway; absent: the gateway's default account. */
    gateway_account: Id('gwa').optional(),
    format: z.enum(SETTLEMENT_FILE_FORMATS).default('billhook'),
  })
  .strict();

/**
 * Reads a CSV body (`Content-Type: text/csv`) of `POST /v1/settlements/import` as text before the
 * JSON parser, which then leaves it alone.
 */
export const settlementFileBody = express.text({ type: 'text/csv', limit: SETTLEMENT_FILE_LIMIT });

/**
 * `POST /v1/settlements/import?gateway=…[&gateway_account=gwa_…][&format=billhook|securepay]` with
 * the settlement report as a `text/csv` body (PRODUCT.md §13): 200 with the file's SHA-256, what it
 * holds (`read`) and what was new (`recorded`: lines, payouts; `unmatched` lines of the account).
 * Importing the same file again answers the same `read` and nothing `recorded`. A refused file
 * (422, each problem keyed by row and column) changes nothing; a body that is not `text/csv` is 415.
 */
export const settlementImportRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/settlements/import',
    operationId: 'importSettlementReport',
    tag: 'Settlement',
    scope: 'write',
    summary:
      'Import a settlement report (text/csv body: billhook format, docs/settlement-csv.md, or securepay); the same file twice changes nothing',
    query: SettlementImportQuery,
    rawBody: { mediaType: 'text/csv', description: 'The settlement report (docs/settlement-csv.md)' },
    responses: { 200: SettlementImport },
    handler: async (req, res, { deps: { db }, query }) => {
      if (!req.is('text/csv') || typeof req.body !== 'string') {
        sendError(
          res,
          415,
          'invalid_request',
          'unsupported_media_type',
          'send the settlement report as the body, with Content-Type: text/csv',
        );
        return;
      }
      if (query.gateway_account) {
        const account = await getGatewayAccount(db, query.gateway_account);
        if (account.gateway !== query.gateway) {
          throw new ValidationError('the gateway account is not of this gateway', {
            gateway_account: `${account.id} is a ${account.gateway} account, not ${query.gateway}`,
          });
        }
      }
      const imported = await importSettlementFile(
        db,
        actorOf(req),
        { gateway: query.gateway, gatewayAccount: query.gateway_account ?? null },
        query.format,
        req.body,
      );
      res.json({
        object: 'settlement_import',
        gateway: query.gateway,
        gateway_account: query.gateway_account ?? null,
        format: query.format,
        sha256: imported.sha256,
        read: imported.read,
        recorded: imported.recorded,
      });
    },
  }),
];
