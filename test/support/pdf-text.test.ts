import { describe, expect, it } from 'vitest';
import { renderPdf } from '../../src/http/documents/pdf.ts';
import { pdfText } from './pdf-text.ts';

/** The last byte of each of `pdf`'s content streams, inflated or not (by their `/Length`). */
function lastStreamBytes(pdf: Buffer): number[] {
  const raw = pdf.toString('latin1');
  return [...raw.matchAll(/\/Length (\d+)[\s\S]*?>>\nstream\n/g)].map((match) =>
    raw.charCodeAt(match.index + match[0].length + Number(match[1]) - 1),
  );
}

describe('pdfText (the tests’ reader of billhook’s PDFs)', () => {
  it('reads a document whose compressed content stream ends with a carriage return (0x0D)', async () => {
    // A receipt title whose compressed page content happens to end with byte 0x0D: the old reader
    // took that byte for part of `\r\nendstream`, lost it, failed to inflate and found no text.
    // Found once by rendering `Receipt op_<n in base 36>` for n = 0, 1, … (n = 666); rendering is
    // deterministic, and the first expectation says so if a PDF library upgrade changes it.
    const title = 'Receipt op_ii';
    const pdf = await renderPdf({ title, sections: [] });
    expect(lastStreamBytes(pdf), 'the content stream of this title ends with 0x0D').toContain(0x0d);
    expect(pdfText(pdf)).toContain(title);
  });
});
