import type { ContractCase } from './contract-case.ts';
import { stripeContract } from './stripe/contract.ts';

/** Every adapter the contract suite runs against. */
export const contractCases: ContractCase[] = [stripeContract];
