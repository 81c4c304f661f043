import { isIP } from 'node:net';
import { z } from 'zod';
import { feeExpectations, payoutDelays } from './settlement.ts';

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

/** One entry of `TRUST_PROXY`: an IP address, a CIDR range of one, or a name Express knows. */
function isTrustedProxyEntry(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [address = '', bits, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

const url = (fallback: string) => z.url({ protocol: /^https?$/ }).default(fallback);
/** An on/off setting: `1`/`true` or `0`/`false`, `fallback` when unset. */
const flag = (fallback: '0' | '1') =>
  z
    .enum(['0', '1', 'true', 'false'])
    .default(fallback)
    .transform((v) => v === '1' || v === 'true');

/** Comma-separated list of secrets (rotation: the first signs, every one verifies). */
const secretList = optionalString.transform((value) =>
  value
    ? value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [],
);

/**
 * A 32-byte key for AES-256-GCM, written as 64 hex digits or as base64 (standard or URL-safe) of 32
 * bytes (`openssl rand -base64 32`); parsed to its bytes.
 */
const secretKey = optionalString.transform((value, ctx): Buffer | undefined => {
  if (value === undefined) return undefined;
  const bytes = /^[0-9a-fA-F]{64}$/.test(value)
    ? Buffer.from(value, 'hex')
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(value)
      ? Buffer.from(value, 'base64')
      : undefined;
  if (bytes?.length !== 32) {
    ctx.addIssue({ code: 'custom', message: 'must be 32 bytes written as 64 hex digits or base64' });
    return z.NEVER;
  }
  return bytes;
});

const EnvSchema = z.object({
  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  EMBEDDED_PG_DIR: z.string().default('./.data/pg'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /**
   * `worker` role only: the port of its /metrics, /healthz and /readyz (unset: no HTTP at all; 0: any
   * free port). Web processes serve /metrics on PORT.
   */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  BILLHOOK_ROLE: z.enum(['all', 'web', 'worker']).default('all'),
  BILLHOOK_ADMIN_KEY: optionalString.pipe(z.string().min(24).optional()),
  /**
   * The key gateway accounts' credentials are encrypted with (AES-256-GCM): 32 bytes as 64 hex digits
   * or base64. Needed only once a gateway account exists (creating one without it is refused).
   */
  BILLHOOK_SECRET_KEY: secretKey,
  /**
   * The key before the current one, while rotating: credentials encrypted with it stay readable until
   * `billhook accounts rotate-key` has encrypted every account with BILLHOOK_SECRET_KEY.
   */
  BILLHOOK_SECRET_KEY_PREVIOUS: secretKey,
  /** Benchmarks only: serves POST /bench/verify-only/:gateway (signature check, no database). */
  BILLHOOK_BENCH_ROUTES: flag('0'),
  /**
   * Which peers' `X-Forwarded-For` billhook believes (Express's `trust proxy`), so the per-address
   * limits count clients, not the front proxy: unset = none (the peer's address is the client's);
   * a number = that many proxy hops; otherwise a comma-separated list of addresses, CIDR ranges or
   * `loopback`, `linklocal`, `uniquelocal` (e.g. `loopback,10.0.0.0/8`).
   */
  TRUST_PROXY: optionalString.transform((value, ctx): number | string[] | false => {
    if (value === undefined || value === '' || value === 'false') return false;
    if (/^\d+$/.test(value)) return Number(value);
    const entries = value.split(',').map((entry) => entry.trim());
    const bad = entries.find((entry) => !isTrustedProxyEntry(entry));
    if (bad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${bad}" is not a number of hops, an IP address, a CIDR range, loopback, linklocal or uniquelocal`,
      });
      return z.NEVER;
    }
    return entries;
  }),
  /** Requests a minute one API key may make to /v1 (per web process). */
  API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(600),
  /**
   * Failed authentications (a missing, malformed, unknown or revoked key) a minute one source address
   * may make to /v1 and /admin (per web process); beyond it every request from there is 429 until
   * the minute ends. Requests with a valid key never count.
   */
  AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(60),
  /** Hours an `Idempotency-Key` is remembered (Stripe's 24); then the key may be used again. */
  IDEMPOTENCY_KEY_TTL_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 365)
    .default(24),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Stored webhooks a worker applies per transaction, and how many such batches run at once. */
  WEBHOOK_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(100),
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(8),
  WEBHOOK_RETRY_LIMIT: z.coerce.number().int().min(0).max(50).default(8),
  WEBHOOK_RETRY_DELAY_SECONDS: z.coerce.number().int().min(1).max(3600).default(5),
  /**
   * First delay before an outbound event's delivery (src/outbound/) is retried, seconds; doubling (with
   * jitter) to at most six hours apart, for about three days at the default (queue/boss.ts).
   */
  WEBHOOK_ENDPOINT_RETRY_DELAY_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  /** Deliveries a web process holds waiting for the database before it answers new ones 503 with Retry-After. */
  WEBHOOK_MAX_WAITING: z.coerce.number().int().min(1).max(1_000_000).default(5000),
  /**
   * Bytes of webhook bodies a web process holds unanswered (waiting for the database or being stored)
   * before it answers new ones 503 with Retry-After. Default 64 MiB.
   */
  WEBHOOK_MAX_WAITING_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(16 * 1024 ** 3)
    .default(64 * 1024 ** 2),
  /**
   * Deliveries a minute one source address may post to the unsigned webhook routes (`/webhooks/eway`,
   * `/webhooks/securepay`), per web process; beyond it, 429 with Retry-After.
   */
  UNSIGNED_WEBHOOK_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(60),
  /** Queries a second one process may send to eWAY about callback hints; the rest wait for a later retry. */
  EWAY_HINT_QUERIES_PER_SECOND: z.coerce.number().int().min(1).max(1000).default(5),
  /** Seconds after a pending/unknown charge at which the gateway is asked again; then an exception. */
  POLL_SCHEDULE_SECONDS: optionalString.transform((value, ctx) => {
    const steps = (value ?? '60,300,3600,86400').split(',').map((s) => Number(s.trim()));
    if (steps.some((n) => !Number.isInteger(n) || n <= 0)) {
      ctx.addIssue({ code: 'custom', message: 'a comma-separated list of positive whole seconds' });
    }
    return steps;
  }),
  /**
   * Dunning: days after an invoice's first failed automatic charge on which it is charged again
   * (strictly increasing whole days), then DUNNING_FINAL_ACTION applies to its subscription.
   */
  DUNNING_RETRY_DAYS: optionalString.transform((value, ctx) => {
    const days = (value ?? '1,3,5,7').split(',').map((s) => Number(s.trim()));
    if (days.some((n, i) => !Number.isInteger(n) || n <= 0 || n > 366 || (i > 0 && n <= days[i - 1]!))) {
      ctx.addIssue({
        code: 'custom',
        message: 'a comma-separated list of increasing whole days from 1 to 366',
      });
    }
    return days;
  }),
  /** What happens to a subscription whose invoice failed every dunning retry: SUSPEND or CANCEL. */
  DUNNING_FINAL_ACTION: z.enum(['SUSPEND', 'CANCEL']).default('SUSPEND'),
  /**
   * Whether a SUSPENDED subscription keeps being billed (Billby: "Suspending has no effect on billing
   * cycle or end dates, and the subscription will continue to be billed"). Off (the default) gives it
   * no invoices while suspended and resumes at the current period on reactivation.
   */
  BILL_SUSPENDED_SUBSCRIPTIONS: flag('0'),
  /**
   * Days a PayPal claim lost may wait for the refund that pays it (`lostDisputePaidAsRefund`) while it
   * holds its share of the customer's overpayment credit; then billhook stops holding it and raises a
   * `lost_claim_unpaid` exception for a person (payments/lost-claims.ts `flagUnpaidLostClaims`).
   */
  LOST_CLAIM_REFUND_DAYS: z.coerce.number().int().min(1).max(365).default(7),
  /** Days the inbox keeps a finished webhook's raw body; then only the row (id, type, outcome) stays. */
  INBOX_BODY_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  /** Days the inbox keeps a cleanly finished webhook's row (processed or ignored, no exception) at all. */
  INBOX_ROW_RETENTION_DAYS: z.coerce.number().int().min(1).max(36500).default(400),
  /**
   * Whether the minute-by-minute billing sweeps run (`subscription.renew`, `invoice.charge`). Off
   * pauses automatic invoicing and charging (e.g. during a data migration); jobs sent by hand still run.
   */
  BILLING_SWEEPS: flag('1'),
  /** Days back the daily `settlement.sync` asks each gateway account for its settlement data. */
  SETTLEMENT_SYNC_DAYS: z.coerce.number().int().min(1).max(31).default(7),
  /** Per gateway, days after a charge by which it is normally paid out (config/settlement.ts). */
  SETTLEMENT_PAYOUT_DELAY_DAYS: payoutDelays,
  /** Days beyond a gateway's payout delay before a charge in no payout becomes an exception. */
  SETTLEMENT_MARGIN_DAYS: z.coerce.number().int().min(0).max(60).default(3),
  /** Expected fees per gateway and currency (config/settlement.ts); empty: fees are not checked. */
  SETTLEMENT_FEE_EXPECTATIONS: feeExpectations,
  /** Minor units a fee may differ from its expectation (rounding at the gateway) before it is an exception. */
  SETTLEMENT_FEE_TOLERANCE: z.coerce.number().int().min(0).max(1_000_000).default(1),
  /**
   * Seconds a SIGTERM/SIGINT gives the requests and jobs in flight to finish; then the connections
   * still open are closed, the jobs still running are left to pg-boss's retry, and the process exits.
   */
  SHUTDOWN_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(10),
  /**
   * Seconds between pg-boss's maintenance passes in a worker process: each pass counts every queue's
   * jobs by state (the counts the console's overview and /metrics' job gauges show) and fails the
   * jobs of workers that stopped (no heartbeat), for their retry.
   */
  QUEUE_MAINTENANCE_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(600).default(10),
  /**
   * The fewest seconds between a worker's fetches for jobs when nothing wakes it: each queue polls at
   * the longer of this and its own interval (workers/workers.ts: `webhook.process` and
   * `webhook-endpoint.deliver` every second, their retries coming due by time; the sweeps every 5 to
   * 60 s). The default, 1, leaves each queue its own. A NOTIFY still wakes a worker for a new job at
   * once; a retry or a delayed job waits up to this long. The test harness sets it long (an idle
   * test app fetching 13 times a second cost about 7% of the suite's CPU) and wakes the workers of
   * the queues with jobs due while a test waits (test/support/wait.ts).
   */
  QUEUE_POLL_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(600).default(1),
  /**
   * Connections each process's pg-boss keeps to PostgreSQL at most (its job fetches, completions,
   * sends and schedules; the ledger's and the API's queries have their own pool of 10). Each costs
   * PostgreSQL a backend (memory, and a few milliseconds of CPU to open and warm its caches).
   */
  QUEUE_POOL_SIZE: z.coerce.number().int().min(2).max(100).default(10),
  GATEWAY_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(30_000),
  STRIPE_SECRET_KEY: optionalString,
  STRIPE_WEBHOOK_SECRET: secretList,
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: z.coerce.number().int().min(1).max(3600).default(300),
  STRIPE_API_BASE: url('https://api.stripe.com'),
  PAYPAL_CLIENT_ID: optionalString,
  PAYPAL_CLIENT_SECRET: optionalString,
  PAYPAL_WEBHOOK_ID: optionalString,
  /**
   * How PayPal webhooks are verified: `offline` (the signature against PayPal's certificate, no call
   * per delivery) or `api` (PayPal's verify-webhook-signature call; needs PAYPAL_CLIENT_ID/SECRET).
   */
  PAYPAL_WEBHOOK_VERIFICATION: z.enum(['offline', 'api']).default('offline'),
  PAYPAL_API_BASE: url('https://api-m.sandbox.paypal.com'),
  /**
   * Test mode only: PEM certificate(s) trusted for PayPal webhook signatures besides PayPal's own
   * (the repository's test certificate, whose private key is public). Refused with PayPal's live
   * API host (PAYPAL_LIVE_HOSTS); a warning is logged at start whenever it is set.
   */
  PAYPAL_TEST_CERT_FILE: optionalString,
  /** send-test-webhook only: the private key matching PAYPAL_TEST_CERT_FILE. */
  PAYPAL_TEST_KEY_FILE: optionalString,
  AUTHORIZENET_API_LOGIN_ID: optionalString,
  AUTHORIZENET_TRANSACTION_KEY: optionalString,
  AUTHORIZENET_SIGNATURE_KEY: optionalString,
  AUTHORIZENET_API_BASE: url('https://apitest.authorize.net'),
  EWAY_API_KEY: optionalString,
  EWAY_API_PASSWORD: optionalString,
  EWAY_API_BASE: url('https://api.sandbox.ewaypayments.com'),
  SECUREPAY_CLIENT_ID: optionalString,
  SECUREPAY_CLIENT_SECRET: optionalString,
  SECUREPAY_MERCHANT_CODE: optionalString,
  SECUREPAY_API_BASE: url('https://payments-stest.npe.auspost.zone'),
  SECUREPAY_AUTH_URL: url('https://welcome.api2.sandbox.auspost.com.au/oauth/token'),
  /**
   * `on` serves `/webhooks/securepay` (with the SecurePay credentials): SecurePay documents no card
   * webhook, so the unsigned route is off unless asked for; off, it answers 404.
   */
  SECUREPAY_WEBHOOKS: z
    .enum(['on', 'off'])
    .default('off')
    .transform((v) => v === 'on'),
});

/**
 * PayPal's live REST API hosts (https://developer.paypal.com/api/rest/requests/: `api-m.paypal.com`,
 * and the older `api.paypal.com`); the sandbox is `api-m.sandbox.paypal.com`.
 */
export const PAYPAL_LIVE_HOSTS: readonly string[] = ['api-m.paypal.com', 'api.paypal.com'];

/** The schema with the rules that join several variables. */
const ConfigSchema = EnvSchema.superRefine((env, ctx) => {
  if (env.PAYPAL_TEST_CERT_FILE && PAYPAL_LIVE_HOSTS.includes(new URL(env.PAYPAL_API_BASE).hostname)) {
    ctx.addIssue({
      code: 'custom',
      path: ['PAYPAL_TEST_CERT_FILE'],
      message: `must not be set with PayPal's live API (PAYPAL_API_BASE ${env.PAYPAL_API_BASE}): it trusts a test certificate whose private key is public`,
    });
  }
});

/** The name of every environment variable billhook reads (`.env.example` lists them all). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(EnvSchema.shape);

/** Parsed, typed configuration. Every field comes from one environment variable of the same name. */
export type Config = z.output<typeof EnvSchema>;

/** Raised when the environment does not parse; the message names each bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the environment once at start-up.
 * @param env the variables to read (default `process.env`)
 * @throws ConfigError naming every invalid variable, e.g. `PORT: Too big: expected number to be <=65535`
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means unset (as in `.env.example`), so its default applies.
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ''),
  );
  const parsed = ConfigSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}
