// Unit arguments and the lookup submit, load and start share: the registry
// first, then a local file, then the template in the registry, then a local
// template. Every file is read and checked before anything is written.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UnitError, instantiate, normalizeUnitName, parseUnit, parseUnitName, quote, templateOf, type ParsedUnit } from '../unit/index.js';
import type { CtlDriver, NewUnit, StoredUnit } from './driver.js';
import { CtlError } from './errors.js';

export interface UnitArg {
  /** As given on the command line. */
  arg: string;
  /** Normalised unit name: base name, `.service` added when it has no unit type. */
  name: string;
  /** Where a local file for it would be: the argument, with `.service` added like the name. */
  file: string;
}

/** Reads a unit argument as fleetctl did; an invalid name is a CtlError. */
export function unitArg(arg: string): UnitArg {
  let name: string;
  try {
    name = normalizeUnitName(arg);
  } catch (err) {
    if (err instanceof UnitError) throw new CtlError(`invalid unit name ${quote(arg)}: ${err.detail}`);
    throw err;
  }
  const trimmed = arg.replace(/\/+$/, '');
  const base = path.basename(trimmed);
  return { arg, name, file: base === name ? trimmed : `${trimmed}.service` };
}

/** Unit names of arguments, duplicates removed, order kept. */
export function unitNames(args: readonly string[]): string[] {
  return [...new Set(args.map((a) => unitArg(a).name))];
}

/** Refuses templates where only instances make sense. */
export function refuseTemplates(names: readonly string[], verb: string): void {
  for (const n of names) {
    const parsed = parseUnitName(n);
    if (parsed.isTemplate) {
      throw new CtlError(`${n} is a template and cannot be ${verb}; ${verb.replace(/ed$/, '')} an instance such as ${parsed.prefix}@1.${parsed.type}`);
    }
  }
}

/**
 * Reads a local file: its bytes (or text), undefined when there is none.
 * Bytes, not text: the unit parser decodes them strictly, so a file that is
 * not UTF-8 is refused by name instead of stored with U+FFFD in place of
 * its bad bytes (which Node's 'utf8' decoding would do).
 */
export type FileReader = (file: string) => Uint8Array | string | undefined;

export function localReader(cwd: string): FileReader {
  return (file) => {
    const full = path.resolve(cwd, file);
    try {
      return readFileSync(full);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw new CtlError(`cannot read unit file ${file}: ${(err as Error).message}`);
    }
  };
}

export interface SubmitPlan {
  /** Units to write (new ones, and with --replace changed ones), in argument order. */
  writes: NewUnit[];
  /** Names that exist and were left as they are. */
  kept: string[];
  warnings: string[];
}

/** Unknown [X-Fleet] keys: refused, or with --allow-unknown-keys warned about (keys of a newer version). */
interface ParseFlags {
  allowUnknownKeys?: boolean | undefined;
}

/** Parses a unit file, turning the parser's refusal into a one-line CtlError naming file and line. */
function parseFile(name: string, text: Uint8Array | string, file: string, flags: ParseFlags, fromRegistry = false): ParsedUnit {
  try {
    return parseUnit(name, text, flags);
  } catch (err) {
    if (!(err instanceof UnitError)) throw err;
    if (fromRegistry) throw new CtlError(`${file}: ${err.message}`);
    throw new CtlError(`${file}${err.line !== undefined ? ` line ${err.line}` : ''}: ${err.detail}`);
  }
}

function fromTemplate(template: ParsedUnit, name: string, where: string, flags: ParseFlags): ParsedUnit {
  try {
    return instantiate(template, name, flags);
  } catch (err) {
    if (err instanceof UnitError) throw new CtlError(`${where}: ${err.message}`);
    throw err;
  }
}

function record(p: ParsedUnit, name: string): NewUnit {
  return { name, text: p.text, hash: p.hash, global: p.requirements.global };
}

/**
 * Works out what submitting `args` means, reading the registry and local
 * files but writing nothing: the caller writes `writes` in one batch, so one
 * bad file means nothing is submitted.
 */
export async function planSubmit(
  driver: CtlDriver,
  args: readonly string[],
  opts: { replace: boolean; read: FileReader } & ParseFlags,
): Promise<SubmitPlan> {
  const flags: ParseFlags = { allowUnknownKeys: opts.allowUnknownKeys };
  const parsedArgs = [...new Map(args.map((a) => unitArg(a)).map((u) => [u.name, u])).values()];
  const templates = parsedArgs.map((u) => templateOf(u.name)).filter((t): t is string => t !== undefined);
  const stored = await driver.getStoredUnits([...parsedArgs.map((u) => u.name), ...templates]);
  const plan: SubmitPlan = { writes: [], kept: [], warnings: [] };
  const localTemplateFile = (u: UnitArg, template: string): string => path.join(path.dirname(u.file), template);

  for (const u of parsedArgs) {
    const template = templateOf(u.name);
    const existing = stored.get(u.name);
    const localText = opts.read(u.file);
    let local: { parsed: ParsedUnit; file: string; isTemplate: boolean } | undefined;
    if (localText !== undefined) {
      local = { parsed: parseFile(u.name, localText, u.file, flags), file: u.file, isTemplate: false };
    } else if (template && (existing || !stored.has(template))) {
      const tfile = localTemplateFile(u, template);
      const ttext = opts.read(tfile);
      if (ttext !== undefined) {
        local = { parsed: fromTemplate(parseFile(template, ttext, tfile, flags), u.name, tfile, flags), file: tfile, isTemplate: true };
      }
    }

    if (existing) {
      if (local && local.parsed.hash !== existing.hash) {
        if (opts.replace) {
          plan.writes.push(record(local.parsed, u.name));
          pushWarnings(plan, local.parsed);
          continue;
        }
        plan.warnings.push(
          `unit ${u.name} in the registry differs from the local ${local.isTemplate ? 'template ' : ''}unit file ${local.file}; add --replace to replace it`,
        );
      }
      plan.kept.push(u.name);
      continue;
    }
    if (local && !local.isTemplate) {
      plan.writes.push(record(local.parsed, u.name));
      pushWarnings(plan, local.parsed);
      continue;
    }
    const storedTemplate = template ? stored.get(template) : undefined;
    if (template && storedTemplate) {
      const parsed = fromTemplate(parseFile(template, storedTemplate.text, `template ${template} in the registry`, flags, true), u.name, template, flags);
      const tlocal = opts.read(localTemplateFile(u, template));
      if (tlocal !== undefined) {
        const lt = parseFile(template, tlocal, localTemplateFile(u, template), flags);
        if (lt.hash !== storedTemplate.hash) {
          plan.warnings.push(`template ${template} in the registry differs from the local file ${localTemplateFile(u, template)}; ${u.name} is made from the registry's`);
        }
      }
      plan.writes.push(record(parsed, u.name));
      pushWarnings(plan, parsed);
      continue;
    }
    if (local) {
      plan.writes.push(record(local.parsed, u.name));
      pushWarnings(plan, local.parsed);
      continue;
    }
    throw new CtlError(
      template
        ? `unit ${u.name} not found: not in the registry, no file ${u.file}, and no template ${template} in the registry or at ${localTemplateFile(u, template)}`
        : `unit ${u.name} not found: not in the registry and no file ${u.file}`,
    );
  }
  return plan;
}

function pushWarnings(plan: SubmitPlan, p: ParsedUnit): void {
  plan.warnings.push(...p.warnings);
}

export type { StoredUnit };
