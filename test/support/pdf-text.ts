import { inflateSync } from 'node:zlib';

const WIN_ANSI = new TextDecoder('windows-1252');

/**
 * The text of a PDF pdfkit wrote with its built-in fonts: each content stream (its `/Length` bytes
 * after `stream\n`) inflated (FlateDecode, pdfkit's default compression) and each text-showing
 * operator (`[<hex> kern <hex>] TJ`, `<hex> Tj`) read as one line, its hex strings decoded as WinAnsi
 * (the built-in fonts' encoding). Enough to check that a document prints the numbers the API shows,
 * without a PDF library in the tests. The length, not the `endstream` keyword, bounds a stream: a
 * compressed stream may end with any byte, a carriage return too (read as part of the keyword's line
 * break, the stream lost its last byte and no text was found: once in a few hundred documents).
 */
export function pdfText(pdf: Buffer): string[] {
  const raw = pdf.toString('latin1');
  const lines: string[] = [];
  for (const match of raw.matchAll(/\/Length (\d+)[\s\S]*?>>\nstream\n/g)) {
    const start = match.index + match[0].length;
    const stream = raw.slice(start, start + Number(match[1]));
    let content: string;
    try {
      content = inflateSync(Buffer.from(stream, 'latin1')).toString('latin1');
    } catch {
      content = stream;
    }
    for (const op of content.matchAll(/\[((?:<[0-9a-fA-F]*>|[-\d.\s])*)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj/g)) {
      const hex =
        op[1] !== undefined ? [...op[1].matchAll(/<([0-9a-fA-F]*)>/g)].map((h) => h[1]!).join('') : op[2]!;
      lines.push(WIN_ANSI.decode(Buffer.from(hex, 'hex')));
    }
  }
  return lines;
}
