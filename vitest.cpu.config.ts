import { defineConfig, mergeConfig } from 'vitest/config';
import suite from './vitest.config.ts';

/**
 * The suite with each file's CPU recorded (issue #23 item 7: the suite's time on two cores is its
 * CPU): test/support/cpu-per-file.ts appends a line a file, worker and PostgreSQL CPU-seconds apart,
 * to `CPU_PER_FILE_OUT`. One file at a time, so that PostgreSQL's CPU is the file's:
 *
 *   CPU_PER_FILE_OUT=/tmp/cpu.jsonl npx vitest run --config vitest.cpu.config.ts --maxWorkers=1 [files…]
 */
export default mergeConfig(suite, defineConfig({ test: { setupFiles: ['test/support/cpu-per-file.ts'] } }));
