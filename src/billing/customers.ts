import { type Kysely, sql } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import { changedFields } from '../activities/changes.ts';
import { type Db, UNIQUE_VIOLATION } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { CustomerRow, Database, PaymentMethodRow } from '../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import type { GatewayName } from '../gateways/types.ts';
import { balancesOfCodes } from '../ledger/balances.ts';
import { chart } from '../ledger/chart.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { overpaymentsHeld } from './credit-notes.ts';

/** A customer's billing address, in Stripe's field names; `country` is ISO 3166-1 alpha-2, upper case. */
export interface Address {
  line1?: string | null;
  line2?: string | null;
  city?: string | null;
  state?: string | null;
  postalCode?: string | null;
  country?: string | null;
}

/**
 * A customer's billing contact and tax details. `address` replaces the whole address (a part left out
 * becomes null) and `null` clears it; the other fields are set one by one (`null` clears them).
 */
export interface CustomerDetails {
  phone?: string | null;
  address?: Address | null;
  taxId?: string | null;
  taxExempt?: boolean;
  /** BCP 47 language tag, canonical form. */
  locale?: string | null;
  /** Their invoices' number prefix (`ACME` → `ACME-000001`; null: `INV`). */
  invoicePrefix?: string | null;
  /** Net N days of payment terms for their invoices (null: due at finalization). */
  paymentTermsDays?: number | null;
}

/** The customers columns `details` sets (absent fields: none). */
function detailColumns(details: CustomerDetails) {
  const address = details.address === undefined ? undefined : (details.address ?? {});
  return {
    phone: details.phone,
    tax_id: details.taxId,
    tax_exempt: details.taxExempt,
    locale: details.locale,
    invoice_prefix: details.invoicePrefix,
    payment_terms_days: details.paymentTermsDays,
    ...(address
      ? {
          address_line1: address.line1 ?? null,
          address_line2: address.line2 ?? null,
          address_city: address.city ?? null,
          address_state: address.state ?? null,
          address_postal_code: address.postalCode ?? null,
          address_country: address.country ?? null,
        }
      : {}),
  };
}

/** A new customer. `externalId` is the caller's own id for it, unique when given. */
export interface NewCustomer extends CustomerDetails {
  email: string;
  name?: string;
  externalId?: string;
  metadata?: Record<string, string>;
}

/**
 * Creates a customer.
 * @throws ConflictError `external_id_taken` when another customer has the same external id
 */
export async function createCustomer(db: Db, actor: Actor, input: NewCustomer): Promise<CustomerRow> {
  return inUnitOfWork(db, { actor }, (work) => insertCustomer(work, input));
}

/**
 * Inserts a customer inside `work` and logs `customer.created`.
 * @throws ConflictError `external_id_taken` when another customer has the same external id
 */
export async function insertCustomer(work: UnitOfWork, input: NewCustomer): Promise<CustomerRow> {
  const row = await work.trx
    .insertInto('customers')
    .values({
      id: newId('cus'),
      email: input.email,
      name: input.name ?? null,
      external_id: input.externalId ?? null,
      metadata: JSON.stringify(input.metadata ?? {}),
      ...detailColumns(input),
    })
    .onConflict((oc) => oc.column('external_id').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!row)
    throw new ConflictError('external_id_taken', `a customer with external_id ${input.externalId} exists`);
  await recordActivity(work, {
    resourceType: 'customer',
    resourceId: row.id,
    action: 'customer.created',
    customerId: row.id,
    data: { email: row.email, external_id: row.external_id },
  });
  return row;
}

/** @throws NotFoundError when there is no customer `id` */
export async function getCustomer(db: Db, id: string): Promise<CustomerRow> {
  const row = await db.selectFrom('customers').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('customer', id);
  return row;
}

/** A stored payment method: a gateway token, never card data. */
export interface NewPaymentMethod {
  customerId: string;
  gateway: GatewayName;
  /** The gateway's stored-card token (Stripe `pm_…`, PayPal vault id, …). */
  gatewayToken: string;
  gatewayCustomerId?: string;
  isDefault?: boolean;
  /** The gateway account (`gwa_…`) whose credentials charge it; omitted: the gateway's default account. */
  gatewayAccount?: string;
}

/**
 * Stores a payment method for a customer. The first one, or one marked default, becomes the
 * customer's default. It belongs to `gatewayAccount` (its charges, refunds, voids and status checks
 * use that account's credentials) or, without one, to the gateway's default account.
 * @throws NotFoundError when the customer does not exist; ValidationError (field `gateway_account`)
 *   when the account does not exist or is another gateway's; ConflictError `gateway_account_disabled`
 *   when it is disabled
 */
export async function createPaymentMethod(
  db: Db,
  actor: Actor,
  input: NewPaymentMethod,
): Promise<PaymentMethodRow> {
  return inUnitOfWork(db, { actor }, (work) => insertPaymentMethod(work, input));
}

/**
 * Stores a payment method inside `work` (as `createPaymentMethod`) and logs `payment_method.created`.
 * @throws as `createPaymentMethod`
 */
export async function insertPaymentMethod(
  work: UnitOfWork,
  input: NewPaymentMethod,
): Promise<PaymentMethodRow> {
  const customer = await work.trx
    .selectFrom('customers')
    .select('id')
    .where('id', '=', input.customerId)
    .forUpdate()
    .executeTakeFirst();
  if (!customer) throw new NotFoundError('customer', input.customerId);
  if (input.gatewayAccount !== undefined)
    await assertAccountTakesMethods(work.trx, input.gateway, input.gatewayAccount);
  const existingDefault = await work.trx
    .selectFrom('payment_methods')
    .select('id')
    .where('customer_id', '=', input.customerId)
    .where('is_default', '=', true)
    .executeTakeFirst();
  const makeDefault = input.isDefault === true || !existingDefault;
  if (makeDefault && existingDefault) {
    await work.trx
      .updateTable('payment_methods')
      .set({ is_default: false })
      .where('id', '=', existingDefault.id)
      .execute();
  }
  const method = await work.trx
    .insertInto('payment_methods')
    .values({
      id: newId('pm'),
      customer_id: input.customerId,
      gateway: input.gateway,
      gateway_token: input.gatewayToken,
      gateway_customer_id: input.gatewayCustomerId ?? null,
      is_default: makeDefault,
      gateway_account: input.gatewayAccount ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordActivity(work, {
    resourceType: 'payment_method',
    resourceId: method.id,
    action: 'payment_method.created',
    customerId: method.customer_id,
    data: { gateway: method.gateway, gateway_account: method.gateway_account, default: method.is_default },
  });
  return method;
}

/**
 * Refuses a payment method on gateway account `account` unless it exists, is `gateway`'s and is enabled.
 * @throws ValidationError (field `gateway_account`); ConflictError `gateway_account_disabled`
 */
async function assertAccountTakesMethods(
  trx: Kysely<Database>,
  gateway: GatewayName,
  account: string,
): Promise<void> {
  const row = await trx
    .selectFrom('gateway_accounts')
    .select(['gateway', 'disabled_at'])
    .where('id', '=', account)
    .executeTakeFirst();
  if (!row) {
    throw new ValidationError('unknown gateway account', {
      gateway_account: `no gateway account ${account}`,
    });
  }
  if (row.gateway !== gateway) {
    throw new ValidationError('gateway account of another gateway', {
      gateway_account: `${account} is a ${row.gateway} account, not ${gateway}`,
    });
  }
  if (row.disabled_at !== null)
    throw new ConflictError('gateway_account_disabled', `gateway account ${account} is disabled`);
}

/**
 * Customer `customerId`'s payment method `id` when given, otherwise their default; undefined when
 * there is none (detached or not: `paymentMethodFor` refuses a detached one).
 */
export function findPaymentMethod(
  db: Db,
  customerId: string,
  id?: string | null,
): Promise<PaymentMethodRow | undefined> {
  let query = db.selectFrom('payment_methods').selectAll().where('customer_id', '=', customerId);
  query = id ? query.where('id', '=', id) : query.where('is_default', '=', true);
  return query.executeTakeFirst();
}

/**
 * The payment method to charge for a customer: `id` when given (it must belong to the customer),
 * otherwise the customer's default. A detached one is never charged.
 * @throws NotFoundError when there is none; ConflictError `payment_method_detached` when `id` is detached
 */
export async function paymentMethodFor(db: Db, customerId: string, id?: string): Promise<PaymentMethodRow> {
  const row = await findPaymentMethod(db, customerId, id);
  if (!row) throw new NotFoundError('payment_method', id ?? `(default of ${customerId})`);
  if (row.detached_at !== null)
    throw new ConflictError('payment_method_detached', `payment method ${row.id} is detached`);
  return row;
}

/**
 * The stored payment method `id`, as the gateway call needs it.
 * @throws NotFoundError when there is none
 */
export async function getPaymentMethod(db: Kysely<Database>, id: string): Promise<PaymentMethodRow> {
  const row = await db.selectFrom('payment_methods').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('payment_method', id);
  return row;
}

/** A payment method as adapters take it: the gateway's token and customer id. */
export function gatewayPaymentMethod(method: PaymentMethodRow): { token: string; customerId: string | null } {
  return { token: method.gateway_token, customerId: method.gateway_customer_id };
}

/** A customer's balance in one currency from the ledger, minor units: positive = owes, negative = credit. */
export interface CustomerBalance {
  currency: string;
  balance: bigint;
}

/** A customer's credit in one currency (billing/customer-credit.ts), minor units > 0. */
export interface CustomerCredit {
  currency: string;
  amount: bigint;
}

/** A customer with its ledger balances, one per currency it has a receivable or credit account in. */
export interface CustomerWithBalances extends CustomerRow {
  balances: CustomerBalance[];
  /** Credit the customer can use or have refunded, per currency (only currencies with some). */
  credit: CustomerCredit[];
}

/**
 * Adds their ledger balances to customers, in three queries for all of them (and one per overpaid
 * invoice with refunds in flight or open disputes: `overpaymentsHeld`): per currency, the balance is
 * their receivable (`receivable:<id>`) net of their credit (`customer_credit:<id>`); `credit` is their
 * credit less what refunds still in flight hold of it, of customer credit and of overpaid invoices,
 * and what open disputes of overpaid invoices hold of it (as `availableCredit`).
 */
export async function withBalances(
  db: Kysely<Database>,
  customers: readonly CustomerRow[],
): Promise<CustomerWithBalances[]> {
  const codes = customers.flatMap((c) => [chart.receivable(c.id).code, chart.customerCredit(c.id).code]);
  const balances = await balancesOfCodes(db, codes);
  const held = customers.length
    ? await db
        .selectFrom('refunds')
        .select(['customer_id', 'currency', sql<string>`sum(amount)::text`.as('held')])
        .where('kind', '=', 'customer_credit')
        .where(
          'customer_id',
          'in',
          customers.map((c) => c.id),
        )
        .where('status', 'in', ['pending', 'unknown'])
        .groupBy(['customer_id', 'currency'])
        .execute()
    : [];
  const overpayments = await overpaymentsHeld(
    db,
    customers.map((c) => c.id),
  );
  return customers.map((customer) => {
    const receivable = chart.receivable(customer.id).code;
    const creditCode = chart.customerCredit(customer.id).code;
    const net = new Map<string, bigint>();
    const credit: CustomerCredit[] = [];
    for (const b of balances) {
      if (b.code !== receivable && b.code !== creditCode) continue;
      net.set(b.currency, (net.get(b.currency) ?? 0n) + b.balance);
      if (b.code !== creditCode) continue;
      const inFlight = held.find((h) => h.customer_id === customer.id && h.currency === b.currency);
      const overpaid = overpayments.find((h) => h.customerId === customer.id && h.currency === b.currency);
      const amount = -b.balance - BigInt(inFlight?.held ?? 0) - (overpaid?.held ?? 0n);
      if (amount > 0n) credit.push({ currency: b.currency, amount });
    }
    return {
      ...customer,
      balances: [...net]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([currency, balance]) => ({ currency, balance })),
      credit,
    };
  });
}

/** A customer with its ledger balances. @throws NotFoundError when there is no customer `id` */
export async function getCustomerWithBalances(
  db: Kysely<Database>,
  id: string,
): Promise<CustomerWithBalances> {
  const [customer] = await withBalances(db, [await getCustomer(db, id)]);
  return customer!;
}

/**
 * What may change on a customer; `name: null` / `externalId: null` clear them, metadata is replaced,
 * the contact and tax details as `CustomerDetails`.
 */
export interface CustomerUpdate extends CustomerDetails {
  email?: string;
  name?: string | null;
  externalId?: string | null;
  metadata?: Record<string, string>;
}

/**
 * Updates a customer and logs `customer.updated` with the changed fields (column names, from → to); a
 * body changing nothing changes and logs nothing. A closed customer can still be updated.
 * @throws NotFoundError when there is no customer `id`
 * @throws ConflictError `external_id_taken` when another customer has the external id
 */
export async function updateCustomer(
  db: Db,
  actor: Actor,
  id: string,
  update: CustomerUpdate,
): Promise<CustomerRow> {
  try {
    return await inUnitOfWork(db, { actor }, async (work) => {
      const row = await work.trx
        .selectFrom('customers')
        .selectAll()
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!row) throw new NotFoundError('customer', id);
      const changes = changedFields(row, {
        email: update.email,
        name: update.name,
        external_id: update.externalId,
        metadata: update.metadata,
        ...detailColumns(update),
      });
      if (Object.keys(changes).length === 0) return row;
      const set = Object.fromEntries(
        Object.entries(changes).map(([column, { to }]) => [
          column,
          column === 'metadata' ? JSON.stringify(to) : to,
        ]),
      );
      const updated = await work.trx
        .updateTable('customers')
        .set({ ...set, updated_at: new Date() })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordActivity(work, {
        resourceType: 'customer',
        resourceId: id,
        action: 'customer.updated',
        customerId: id,
        data: changes,
      });
      return updated;
    });
  } catch (error) {
    if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
      throw new ConflictError('external_id_taken', `a customer with external_id ${update.externalId} exists`);
    }
    throw error;
  }
}
