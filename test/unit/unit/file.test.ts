import { describe, expect, it } from 'vitest';
import type { UnitFile } from '../../../src/unit/file.js';
import {
  DEFAULT_MAX_UNIT_BYTES,
  getLastValue,
  getValues,
  hasSection,
  mergeSections,
  parseUnitFile,
  serializeUnitFile,
} from '../../../src/unit/file.js';
import { UnitError } from '../../../src/unit/errors.js';

function entries(text: string, section = 'S'): [string, string][] {
  const file = parseUnitFile(text);
  return (file.sections.find((s) => s.name === section)?.entries ?? []).map((e) => [e.key, e.value]);
}

function refusal(input: string | Uint8Array, opts: { unit?: string; maxBytes?: number } = {}): UnitError {
  try {
    parseUnitFile(input, opts);
  } catch (e) {
    if (e instanceof UnitError) return e;
    throw e;
  }
  throw new Error('expected a UnitError');
}

describe('parseUnitFile: what systemd reads', () => {
  it.each<[string, string, [string, string][]]>([
    ['one entry', '[S]\nA=1\n', [['A', '1']]],
    ['repeated keys kept in order', '[S]\nA=1\nB=2\nA=3\n', [['A', '1'], ['B', '2'], ['A', '3']]],
    ['# comments', '[S]\n# A=0\nA=1\n', [['A', '1']]],
    ['; comments', '[S]\n; A=0\nA=1\n', [['A', '1']]],
    ['indented comments', '[S]\n   \t# A=0\nA=1\n', [['A', '1']]],
    ['# inside a value is not a comment', '[S]\nA=1 # not a comment\n', [['A', '1 # not a comment']]],
    ['blanks around key and value', '[S]\n  A \t=  \t1 2  \n', [['A', '1 2']]],
    ['split at the first =', '[S]\nEnvironment=A=B C=D\n', [['Environment', 'A=B C=D']]],
    ['empty value kept', '[S]\nA=1\nA=\nA=2\n', [['A', '1'], ['A', ''], ['A', '2']]],
    ['continuation becomes a space', '[S]\nA=1\\\n2\n', [['A', '1 2']]],
    ['continuation keeps the next line\'s indentation', '[S]\nA=1 \\\n   2\n', [['A', '1     2']]],
    ['comments inside a continuation are skipped', '[S]\nA=1\\\n# x\n; y\n  2\n', [['A', '1   2']]],
    ['several continuations', '[S]\nA=a\\\nb\\\nc\n', [['A', 'a b c']]],
    ['escaped backslash does not continue', '[S]\nA=x\\\\\nB=y\n', [['A', 'x\\\\'], ['B', 'y']]],
    ['backslash then blank does not continue', '[S]\nA=x\\ \nB=y\n', [['A', 'x\\'], ['B', 'y']]],
    ['continuation at end of file', '[S]\nA=x\\', [['A', 'x']]],
    ['continuation into an empty line', '[S]\nA=x \\\n\nB=y\n', [['A', 'x'], ['B', 'y']]],
    ['CRLF line ends', '[S]\r\nA=1\r\nB=2\r\n', [['A', '1'], ['B', '2']]],
    ['lone CR line ends', '[S]\rA=1\rB=2', [['A', '1'], ['B', '2']]],
    ['no final newline', '[S]\nA=1', [['A', '1']]],
    ['byte-order mark', '\uFEFF[S]\nA=1\n', [['A', '1']]],
    ['blank lines', '\n\n[S]\n\n  \nA=1\n\n', [['A', '1']]],
    ['vertical tab is not a blank to systemd', '[S]\nA=\u000b1\n', [['A', '\u000b1']]],
    ['keys with spaces inside', '[S]\nSome Key=1\n', [['Some Key', '1']]],
    ['quotes are kept', '[S]\nA="x y" \'z\'\n', [['A', '"x y" \'z\'']]],
    ['non-ASCII', '[S]\nDescription=Grüße ☺\n', [['Description', 'Grüße ☺']]],
  ])('%s', (_label, text, expected) => {
    expect(entries(text)).toEqual(expected);
  });

  it('merges repeated section headers, keeping entry order', () => {
    const file = parseUnitFile('[A]\nx=1\n[B]\ny=2\n[A]\nx=3\nz=4\n');
    expect(file).toEqual({
      sections: [
        { name: 'A', entries: [{ key: 'x', value: '1' }, { key: 'x', value: '3' }, { key: 'z', value: '4' }] },
        { name: 'B', entries: [{ key: 'y', value: '2' }] },
      ],
    });
  });

  it('drops sections without entries', () => {
    expect(parseUnitFile('[A]\n# nothing\n[B]\nx=1\n[C]\n')).toEqual({ sections: [{ name: 'B', entries: [{ key: 'x', value: '1' }] }] });
  });

  it('reads an empty or comment-only file as no sections', () => {
    expect(parseUnitFile('')).toEqual({ sections: [] });
    expect(parseUnitFile('# just a comment\n\n; another\n')).toEqual({ sections: [] });
  });

  it('accepts bytes as well as strings', () => {
    const text = '[Unit]\nDescription=Grüße\n';
    expect(parseUnitFile(new TextEncoder().encode(text))).toEqual(parseUnitFile(text));
    expect(parseUnitFile(new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(text)]))).toEqual(parseUnitFile(text));
  });

  it('allows odd but valid section names', () => {
    expect(parseUnitFile('[X-Fleet]\nA=1\n[a]b]\nB=2\n').sections.map((s) => s.name)).toEqual(['X-Fleet', 'a]b']);
  });
});

describe('parseUnitFile: refusals', () => {
  it.each<[string, string, string, number | undefined]>([
    ['assignment before any section', 'A=1\n[S]\n', 'file.outside-section', 1],
    ['line without =', '[S]\nA=1\nExecStart /bin/true\n', 'file.missing-equals', 3],
    ['line without key', '[S]\n=1\n', 'file.missing-key', 2],
    ['unterminated header', '[S]\n[Service\nA=1\n', 'file.section-header', 2],
    ['lone bracket', '[\n', 'file.section-header', 1],
    ['empty section name', '[]\nA=1\n', 'file.section-name', 1],
    ['quote in section name', '[S"]\nA=1\n', 'file.section-name', 1],
    ['backslash in section name', '[S\\]\nA=1\n', 'file.section-name', 1],
    ['tab in section name', '[S\t1]\nA=1\n', 'file.section-name', 1],
    ['NUL character', '[S]\nA=1\0\n', 'file.nul', 2],
    ['continued line reported at its first line', '[S]\n\nfoo \\\nbar\n', 'file.missing-equals', 3],
  ])('%s', (_label, text, rule, line) => {
    const e = refusal(text, { unit: 'web.service' });
    expect(e.rule).toBe(rule);
    expect(e.line).toBe(line);
    expect(e.unit).toBe('web.service');
    expect(e.message).toMatch(new RegExp(`^web\\.service line ${line}: `));
  });

  it('refuses files over the size cap, counting UTF-8 bytes', () => {
    expect(DEFAULT_MAX_UNIT_BYTES).toBe(512 * 1024);
    const big = `[S]\nA=${'x'.repeat(DEFAULT_MAX_UNIT_BYTES)}\n`;
    expect(refusal(big).rule).toBe('file.too-large');
    expect(refusal(new TextEncoder().encode(big)).rule).toBe('file.too-large');
    expect(refusal('[S]\nA=ééé\n', { maxBytes: 10 }).rule).toBe('file.too-large');
    expect(() => parseUnitFile('[S]\nA=eee\n', { maxBytes: 10 })).not.toThrow();
    expect(refusal(big, { unit: 'big.service' }).message).toMatch(/^big\.service: .*more than the limit of 524288 \(512 KiB\)/);
  });

  it.each<[string, number[]]>([
    ['a stray continuation byte', [0x80]],
    ['a truncated sequence', [0xc3]],
    ['an overlong encoding', [0xc0, 0xaf]],
    ['an overlong three-byte encoding', [0xe0, 0x80, 0xaf]],
    ['a UTF-8-encoded surrogate', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['an invalid lead byte', [0xff]],
  ])('refuses invalid UTF-8: %s', (_label, bad) => {
    const bytes = new Uint8Array([...new TextEncoder().encode('[S]\nA=1\nB='), ...bad, 0x0a]);
    const e = refusal(bytes, { unit: 'x.service' });
    expect(e.rule).toBe('file.encoding');
    expect(e.line).toBe(3);
    expect(e.message).toBe(`x.service line 3: not valid UTF-8 (byte 0x${bad[0]!.toString(16)} at offset 10); save the unit file as UTF-8 text`);
  });

  it('refuses strings that are not well-formed Unicode', () => {
    expect(refusal('[S]\nA=\ud800\n').rule).toBe('file.encoding');
    expect(refusal('[S]\nA=\udc00x\n').rule).toBe('file.encoding');
    expect(() => parseUnitFile('[S]\nA=\ud83d\ude00\n')).not.toThrow();
  });
});

describe('serializeUnitFile: the canonical form', () => {
  it('writes sections in order, a blank line between them, a newline after every line', () => {
    const file = parseUnitFile('# top\n[Unit]\n  Description = web  \n[Service]\nExecStart=/bin/web \\\n  --port 80\n');
    expect(serializeUnitFile(file)).toBe('[Unit]\nDescription=web\n\n[Service]\nExecStart=/bin/web    --port 80\n');
  });

  it('writes nothing for an empty file', () => {
    expect(serializeUnitFile({ sections: [] })).toBe('');
  });

  it('merges duplicate sections and leaves out empty ones in hand-built files', () => {
    const file: UnitFile = {
      sections: [
        { name: 'A', entries: [{ key: 'x', value: '1' }] },
        { name: 'E', entries: [] },
        { name: 'B', entries: [{ key: 'y', value: '2' }] },
        { name: 'A', entries: [{ key: 'x', value: '3' }] },
      ],
    };
    expect(serializeUnitFile(file)).toBe('[A]\nx=1\nx=3\n\n[B]\ny=2\n');
    expect(mergeSections(file.sections).map((s) => s.name)).toEqual(['A', 'E', 'B']);
  });

  it('strips blanks the parser would strip', () => {
    expect(serializeUnitFile({ sections: [{ name: 'A', entries: [{ key: ' k ', value: '\t v ' }] }] })).toBe('[A]\nk=v\n');
  });

  it('keeps a value ending in a backslash from reading as a continuation', () => {
    const file: UnitFile = { sections: [{ name: 'A', entries: [{ key: 'k', value: 'v\\' }, { key: 'j', value: 'w\\\\' }] }] };
    const text = serializeUnitFile(file);
    expect(text).toBe('[A]\nk=v\\ \nj=w\\\\\n');
    expect(parseUnitFile(text)).toEqual(file);
  });

  it.each<[string, UnitFile, string]>([
    ['newline in a value', { sections: [{ name: 'A', entries: [{ key: 'k', value: 'a\nb' }] }] }, 'file.invalid-value'],
    ['CR in a value', { sections: [{ name: 'A', entries: [{ key: 'k', value: 'a\rb' }] }] }, 'file.invalid-value'],
    ['= in a key', { sections: [{ name: 'A', entries: [{ key: 'k=j', value: 'v' }] }] }, 'file.invalid-key'],
    ['empty key', { sections: [{ name: 'A', entries: [{ key: ' ', value: 'v' }] }] }, 'file.invalid-key'],
    ['key starting with #', { sections: [{ name: 'A', entries: [{ key: '#k', value: 'v' }] }] }, 'file.invalid-key'],
    ['key starting with [', { sections: [{ name: 'A', entries: [{ key: '[k', value: 'v' }] }] }, 'file.invalid-key'],
    ['newline in a section name', { sections: [{ name: 'A\nB', entries: [{ key: 'k', value: 'v' }] }] }, 'file.section-name'],
    ['empty section name', { sections: [{ name: '', entries: [{ key: 'k', value: 'v' }] }] }, 'file.section-name'],
  ])('refuses what no unit file can say: %s', (_label, file, rule) => {
    expect(() => serializeUnitFile(file)).toThrow(expect.objectContaining({ rule }) as unknown as Error);
  });
});

describe('getValues, getLastValue, hasSection', () => {
  const file = parseUnitFile('[Service]\nExecStartPre=/a\nExecStartPre=/b\nExecStartPre=\nExecStartPre=/c\nUser=x\nUser=y\n[Install]\nWantedBy=multi-user.target\n');

  it('applies systemd\'s empty-value reset', () => {
    expect(getValues(file, 'Service', 'ExecStartPre')).toEqual(['/c']);
    expect(getValues(parseUnitFile('[S]\nA=1\nA=\n'), 'S', 'A')).toEqual([]);
    expect(getValues(file, 'Service', 'Missing')).toEqual([]);
    expect(getValues(file, 'Missing', 'User')).toEqual([]);
  });

  it('reads every section of that name in hand-built files', () => {
    const hand: UnitFile = { sections: [{ name: 'S', entries: [{ key: 'A', value: '1' }] }, { name: 'S', entries: [{ key: 'A', value: '2' }] }] };
    expect(getValues(hand, 'S', 'A')).toEqual(['1', '2']);
  });

  it('gives the last value for single-valued settings', () => {
    expect(getLastValue(file, 'Service', 'User')).toBe('y');
    expect(getLastValue(file, 'Service', 'Group')).toBeUndefined();
  });

  it('knows which sections have entries', () => {
    expect(hasSection(file, 'Install')).toBe(true);
    expect(hasSection(file, 'Unit')).toBe(false);
    expect(hasSection({ sections: [{ name: 'Install', entries: [] }] }, 'Install')).toBe(false);
  });
});
