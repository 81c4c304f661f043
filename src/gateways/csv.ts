import { ValidationError } from '../errors.ts';

/**
 * A reader for comma-separated files as RFC 4180 defines them (https://www.rfc-editor.org/rfc/rfc4180),
 * written here because no CSV library is installed: fields separated by commas, records by CRLF (a
 * lone LF is taken too, as spreadsheets on Linux and macOS write it; a lone CR outside quotes is text),
 * a field in double quotes may hold commas, line breaks and doubled quotes (`""` is one `"`), and a
 * UTF-8 byte order mark at the start (Excel's "CSV UTF-8") is dropped. Lines that are entirely empty
 * (a trailing line break, a blank line between records) are skipped.
 */

/**
 * One record of the file: `row` is its number as a spreadsheet shows it (the first record is row 1;
 * a skipped empty line keeps its number, a line break inside a quoted field does not start a row).
 */
export interface CsvRecord {
  row: number;
  fields: string[];
}

/**
 * Reads `text` into its records, nothing trimmed or converted.
 * @throws ValidationError (422, field `row N`) for a quote inside an unquoted field, text after a
 * closing quote, or a quoted field still open at the end of the file: the whole file is refused
 */
export function readCsv(text: string): CsvRecord[] {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const unquoted = /(?:[^,\r\n"]|\r(?!\n))*/y;
  const records: CsvRecord[] = [];
  let row = 1;
  let fields: string[] = [];
  let blank = true;
  let pos = 0;
  const refuse = (why: string): never => {
    throw new ValidationError(`not a valid CSV file: row ${row}: ${why}`, { [`row ${row}`]: why });
  };
  while (pos < source.length) {
    let field: string;
    if (source[pos] === '"') {
      blank = false;
      const parts: string[] = [];
      let from = pos + 1;
      for (;;) {
        const quote = source.indexOf('"', from);
        if (quote === -1)
          refuse('a quoted field is still open at the end of the file (a closing quote is missing)');
        parts.push(source.slice(from, quote));
        if (source[quote + 1] !== '"') {
          pos = quote + 1;
          break;
        }
        parts.push('"');
        from = quote + 2;
      }
      field = parts.join('');
      const next = source[pos];
      if (next !== undefined && next !== ',' && next !== '\n' && !source.startsWith('\r\n', pos)) {
        refuse(`text after the closing quote of field ${fields.length + 1}`);
      }
    } else {
      unquoted.lastIndex = pos;
      field = unquoted.exec(source)?.[0] ?? '';
      pos += field.length;
      if (source[pos] === '"')
        refuse(`a quote inside the unquoted field ${fields.length + 1} (quote the whole field)`);
      if (field !== '') blank = false;
    }
    fields.push(field);
    if (source[pos] === ',') {
      pos += 1;
      blank = false;
      if (pos === source.length) fields.push('');
      continue;
    }
    pos += source.startsWith('\r\n', pos) ? 2 : 1;
    if (!blank) records.push({ row, fields });
    row += 1;
    fields = [];
    blank = true;
  }
  if (fields.length > 0) records.push({ row, fields }); // the file ended on a comma: `a,b,`
  return records;
}
