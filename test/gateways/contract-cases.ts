import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { ContractCase } from './contract-case.ts';

/** Every adapter the contract suite runs against: each `test/gateways/<gateway>/contract.ts` exports `contract`. */
export const contractCases: ContractCase[] = [];
for (const entry of readdirSync(import.meta.dirname, { withFileTypes: true })) {
  const file = path.join(import.meta.dirname, entry.name, 'contract.ts');
  if (entry.isDirectory() && existsSync(file)) {
    contractCases.push(((await import(file)) as { contract: ContractCase }).contract);
  }
}
