import { ValidationError } from '../errors.ts';

/**
 * A reader for comma-separated files as RFC 4180 defines them (https://www.rfc-editor.org/rfc/rfc4180),
 * written here because no CSV library is installed: fields separated by commas, records by CRLF (a lone
 * LF is taken too, as spreadsheets on Linux and macOS write it), a field in double quotes may hold
 * commas, line breaks and doubled quotes (`""` is one `"`), and a UTF-8 byte order mark at the start
 * (Excel's "CSV UTF-8") is dropped. Lines that are entirely empty (a trailing line break, a blank line
 * between records) are skipped.
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
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let wasQuoted = false;
  let row = 1;
  const refuse = (why: string): never => {
    throw new ValidationError(`not a valid CSV file: row ${row}: ${why}`, { [`row ${row}`]: why });
  };
  const endRecord = (): void => {
    fields.push(field);
    if (fields.length > 1 || fields[0] !== '' || wasQuoted) records.push({ row, fields });
    row += 1;
    fields = [];
    field = '';
    wasQuoted = false;
  };
  for (let i = 0; i < source.length; i += 1) {
    const char = source[i];
    if (quoted) {
      if (char !== '"') field += char;
      else if (source[i + 1] === '"') {
        field += '"';
        i += 1;
      } else {
        quoted = false;
        const next = source[i + 1];
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') {
          refuse(`text after the closing quote of field ${fields.length + 1}`);
        }
      }
    } else if (char === '"') {
      if (field !== '')
        refuse(`a quote inside the unquoted field ${fields.length + 1} (quote the whole field)`);
      quoted = true;
      wasQuoted = true;
    } else if (char === ',') {
      fields.push(field);
      field = '';
    } else if (char === '\r' && source[i + 1] === '\n') {
      // CRLF: the LF ends the record.
    } else if (char === '\n') {
      endRecord();
    } else {
      field += char;
    }
  }
  if (quoted) refuse(`a quoted field is still open at the end of the file (a closing quote is missing)`);
  if (field !== '' || fields.length > 0 || wasQuoted) endRecord();
  return records;
}
