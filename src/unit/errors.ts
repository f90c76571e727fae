/**
 * The one error type of the unit module. Everything under src/unit throws
 * only this, so callers at the edge (CLI, API) can turn any refusal into a
 * user-facing message without guessing what else might escape.
 */

/** Where an error was found: the unit's name and, for file errors, the line. */
export interface UnitErrorLocation {
  unit?: string | undefined;
  line?: number | undefined;
}

export class UnitError extends Error {
  /** The unit the error is about, when known. */
  readonly unit?: string;
  /** 1-based line of the unit file, for errors found while parsing text. */
  readonly line?: number;
  /** Short machine-readable id of the rule broken, e.g. 'name.characters'. */
  readonly rule: string;
  /** The message without the unit/line prefix. */
  readonly detail: string;

  constructor(rule: string, detail: string, where: UnitErrorLocation = {}) {
    super(formatMessage(detail, where));
    this.name = 'UnitError';
    this.rule = rule;
    this.detail = detail;
    if (where.unit !== undefined) this.unit = where.unit;
    if (where.line !== undefined) this.line = where.line;
  }

  /** The same error, attributed to a unit (keeps a unit already named). */
  withUnit(unit: string | undefined): UnitError {
    if (unit === undefined || this.unit !== undefined) return this;
    return new UnitError(this.rule, this.detail, { unit, line: this.line });
  }
}

/** `web@.service line 4: detail`, `web@.service: detail`, `line 4: detail`. */
function formatMessage(detail: string, { unit, line }: UnitErrorLocation): string {
  const where = [unit, line === undefined ? undefined : `line ${line}`].filter((s) => s !== undefined).join(' ');
  return where === '' ? detail : `${where}: ${detail}`;
}

/**
 * Quote a user-supplied string for an error message: as written (a name
 * such as x\x2dy.service keeps its single backslash), only control
 * characters escaped so that the message stays one readable line.
 */
export function quote(s: string): string {
  // eslint-disable-next-line no-control-regex
  return `"${s.replace(/[\u0000-\u001f\u007f]/g, escapeControl)}"`;
}

function escapeControl(c: string): string {
  const json = JSON.stringify(c).slice(1, -1);
  return json !== c ? json : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}
