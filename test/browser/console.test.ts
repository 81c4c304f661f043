import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The operators' console driven in headless Chromium (Debian's `chromium`, through puppeteer-core):
 * an operator logs in, filters the inbox, opens a payload, replays an event, resolves an exception
 * and retries a dead letter; each step asserts what the page shows and what changed in the database.
 * A screenshot of each page goes to test/browser/screenshots/ (git ignores it). Without Chromium
 * (`CHROMIUM_PATH`, default /usr/bin/chromium) the file says so and drives nothing; `.ci/run`
 * installs it.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.resolve(import.meta.dirname, 'screenshots');
const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/stripe/webhook.payment_intent.succeeded.json');

if (!existsSync(CHROMIUM)) {
  console.log(
    `test/browser/console.test.ts: ${CHROMIUM} is not installed (apt-get install chromium): the console is not driven in a browser`,
  );
  describe('the console in a browser', () => {
    it('needs Chromium, which is not installed here', () => {
      expect(existsSync(CHROMIUM)).toBe(false);
    });
  });
} else {
  describe('the console in headless Chromium', () => {
    let app: TestApp;
    let browser: Browser;
    let page: Page;
    /** billhook by host name over plain HTTP (not 127.0.0.1): the cookie and the forms must work there. */
    let base: string;
    let adminKeyId: string;
    let unknownPayment: string;
    let deadEvent: string;

    beforeAll(async () => {
      app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '0' });
      base = app.url.replace('127.0.0.1', 'localhost');
      mkdirSync(SCREENSHOTS, { recursive: true });
      browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        // As root in a container: no sandbox, no /dev/shm of its own.
        args: [
          '--no-sandbox',
          '--headless=new',
          '--disable-gpu',
          '--disable-dev-shm-usage',
          '--no-first-run',
        ],
      });
      page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 900 });
      adminKeyId = (
        await app.runtime.db
          .selectFrom('api_keys')
          .select('id')
          .where('name', '=', 'BILLHOOK_ADMIN_KEY')
          .executeTakeFirstOrThrow()
      ).id;
      // A Stripe payment billhook never started: the worker makes it a reconciliation exception.
      const body = readFileSync(FIXTURE, 'utf8');
      const event = JSON.parse(body) as { id: string; type: string };
      unknownPayment = (
        await app.runtime.inbox!.receive({
          gateway: 'stripe',
          eventId: event.id,
          eventType: event.type,
          body,
        })
      ).id!;
      // A PayPal delivery while PayPal is not configured: it fails and becomes a dead letter.
      deadEvent = (
        await app.runtime.inbox!.receive({
          gateway: 'paypal',
          eventId: 'WH-console-browser',
          eventType: 'PAYMENT.CAPTURE.COMPLETED',
          body: '{"id":"WH-console-browser","event_type":"PAYMENT.CAPTURE.COMPLETED"}',
        })
      ).id!;
      await waitFor('the exception and the dead letter', async () => {
        const exception = await app.runtime.db
          .selectFrom('reconciliation_exceptions')
          .select('id')
          .where('inbox_id', '=', unknownPayment)
          .executeTakeFirst();
        const dead = await app.runtime.db
          .selectFrom('inbox')
          .select('status')
          .where('id', '=', deadEvent)
          .executeTakeFirstOrThrow();
        return exception !== undefined && dead.status === 'retrying';
      });
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
      await app?.stop();
    });

    /** Goes to a console path and waits for the page (its scripts' requests included). */
    const visit = (pathname: string) => page.goto(`${base}${pathname}`, { waitUntil: 'networkidle0' });
    const shot = (name: string) =>
      page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
    const text = (selector: string) => page.$eval(selector, (element) => element.textContent ?? '');
    /** Clicks what `selector` names and waits for the page the click leads to. */
    const follow = async (selector: string) => {
      await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click(selector)]);
    };

    it('logs in with the admin key through the form', async () => {
      await visit('/admin');
      expect(page.url()).toBe(`${base}/admin/login?next=%2Fadmin`);
      await shot('login');
      await page.type('#key', ADMIN_KEY);
      await follow('button[type=submit]');
      expect(page.url()).toBe(`${base}/admin`);
      expect(await text('h1')).toBe('Overview');
      expect(await text('#generated-at')).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      const cookies = await browser.cookies();
      expect(cookies).toContainEqual(
        expect.objectContaining({
          name: 'billhook_admin',
          httpOnly: true,
          sameSite: 'Strict',
          secure: false,
        }),
      );
      await shot('overview');
    });

    it('filters the inbox by gateway and opens a payload', async () => {
      await visit('/admin/inbox');
      expect(await text('#inbox tbody')).toContain(deadEvent);
      await page.select('select[name=gateway]', 'stripe');
      await follow('form.filters button[type=submit]');
      expect(page.url()).toBe(`${base}/admin/inbox?gateway=stripe`);
      const listed = await page.$$eval('#inbox tbody tr td:first-child', (cells) =>
        cells.map((c) => c.textContent),
      );
      expect(listed).toEqual([unknownPayment]);
      await shot('inbox');

      await follow(`a[href="/admin/inbox/${unknownPayment}"]`);
      expect(await text('h1')).toBe(`Event ${unknownPayment}`);
      const payload = JSON.parse(await text('#payload'));
      expect(payload).toEqual(JSON.parse(readFileSync(FIXTURE, 'utf8')));
      expect(await text('#events')).toContain('gatewayTransactionId');
      await shot('event');
    });

    it('replays the event: it is processed again, and the activity names the admin key', async () => {
      const before = await app.runtime.db
        .selectFrom('inbox')
        .select('attempts')
        .where('id', '=', unknownPayment)
        .executeTakeFirstOrThrow();
      await follow('form[action$="/replay"] button');
      expect(await text('.notice')).toBe(`Event ${unknownPayment} replayed: it is processed again.`);
      await waitFor('the replay processed', async () => {
        const row = await app.runtime.db
          .selectFrom('inbox')
          .select(['attempts', 'status'])
          .where('id', '=', unknownPayment)
          .executeTakeFirstOrThrow();
        return row.attempts > before.attempts && row.status === 'exception';
      });
      const activity = await app.runtime.db
        .selectFrom('activities')
        .select(['action', 'actor'])
        .where('resource_id', '=', unknownPayment)
        .executeTakeFirstOrThrow();
      expect(activity).toEqual({ action: 'event.replayed', actor: adminKeyId });
    });

    it('resolves the exception with a note', async () => {
      await visit('/admin/exceptions?status=open');
      const exception = await app.runtime.db
        .selectFrom('reconciliation_exceptions')
        .select(['id', 'kind'])
        .where('inbox_id', '=', unknownPayment)
        .executeTakeFirstOrThrow();
      expect(await text('#exceptions tbody')).toContain(exception.id);
      await shot('exceptions');
      await follow(`a[href="/admin/exceptions/${exception.id}"]`);
      expect(await text('#exception-status')).toBe('open');
      await shot('exception');
      await page.type('#note', 'Charged by hand in the Stripe dashboard; nothing to book.');
      await follow('form[action$="/resolve"] button');
      expect(await text('.notice')).toBe(`Exception ${exception.id} resolved.`);
      expect(await text('#exception-status')).toMatch(/^resolved at /);
      expect(await text('#history')).toContain('Charged by hand in the Stripe dashboard');
      const row = await app.runtime.db
        .selectFrom('reconciliation_exceptions')
        .select('status')
        .where('id', '=', exception.id)
        .executeTakeFirstOrThrow();
      expect(row.status).toBe('resolved');
      const resolved = await app.runtime.db
        .selectFrom('activities')
        .select(['actor', 'data'])
        .where('resource_id', '=', exception.id)
        .where('action', '=', 'reconciliation_exception.resolved')
        .executeTakeFirstOrThrow();
      expect(resolved).toEqual({
        actor: adminKeyId,
        data: { kind: exception.kind, note: 'Charged by hand in the Stripe dashboard; nothing to book.' },
      });
    });

    it('retries the dead letter: it leaves the dead letters and its event is processed again', async () => {
      await visit('/admin/dead-letters');
      expect(await text('#dead-letter-counts')).toBe('1 dead letter: webhook.process 1 ');
      const job = await page.$eval(
        '#dead-letters tbody tr td:nth-child(2)',
        (cell) => cell.textContent ?? '',
      );
      expect(await text('#dead-letters tbody')).toContain(deadEvent);
      await shot('dead-letters');
      const attempts = async () =>
        (
          await app.runtime.db
            .selectFrom('inbox')
            .select('attempts')
            .where('id', '=', deadEvent)
            .executeTakeFirstOrThrow()
        ).attempts;
      const before = await attempts();
      await follow(`form[action="/admin/dead-letters/webhook.process/${job}/retry"] button`);
      expect(await text('.notice')).toBe(`Dead letter ${job} sent back to its queue.`);
      // PayPal is still not configured: the event is tried again and fails again.
      await waitFor('the retried event processed', async () => (await attempts()) > before);
      const retried = await app.runtime.db
        .selectFrom('activities')
        .select(['action', 'actor'])
        .where('resource_id', '=', job)
        .executeTakeFirstOrThrow();
      expect(retried).toEqual({ action: 'dead_letter.retried', actor: adminKeyId });
    });

    it('shows every other page: payouts, settlement report, gateway accounts, the queue dashboard', async () => {
      for (const [name, pathname, heading] of [
        ['payouts', '/admin/payouts', 'Payouts'],
        ['settlement', '/admin/settlement', 'Settlement report'],
        ['accounts', '/admin/accounts', 'Gateway accounts (0)'],
      ] as const) {
        await visit(pathname);
        expect(await text('h1')).toBe(heading);
        await shot(name);
      }
      await visit('/admin/queues');
      // pg-boss's dashboard, rendered and hydrated under billhook's session.
      expect(await page.content()).toContain('webhook.process');
      await shot('queues');
    });
  });
}
