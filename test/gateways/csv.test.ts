import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import { readCsv } from '../../src/gateways/csv.ts';

/** The `fields` of the ValidationError `read` throws. */
function refusal(read: () => unknown): Record<string, string> | undefined {
  try {
    read();
  } catch (error) {
    if (error instanceof ValidationError) return error.fields;
    throw error;
  }
  throw new Error('expected a ValidationError');
}

// RFC 4180 (https://www.rfc-editor.org/rfc/rfc4180) §2: records end with CRLF, fields are separated by
// commas, a field in double quotes may hold commas, line breaks and doubled quotes.
describe('readCsv', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks', () => {
    const text = 'a,b,c\r\n"x, y","say ""hi""","two\r\nlines"\r\nplain,,""\r\n';
    expect(readCsv(text)).toEqual([
      { row: 1, fields: ['a', 'b', 'c'] },
      { row: 2, fields: ['x, y', 'say "hi"', 'two\r\nlines'] },
      { row: 3, fields: ['plain', '', ''] },
    ]);
  });

  it('reads CRLF, LF, a byte order mark and a missing final line break alike', () => {
    const expected = [
      { row: 1, fields: ['a', 'b'] },
      { row: 2, fields: ['1', '2'] },
    ];
    expect(readCsv('a,b\r\n1,2\r\n')).toEqual(expected);
    expect(readCsv('a,b\n1,2\n')).toEqual(expected);
    expect(readCsv('\uFEFFa,b\r\n1,2')).toEqual(expected);
  });

  it('keeps an empty last field and a lone carriage return inside a field', () => {
    expect(readCsv('a,b,\r\nx\ry,')).toEqual([
      { row: 1, fields: ['a', 'b', ''] },
      { row: 2, fields: ['x\ry', ''] },
    ]);
  });

  it('skips empty lines but keeps the row numbers a spreadsheet shows', () => {
    expect(readCsv('a\r\n\r\nb\r\n\r\n')).toEqual([
      { row: 1, fields: ['a'] },
      { row: 3, fields: ['b'] },
    ]);
    expect(readCsv('""\r\n')).toEqual([{ row: 1, fields: [''] }]);
  });

  it('refuses a quote inside an unquoted field, text after a closing quote, an unclosed quote', () => {
    expect(refusal(() => readCsv('a,b\r\n1,x"y\r\n'))).toEqual({
      'row 2': 'a quote inside the unquoted field 2 (quote the whole field)',
    });
    expect(refusal(() => readCsv('a,b\r\n"1"x,2\r\n'))).toEqual({
      'row 2': 'text after the closing quote of field 1',
    });
    expect(refusal(() => readCsv('a,b\r\n"1"\r2\r\n'))).toEqual({
      'row 2': 'text after the closing quote of field 1',
    });
    expect(refusal(() => readCsv('a,b\r\n1,"2\r\n3,4\r\n'))).toEqual({
      'row 2': 'a quoted field is still open at the end of the file (a closing quote is missing)',
    });
  });
});
