/**
 * systemd unit files: parsing the way systemd reads them, and one canonical
 * serialization that the content hash is taken over.
 *
 * Reading (systemd's conf-parser, see systemd.syntax(7)):
 *  - lines end at \n, \r\n or \r; a leading UTF-8 byte-order mark is dropped;
 *  - a line whose first non-blank character is `#` or `;` is a comment, also
 *    in the middle of a continuation;
 *  - a line ending in an unescaped backslash continues on the next line, the
 *    backslash becoming a space;
 *  - `[Name]` starts a section; `Key=Value` splits at the first `=`; blanks
 *    (space, tab) around keys, values and lines are dropped;
 *  - a key may repeat: every assignment is kept, in order; an empty value is
 *    kept too (for list settings systemd reads it as "reset the list", see
 *    getValues).
 * Where systemd only logs and skips a line (no `=`, or an assignment before
 * the first section) we refuse the file: a unit that loses lines silently is
 * not what the user meant, and bad input is stopped at the edge.
 *
 * Duplicate section headers: systemd just switches back to the earlier
 * section, so `[Service]` twice means one section. The parser merges them
 * (entries kept in file order, section placed where it first appeared), and
 * so does the serializer for hand-built files. Sections without entries mean
 * nothing to systemd and are dropped. The canonical form is laid out like
 * fleet's (go-systemd's Serialize), so for ordinary files (no continuations
 * or backslashes, which go-systemd read differently) hashes agree with fleet's.
 */
import { UnitError, quote } from './errors.js';
import { decodeUnitText, DEFAULT_MAX_UNIT_BYTES } from './text.js';

export { DEFAULT_MAX_UNIT_BYTES };

export interface UnitEntry {
  key: string;
  value: string;
}

export interface UnitSection {
  name: string;
  entries: UnitEntry[];
}

export interface UnitFile {
  sections: UnitSection[];
}

export interface ParseOptions {
  /** Name used in error messages. */
  unit?: string | undefined;
  /** Size cap in bytes (UTF-8); default DEFAULT_MAX_UNIT_BYTES. */
  maxBytes?: number | undefined;
}

/** Parses unit file text or bytes; throws only UnitError (rule 'file.*'). */
export function parseUnitFile(input: string | Uint8Array, opts: ParseOptions = {}): UnitFile {
  const unit = opts.unit;
  const text = decodeUnitText(input, opts);
  const sections: UnitSection[] = [];
  const byName = new Map<string, UnitSection>();
  let current: UnitSection | undefined;

  const handle = (logical: string, line: number): void => {
    const l = strip(logical);
    if (l === '') return;
    if (l.startsWith('[')) {
      current = sectionFor(parseHeader(l, unit, line), sections, byName);
      return;
    }
    if (current === undefined) {
      throw new UnitError('file.outside-section', `${quote(clip(l))} comes before any section; start the file with a header such as [Unit]`, { unit, line });
    }
    const eq = l.indexOf('=');
    if (eq < 0) {
      throw new UnitError('file.missing-equals', `expected Key=Value but found ${quote(clip(l))}`, { unit, line });
    }
    if (eq === 0) {
      throw new UnitError('file.missing-key', `${quote(clip(l))} has no key before "="`, { unit, line });
    }
    current.entries.push({ key: strip(l.slice(0, eq)), value: strip(l.slice(eq + 1)) });
  };

  const lines = text.split(/\r\n|\r|\n/);
  let pending: string | undefined;
  let pendingLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    if (isComment(raw)) continue;
    const line = pending === undefined ? i + 1 : pendingLine;
    const logical = pending === undefined ? raw : pending + raw;
    if (endsInUnescapedBackslash(raw)) {
      pending = `${logical.slice(0, -1)} `;
      pendingLine = line;
      continue;
    }
    pending = undefined;
    handle(logical, line);
  }
  // A continuation at end of file is still read, as systemd does.
  if (pending !== undefined) handle(pending, pendingLine);

  return { sections: sections.filter((s) => s.entries.length > 0) };
}

/**
 * The canonical text: each section once, in order of first appearance, as
 * `[Name]` then `Key=Value` lines, a blank line between sections, a newline
 * after every line; comments and spacing are gone. Empty sections are left
 * out. Throws UnitError for what no unit file can express (a newline in a
 * value, `=` in a key, ...). Surrounding blanks of keys and values are
 * dropped, as the parser would drop them.
 */
export function serializeUnitFile(file: UnitFile): string {
  const out: string[] = [];
  for (const section of mergeSections(file.sections)) {
    if (section.entries.length === 0) continue;
    checkSectionName(section.name, undefined, undefined);
    if (out.length > 0) out.push('\n');
    out.push(`[${section.name}]\n`);
    for (const { key, value } of section.entries) {
      out.push(`${canonicalKey(key, section.name)}=${canonicalValue(value, section.name, key)}\n`);
    }
  }
  return out.join('');
}

/**
 * The values of `key` in `section`, in order, after systemd's rule for list
 * settings: an empty assignment clears what came before it.
 */
export function getValues(file: UnitFile, section: string, key: string): string[] {
  let values: string[] = [];
  for (const s of file.sections) {
    if (s.name !== section) continue;
    for (const e of s.entries) {
      if (e.key !== key) continue;
      if (e.value === '') values = [];
      else values.push(e.value);
    }
  }
  return values;
}

/** The last value of `key` (systemd's rule for single-valued settings), or undefined. */
export function getLastValue(file: UnitFile, section: string, key: string): string | undefined {
  let last: string | undefined;
  for (const s of file.sections) {
    if (s.name !== section) continue;
    for (const e of s.entries) if (e.key === key) last = e.value;
  }
  return last;
}

/** True when the file has a section `name` with at least one entry. */
export function hasSection(file: UnitFile, name: string): boolean {
  return file.sections.some((s) => s.name === name && s.entries.length > 0);
}

/** One section per name, in order of first appearance, entries in order. */
export function mergeSections(sections: readonly UnitSection[]): UnitSection[] {
  const merged: UnitSection[] = [];
  const byName = new Map<string, UnitSection>();
  for (const s of sections) {
    sectionFor(s.name, merged, byName).entries.push(...s.entries.map((e) => ({ key: e.key, value: e.value })));
  }
  return merged;
}

// systemd's WHITESPACE: only these count as blanks around keys, values and lines.
const BLANKS = ' \t\n\r';

function strip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && BLANKS.includes(s[start] as string)) start++;
  while (end > start && BLANKS.includes(s[end - 1] as string)) end--;
  return s.slice(start, end);
}

function isComment(raw: string): boolean {
  for (const ch of raw) {
    if (ch === ' ' || ch === '\t') continue;
    return ch === '#' || ch === ';';
  }
  return false;
}

/** An odd run of trailing backslashes: the last one is not itself escaped. */
function endsInUnescapedBackslash(s: string): boolean {
  let n = 0;
  while (n < s.length && s[s.length - 1 - n] === '\\') n++;
  return n % 2 === 1;
}

function sectionFor(name: string, sections: UnitSection[], byName: Map<string, UnitSection>): UnitSection {
  let s = byName.get(name);
  if (s === undefined) {
    s = { name, entries: [] };
    byName.set(name, s);
    sections.push(s);
  }
  return s;
}

function parseHeader(l: string, unit: string | undefined, line: number): string {
  if (!l.endsWith(']') || l.length < 2) {
    throw new UnitError('file.section-header', `${quote(clip(l))} is not a section header; write it as [Name]`, { unit, line });
  }
  const name = l.slice(1, -1);
  checkSectionName(name, unit, line);
  return name;
}

// eslint-disable-next-line no-control-regex
const UNSAFE_SECTION_CHARS = /[\u0000-\u001f\u007f"'\\]/;

/** systemd refuses empty names and names with control characters, quotes or backslashes. */
function checkSectionName(name: string, unit: string | undefined, line: number | undefined): void {
  if (name === '') {
    throw new UnitError('file.section-name', 'a section header needs a name, e.g. [Service]', { unit, line });
  }
  if (UNSAFE_SECTION_CHARS.test(name) || name.startsWith(' ') || name.endsWith(' ')) {
    // Blanks at the edges would not survive a round trip in every reader.
    throw new UnitError('file.section-name', `section name ${quote(clip(name))} must not contain quotes, backslashes, control characters or surrounding blanks`, { unit, line });
  }
}

function canonicalKey(key: string, section: string): string {
  const k = strip(key);
  if (k === '' || /[=\r\n]/.test(k) || /^[[#;]/.test(k)) {
    throw new UnitError('file.invalid-key', `key ${quote(clip(key))} in [${section}] cannot be written to a unit file: it must be non-empty, without "=" or line breaks, and not start with [ # or ;`);
  }
  return k;
}

function canonicalValue(value: string, section: string, key: string): string {
  const v = strip(value);
  if (/[\r\n]/.test(v)) {
    throw new UnitError('file.invalid-value', `the value of ${key} in [${section}] contains a line break; unit file values are single lines`);
  }
  // A value ending in an unescaped backslash would read as a continuation;
  // a trailing blank keeps it a value (the reader strips the blank again).
  return endsInUnescapedBackslash(v) ? `${v} ` : v;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
