import { z } from 'zod';
import { isCountry } from '../../billing/countries.ts';
import type { CustomerDetails } from '../../billing/customers.ts';

/** A short free-text field of a contact or address: 1 to `max` characters. */
const Text = (max: number) => z.string().trim().min(1).max(max);

/** A two-letter country code in the ISO 3166-1 alpha-2 shape, upper-cased (a filter's value). */
export const CountryCode = z
  .string()
  .regex(/^[A-Za-z]{2}$/, 'must be a two-letter ISO 3166-1 alpha-2 country code')
  .transform((c) => c.toUpperCase());

/** ISO 3166-1 alpha-2, an assigned code; lower case is accepted and upper-cased. */
const Country = CountryCode.refine(
  isCountry,
  'must be an assigned ISO 3166-1 alpha-2 country code (e.g. AU, GB, US)',
);

/** A BCP 47 language tag (`en`, `en-AU`, `zh-Hant-TW`), stored in its canonical form. */
const Locale = z
  .string()
  .max(35)
  .transform((tag, ctx) => {
    try {
      const [canonical] = Intl.getCanonicalLocales(tag);
      if (canonical) return canonical;
    } catch {
      // RangeError: not a well-formed tag; reported below.
    }
    ctx.addIssue({ code: 'custom', message: 'must be a BCP 47 language tag, e.g. en or en-AU' });
    return z.NEVER;
  });

/** A billing address in Stripe's field names; every part optional. */
const Address = z.strictObject({
  line1: Text(200).nullable().optional(),
  line2: Text(200).nullable().optional(),
  city: Text(100).nullable().optional(),
  state: Text(100).nullable().optional(),
  postal_code: Text(20).nullable().optional(),
  country: Country.nullable().optional(),
});

/**
 * A customer's billing contact and tax fields, on `POST /v1/customers` and `POST /v1/customers/:id`:
 * `phone`, `address` {line1, line2, city, state, postal_code, country (ISO 3166-1 alpha-2)} — given,
 * it replaces the whole address; null clears it — `tax_id`, `tax_exempt` (boolean) and `locale`
 * (BCP 47). `null` clears a field on update.
 */
export const CustomerDetailsFields = {
  phone: Text(40).nullable().optional(),
  address: Address.nullable().optional(),
  tax_id: Text(64).nullable().optional(),
  tax_exempt: z.boolean().optional(),
  locale: Locale.nullable().optional(),
};

/** The parsed `CustomerDetailsFields` of a body. */
export interface CustomerDetailsInput {
  phone?: string | null;
  address?: z.output<typeof Address> | null;
  tax_id?: string | null;
  tax_exempt?: boolean;
  locale?: string | null;
  invoice_prefix?: string | null;
  payment_terms_days?: number | null;
}

/** A parsed customer body: create, update, or a signup's `customer`. */
interface CustomerBody extends CustomerDetailsInput {
  email?: string;
  name?: string | null;
  external_id?: string | null;
  metadata?: Record<string, string>;
}

/**
 * A parsed customer body as the billing module's input (`NewCustomer` from a create's,
 * `CustomerUpdate` from an update's): its own fields, camel-cased, and its `CustomerDetails`.
 */
export function customerInputOf<B extends CustomerBody>(
  body: B,
): {
  email: B['email'];
  name: B['name'];
  externalId: B['external_id'];
  metadata: B['metadata'];
} & CustomerDetails {
  return {
    email: body.email,
    name: body.name,
    externalId: body.external_id,
    metadata: body.metadata,
    ...customerDetailsOf(body),
  };
}

/** The billing module's `CustomerDetails` of a parsed body. */
export function customerDetailsOf(body: CustomerDetailsInput): CustomerDetails {
  const { address } = body;
  return {
    phone: body.phone,
    taxId: body.tax_id,
    taxExempt: body.tax_exempt,
    locale: body.locale,
    invoicePrefix: body.invoice_prefix,
    paymentTermsDays: body.payment_terms_days,
    address:
      address === undefined || address === null
        ? address
        : {
            line1: address.line1,
            line2: address.line2,
            city: address.city,
            state: address.state,
            postalCode: address.postal_code,
            country: address.country,
          },
  };
}
