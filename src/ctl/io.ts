// Where a command's output goes, so commands run the same in the CLI and in
// tests: stdout and stderr as functions, whether stderr is a terminal (for
// the progress line), the directory local unit files are read from, and the
// environment FLOTCTL_* options are read from.
export interface CtlIO {
  out(text: string): void;
  err(text: string): void;
  /** True when stderr is a terminal: progress lines are drawn only then. */
  stderrIsTTY: boolean;
  /** Relative unit file paths are read from here. */
  cwd: string;
  env: Readonly<Record<string, string | undefined>>;
}

/** The process's own streams. */
export function processIO(): CtlIO {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    stderrIsTTY: process.stderr.isTTY === true,
    cwd: process.cwd(),
    env: process.env,
  };
}

/** An IO that keeps what is written, for tests and for completion. */
export interface CapturedIO extends CtlIO {
  readonly stdout: string;
  readonly stderr: string;
}

export function captureIO(opts: { cwd?: string; env?: Record<string, string | undefined>; tty?: boolean } = {}): CapturedIO {
  let stdout = '';
  let stderr = '';
  return {
    out: (t) => void (stdout += t),
    err: (t) => void (stderr += t),
    stderrIsTTY: opts.tty ?? false,
    cwd: opts.cwd ?? process.cwd(),
    env: opts.env ?? {},
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}
