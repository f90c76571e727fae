// Naming the field of a JSON body that holds text UTF-8 cannot be (src/api/json-field.ts).
import { describe, expect, it } from 'vitest';
import { fieldAtEnd, illFormedField } from '../../../src/api/json-field.js';

describe('fieldAtEnd: the field a cut JSON text ends in', () => {
  it.each<[string, string | undefined]>([
    ['{"options":[{"section":"Unit","name":"Description","value":"caf', 'options[0].value'],
    ['{"desiredState":"inactive","options":[{"section":"Unit"},{"value":"x","name":"Descr', 'options[1].name'],
    ['[{"op":"add","path":"/m/metadata/k","value":"a"},{"op":"add","value":"', '[1].value'],
    ['{"a\\"b":{"odd key":"', '["a\\"b"]["odd key"]'],
    ['{"a":{"x":"1","', 'a field name in a'],
    ['{"', 'a field name'],
    ['"', 'the body'],
    ['{"a":[1,[2,"', 'a[1][1]'],
    ['{"a":', undefined],
    ['{"a":"b"} ', undefined],
  ])('%s', (prefix, field) => {
    expect(fieldAtEnd(prefix)).toBe(field);
  });
});

describe('illFormedField: the first lone surrogate of a parsed body', () => {
  it('names values and field names', () => {
    expect(illFormedField(JSON.parse('{"options":[{"value":"ok"},{"value":"x\\uD800"}]}'))).toEqual({
      field: 'options[1].value',
      fault: { offset: 1, message: 'not valid UTF-8 (lone surrogate \\uD800 at character 1)' },
    });
    expect(illFormedField(JSON.parse('[{"op":"add","value":"\\uDC00"}]'))?.field).toBe('[0].value');
    expect(illFormedField(JSON.parse('{"a":{"\\uD83D":"x"}}'))?.field).toBe('a field name in a');
    expect(illFormedField('\uD800')?.field).toBe('the body');
  });

  it('takes whole surrogate pairs and other values', () => {
    expect(illFormedField(JSON.parse('{"a":["\\uD83D\\uDE00",1,null,true,{"b":"é"}]}'))).toBeUndefined();
  });
});
