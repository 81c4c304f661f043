import { inflateSync } from 'node:zlib';

const WIN_ANSI = new TextDecoder('windows-1252');

/**
 * The text of a PDF pdfkit wrote with its built-in fonts: each content stream inflated (FlateDecode,
 * pdfkit's default compression) and each text-showing operator (`[<hex> kern <hex>] TJ`, `<hex> Tj`)
 * read as one line, its hex strings decoded as WinAnsi (the built-in fonts' encoding). Enough to check
 * that a document prints the numbers the API shows, without a PDF library in the tests.
 */
export function pdfText(pdf: Buffer): string[] {
  const raw = pdf.toString('latin1');
  const lines: string[] = [];
  for (const match of raw.matchAll(/stream\r?\n([\s\S]*?)\r?\nendstream/g)) {
    const bytes = Buffer.from(match[1]!, 'latin1');
    let content: string;
    try {
      content = inflateSync(bytes).toString('latin1');
    } catch {
      content = match[1]!;
    }
    for (const op of content.matchAll(/\[((?:<[0-9a-fA-F]*>|[-\d.\s])*)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj/g)) {
      const hex =
        op[1] !== undefined ? [...op[1].matchAll(/<([0-9a-fA-F]*)>/g)].map((h) => h[1]!).join('') : op[2]!;
      lines.push(WIN_ANSI.decode(Buffer.from(hex, 'hex')));
    }
  }
  return lines;
}
