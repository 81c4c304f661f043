import { NotFoundError } from '../../errors.ts';
import { CURRENCY_TABLES } from '../../gateways/currencies.ts';
import { GATEWAYS } from '../../gateways/types.ts';
import { currencyCodes, exponentOf, isCurrency } from '../../money/currency.ts';
import { currencySupport } from '../../money/gateway-amount.ts';
import { CurrencyObject, listOf } from './responses.ts';
import { type ApiRoute, route } from './route.ts';

const NAMES = new Intl.DisplayNames('en', { type: 'currency' });

/**
 * A currency as `/v1/currencies` shows it: its ISO 4217 code and minor-unit exponent
 * (money/currency.ts, from ISO 4217 list one), its English name and symbol from the runtime's CLDR
 * data (`Intl.DisplayNames`, `Intl.NumberFormat`; the symbol is the narrow one, `$` for USD and AUD
 * alike), and, per gateway, whether billhook sends it there and how (`currencySupport` of the
 * gateway's currency table in src/gateways/<gateway>/currencies.ts, whose `source` is the documentation
 * page of those facts): the exponent of the unit the gateway counts in, the step of an amount in minor
 * units, the rule, or the refusal.
 */
function currencyJson(code: string) {
  const symbol =
    new Intl.NumberFormat('en', { style: 'currency', currency: code, currencyDisplay: 'narrowSymbol' })
      .formatToParts(0)
      .find((part) => part.type === 'currency')?.value ?? code;
  return {
    id: code,
    object: 'currency',
    code,
    exponent: exponentOf(code),
    name: NAMES.of(code) ?? code,
    symbol,
    gateways: GATEWAYS.map((gateway) => {
      const support = currencySupport(CURRENCY_TABLES[gateway], code);
      return {
        gateway,
        accepted: support.accepted,
        exponent: support.exponent,
        step: support.step,
        rule: support.rule,
        refusal: support.refusal,
        source: CURRENCY_TABLES[gateway].source,
      };
    }),
  };
}

/** Every currency's answer, made once. */
const ALL = currencyCodes().map(currencyJson);

/**
 * `GET /v1/currencies`: every ISO 4217 currency billhook accepts (about 300, one page: `has_more`
 * false; no query parameters), each as `currencyJson`; `GET /v1/currencies/{code}` one of them (lower
 * case accepted; 404 `currency_not_found` for a code that is not ISO 4217).
 */
export const currencyRoutes: ApiRoute[] = [
  route({
    method: 'get',
    path: '/v1/currencies',
    operationId: 'listCurrencies',
    tag: 'Currencies',
    scope: 'read',
    summary:
      "Every ISO 4217 currency with its exponent, name, symbol and each gateway's support (one page, all of them)",
    responses: { 200: listOf(CurrencyObject, 'CurrencyList') },
    handler: (_req, res) => {
      res.json({ object: 'list', data: ALL, has_more: false });
    },
  }),
  route({
    method: 'get',
    path: '/v1/currencies/{code}',
    operationId: 'getCurrency',
    tag: 'Currencies',
    scope: 'read',
    summary: "One ISO 4217 currency with its exponent and each gateway's support",
    responses: { 200: CurrencyObject },
    handler: (req, res) => {
      const code = req.params.code.toUpperCase();
      if (!isCurrency(code)) throw new NotFoundError('currency', req.params.code);
      res.json(currencyJson(code));
    },
  }),
];
