// Structured log lines (one JSON object per line): journald keeps the
// daemon's stdout, and tests can capture a logger's lines.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(component: string): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  /** The least level written; a function is asked at every line (a level that changes at run time). */
  level?: LogLevel | (() => LogLevel);
  /** Where lines go; stderr unless set (the daemon sets stdout). */
  write?: (line: string) => void;
}

export function createLogger(component: string, opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? levelFromEnv();
  const min = (): number => ORDER[typeof level === 'function' ? level() : level];
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const emit = (lineLevel: LogLevel, msg: string, fields?: LogFields): void => {
    if (ORDER[lineLevel] < min()) return;
    write(`${JSON.stringify({ ts: new Date().toISOString(), level: lineLevel, component, msg, ...fields })}\n`);
  };
  return {
    debug: (msg, f) => emit('debug', msg, f),
    info: (msg, f) => emit('info', msg, f),
    warn: (msg, f) => emit('warn', msg, f),
    error: (msg, f) => emit('error', msg, f),
    child: (sub) => createLogger(`${component}.${sub}`, opts),
  };
}

function levelFromEnv(): LogLevel {
  const v = process.env['FLOTILLA_LOG_LEVEL'];
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : 'info';
}

/** A logger that drops everything (libraries default to it). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
