// Ending a command-line process without losing its output. Node writes to a
// pipe asynchronously: what the pipe cannot take yet waits in memory, and
// process.exit() drops it (`flotctl cat big.service | wc -c` printed 65536
// of 141,120 bytes). So the CLIs exit through exitWhenFlushed, and a reader
// that closes the pipe early ends the process as it ends a Unix tool.
// Proved by test/integration/flotctl/pipes.test.ts.

/**
 * The exit status when the reader closed the pipe: 128 + SIGPIPE (13), what
 * a shell reports for `cat` or `grep` killed by SIGPIPE in the same place.
 */
export const EXIT_CLOSED_PIPE = 141;

/** Resolves once everything written so far to `stream` has left the process, or the stream failed. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  // Writes complete in order, so an empty write's callback runs after every
  // earlier write's; it runs (with an error) on a closed stream too.
  return new Promise((resolve) => void stream.write('', () => resolve()));
}

/**
 * Exits with `code` once stdout and stderr are flushed, however slowly their
 * readers read; with EXIT_CLOSED_PIPE if a reader closed its pipe meanwhile.
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  const streams = [process.stdout, process.stderr];
  await Promise.all(streams.map(flushed));
  // The failed write's 'error' event may come after the flush callbacks.
  process.exit(streams.some((s) => isClosedPipe(s.errored)) ? EXIT_CLOSED_PIPE : code);
}

function isClosedPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null | undefined)?.code === 'EPIPE';
}

/**
 * A reader that closes stdout or stderr early (`flotctl list-units | head -1`)
 * ends the process at once, without a message or stack trace, with
 * EXIT_CLOSED_PIPE; other write errors are thrown as before.
 */
export function exitQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (isClosedPipe(err)) process.exit(EXIT_CLOSED_PIPE);
      throw err;
    });
  }
}
