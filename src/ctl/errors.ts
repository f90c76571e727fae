// Errors flotctl reports: one line on stderr, and the exit code that goes with it.
import { unmarkText } from './operands.js';

/** A failure: exit code 1. */
export class CtlError extends Error {
  override name = 'CtlError';
  readonly exitCode: number = 1;
}

/** The command line itself is wrong: exit code 2. */
export class UsageError extends CtlError {
  override name = 'UsageError';
  override readonly exitCode: number = 2;

  constructor(message: string) {
    // yargs quotes arguments given after `--` with their mark (see operands.ts).
    super(unmarkText(message));
  }
}
