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
    let pdf: Buffer | undefined;
    let title = '';
    for (let n = 0; n < 5000 && !pdf; n++) {
      title = `Receipt op_${n.toString(36)}`;
      const candidate = await renderPdf({ title, sections: [] });
      if (lastStreamBytes(candidate).includes(0x0d)) pdf = candidate;
    }
    expect(pdf, 'a title whose content stream ends with 0x0D').toBeDefined();
    expect(pdfText(pdf!)).toContain(title);
  }, 120_000);
});
