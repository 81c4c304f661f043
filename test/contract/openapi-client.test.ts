import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, type TestApp } from '../support/app.ts';
import { stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** openapi-typescript lives in its own workspace, with the TypeScript 5 API it needs. */
const OPENAPI_TYPESCRIPT = path.join(ROOT, 'tools/openapi-typescript');
const PROGRAM = path.join(ROOT, 'test/contract/readme-flow.client.ts');

/** Runs `command` to its end (minutes allowed on a busy machine): its status and output. */
function run(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** A tsconfig type-checking `files` as the root one does, `billhook-openapi` being the generated types. */
function tsconfig(dir: string, files: string[]) {
  const file = path.join(dir, `tsconfig.${path.basename(files[0]!)}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      compilerOptions: {
        target: 'es2024',
        lib: ['es2024'],
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        noUncheckedIndexedAccess: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules/@types')],
        paths: { 'billhook-openapi': [path.join(dir, 'billhook-openapi.d.ts')] },
      },
      files,
    }),
  );
  return run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', file], ROOT);
}

describe('a client generated from /openapi.json (#26 item 3)', () => {
  let app: TestApp;
  let dir: string;
  beforeAll(async () => {
    app = await startOfflineTestApp();
    dir = mkdtempSync(path.join(tmpdir(), 'billhook-client-'));
    const document = await (await fetch(`${app.url}/openapi.json`)).text();
    writeFileSync(path.join(dir, 'openapi.json'), document);
    const generated = run(
      process.execPath,
      [
        path.join(OPENAPI_TYPESCRIPT, 'node_modules/openapi-typescript/bin/cli.js'),
        path.join(dir, 'openapi.json'),
        '-o',
        path.join(dir, 'billhook-openapi.d.ts'),
      ],
      OPENAPI_TYPESCRIPT,
    );
    expect(generated.status, generated.output).toBe(0);
  });
  afterAll(async () => {
    nock.cleanAll();
    await stopOfflineTestApp(app);
    rmSync(dir, { recursive: true, force: true });
  });

  it('type-checks the README flow written against the generated types, and refuses a field the API does not have', () => {
    const checked = tsconfig(dir, [PROGRAM]);
    expect(checked.output).toBe('');
    expect(checked.status).toBe(0);
    // The types are the API's, not `any`: a misspelt field and a wrong body do not compile.
    // In the temporary folder: an ES module that finds openapi-fetch where the program does.
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    const wrong = path.join(dir, 'wrong.mts');
    writeFileSync(
      wrong,
      [
        "import createClient from 'openapi-fetch';",
        "import type { paths } from 'billhook-openapi';",
        "const client = createClient<paths>({ baseUrl: 'http://localhost' });",
        "const { data } = await client.GET('/v1/invoices/{id}', { params: { path: { id: 'inv_1' } } });",
        'export const paid: number | undefined = data?.amount_payed;',
        "await client.POST('/v1/customers', { body: { name: 'no email' } });",
      ].join('\n'),
    );
    const refused = tsconfig(dir, [wrong]);
    expect(refused.status).not.toBe(0);
    expect(refused.output).toContain("Property 'amount_payed' does not exist");
    expect(refused.output).toContain("Property 'email' is missing");
  });

  it('runs the README flow with that client: charge, amount_paid, a list with has_more, a refund, the ledger, a subscription', async () => {
    // Imported by path: the root type-check leaves the program out (its types are generated here).
    const { readmeFlow } = (await import(PROGRAM)) as {
      readmeFlow: (baseUrl: string, apiKey: string) => Promise<Record<string, any>>;
    };
    const { seen } = stripeChargeSucceeds();
    const refundScope = stripeRefundSucceeds('re_3RWJtyQ8iJWBZFaM0readme');
    const result = await readmeFlow(app.url, ADMIN_KEY);
    expect(seen).toHaveLength(1);
    expect(refundScope.isDone()).toBe(true);
    expect(result).toMatchObject({
      status: 'PAID',
      transaction: { status: 'succeeded', amount: 4620 },
      amountPaid: 4620,
      refund: { status: 'succeeded', amount: 1000, currency: 'EUR' },
      amountRefunded: 1000,
    });
    expect(result.transactions).toHaveLength(1);
    expect(result.pages[0]).toEqual({ ids: [expect.stringMatching(/^inv_/)], hasMore: true });
    expect(result.pages[1]).toEqual({ ids: [result.invoice], hasMore: false });
    // 4620 charged, 1000 refunded: Stripe owes 3620 until it pays out.
    expect(result.clearing).toEqual([{ currency: 'EUR', balance: 3620 }]);
    // 3 × 1500 = 4500, and 8.875% of it 399.375 → 399.
    expect(result.preview).toEqual({ subtotal: 4500, tax: 399, total: 4899 });
    expect(result.subscription).toEqual({ status: 'ACTIVE', latestInvoice: expect.stringMatching(/^inv_/) });
    expect(result.balances).toContainEqual({ currency: 'USD', balance: 4899 });
    expect(result.activities).toContain('subscription.created');
  });
});
