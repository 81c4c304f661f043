import { runCli } from '../../src/cli/program.ts';

/** What an in-process `billhook …` printed, and how it ended. */
export interface CliResult {
  code: number;
  /** Command output and JSON log lines, as a process's stdout carries both. */
  stdout: string;
  stderr: string;
}

/**
 * Runs `billhook <args>` in this process, as the bin entry runs it but with its own streams, with
 * `env` over this process's environment; never throws. For what a command prints, returns and
 * changes in the database: the process itself (start-up, signals, its streams, the bin shim) is
 * tested by spawning it (test/support/process.ts).
 */
export async function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    logs: { write: (line: string) => (stdout += line) },
    env: { ...process.env, ...env },
    exit: (status) => {
      throw new Error(
        `only a running start, web or worker ends the process; a command asked to exit ${status}`,
      );
    },
  });
  return { code, stdout, stderr };
}
