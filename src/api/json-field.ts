// Naming the field of a JSON request body that holds text which is not
// UTF-8, so a 400 says `options[2].value` rather than only a byte offset.
import { surrogateFaultOf, type Utf8Fault } from '../utf8.js';

type Frame = { array: true; index: number } | { array: false; key: string | undefined; wantKey: boolean };

/** `options[0].value`, `["odd key"]`, `[2].path`; '' for the body itself. */
function join(path: string, step: string | number): string {
  if (typeof step === 'number') return `${path}[${step}]`;
  return /^[A-Za-z_$][\w$]*$/.test(step) ? (path === '' ? step : `${path}.${step}`) : `${path}[${JSON.stringify(step)}]`;
}

function pathOf(frames: readonly Frame[]): string {
  let path = '';
  for (const f of frames) {
    if (f.array) path = join(path, f.index);
    else if (f.key !== undefined && !f.wantKey) path = join(path, f.key);
  }
  return path;
}

function keyIn(path: string): string {
  return path === '' ? 'a field name' : `a field name in ${path}`;
}

/**
 * The field whose string the end of `prefix` (a JSON text cut just before a
 * fault) falls in, or undefined when the cut is outside any string. Reads
 * only structure and strings; the prefix need not be valid JSON beyond that.
 */
export function fieldAtEnd(prefix: string): string | undefined {
  const stack: Frame[] = [];
  let i = 0;
  while (i < prefix.length) {
    const c = prefix[i];
    const top = stack.at(-1);
    if (c === '"') {
      let j = i + 1;
      while (j < prefix.length && prefix[j] !== '"') j += prefix[j] === '\\' ? 2 : 1;
      const inKey = top !== undefined && !top.array && top.wantKey;
      if (j >= prefix.length) {
        if (inKey) return keyIn(pathOf(stack));
        const path = pathOf(stack);
        return path === '' ? 'the body' : path;
      }
      if (inKey) top.key = parseString(prefix.slice(i, j + 1));
      i = j + 1;
      continue;
    }
    if (c === '{') stack.push({ array: false, key: undefined, wantKey: true });
    else if (c === '[') stack.push({ array: true, index: 0 });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',' && top) {
      if (top.array) top.index++;
      else top.wantKey = true;
    } else if (c === ':' && top && !top.array) top.wantKey = false;
    i++;
  }
  return undefined;
}

function parseString(quoted: string): string {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return quoted.slice(1, -1);
  }
}

/** The first string (field names included) of a parsed body that UTF-8 cannot encode, with its field. */
export function illFormedField(value: unknown, path = ''): { field: string; fault: Utf8Fault } | undefined {
  if (typeof value === 'string') {
    const fault = surrogateFaultOf(value);
    return fault ? { field: path === '' ? 'the body' : path, fault } : undefined;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = illFormedField(value[i], join(path, i));
      if (found) return found;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      const fault = surrogateFaultOf(k);
      if (fault) return { field: keyIn(path), fault };
      const found = illFormedField(v, join(path, k));
      if (found) return found;
    }
  }
  return undefined;
}
