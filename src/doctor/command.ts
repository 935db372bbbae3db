/**
 * The `express-ort-bff` command line: `express-ort-bff doctor [--json] [--strict]`. Kept apart from the bin
 * entry (cli.ts) so that its arguments, output and exit status can be tested without a process.
 */
import type { Env } from '../config/example-env.js';
import { environmentScrubber, runDoctor } from './doctor.js';
import { formatReport, formatReportJson, printable } from './report.js';

export const USAGE = `Usage: express-ort-bff doctor [--json] [--strict]

Checks the BFF's settings and its Auth0 tenant before users hit them, and prints each finding with its fix.
It reads the environment variables of the example (see the README):
  ISSUER_URL or AUTH0_DOMAIN, CLIENT_ID, CLIENT_SECRET, AUDIENCE, BASE_URL, SESSION_SECRET
  AUTH0_MANAGEMENT_TOKEN   optional: a Management API token with read:clients and read:resource_servers,
                           to also check the API's and the application's settings
It changes nothing: it reads the discovery document, sends two token requests that must fail, and reads the
Management API. It never prints a token or a secret.

Options:
  --json     print the report as JSON
  --strict   exit with 1 on warnings too
  --help     print this text

Exit status: 0 when nothing failed, 1 when something did, 2 when the command itself could not run.
`;

export interface CommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** Runs the command for `args` (without node and the script) and resolves to its exit status. */
export async function runCommand(args: readonly string[], env: Env, io: CommandIo, fetchImpl?: typeof fetch): Promise<number> {
  const [command, ...flags] = args;
  if (command === '--help' || command === '-h' || command === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  if (command !== 'doctor') {
    io.stderr(`${command === undefined ? 'No command given.' : `Unknown command: ${command}.`}\n\n${USAGE}`);
    return 2;
  }
  const unknown = flags.filter((flag) => !['--json', '--strict', '--help', '-h'].includes(flag));
  if (unknown.length > 0) {
    io.stderr(`Unknown option: ${unknown.join(' ')}.\n\n${USAGE}`);
    return 2;
  }
  if (flags.includes('--help') || flags.includes('-h')) {
    io.stdout(USAGE);
    return 0;
  }
  try {
    const report = await runDoctor({ env, strict: flags.includes('--strict'), ...(fetchImpl ? { fetch: fetchImpl } : {}) });
    io.stdout(flags.includes('--json') ? formatReportJson(report) : formatReport(report));
    return report.ok ? 0 : 1;
  } catch (error) {
    // A fault of the doctor itself, not a finding: said without a stack, scrubbed as a report is (the message may
    // quote a value of the environment or a tenant's answer), and without control characters.
    const message = typeof (error as Error)?.message === 'string' ? (error as Error).message : String(error);
    io.stderr(`express-ort-bff doctor could not run: ${printable(environmentScrubber(env)(message).replace(/\s+/g, ' '))}\n`);
    return 2;
  }
}
