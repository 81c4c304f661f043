/** A row of a document's table: label cells on the left, the amount (already formatted) on the right. */
export interface PdfRow {
  cells: string[];
  amount: string;
}

/** A section of a document: a heading, `label: value` facts, and a table of rows with totals. */
export interface PdfSection {
  heading: string;
  facts?: [label: string, value: string][];
  columns?: string[];
  rows?: PdfRow[];
  totals?: [label: string, amount: string][];
  text?: string;
}

/** A document: its title (also the PDF's metadata title) and its sections, in order. */
export interface PdfDocument {
  title: string;
  sections: PdfSection[];
}

const LEFT = 50;
const RIGHT = 545;
const AMOUNT_WIDTH = 120;

/**
 * Renders `document` as an A4 PDF with pdfkit (https://pdfkit.org) in its built-in Helvetica, so the
 * text is plain WinAnsi strings in the page's content stream. Amounts arrive formatted
 * (money/format.ts `formatAmount`): this only lays them out.
 * pdfkit is imported at the first document, not at start: loading it (fontkit decompresses its Unicode
 * tables) cost every process's start, a CLI command's included, about 0.16 CPU-seconds (2.26 -> 2.09
 * for `billhook --help`, measured on the loaded two cores).
 * @returns the PDF's bytes (`%PDF-1.3` …)
 */
export async function renderPdf(document: PdfDocument): Promise<Buffer> {
  const { default: PDFDocument } = await import('pdfkit');
  const pdf = new PDFDocument({ size: 'A4', margin: LEFT, info: { Title: document.title } });
  const chunks: Buffer[] = [];
  pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });
  pdf.font('Helvetica-Bold').fontSize(20).text(document.title, LEFT, LEFT);
  for (const section of document.sections) {
    pdf.moveDown(1).font('Helvetica-Bold').fontSize(12).text(section.heading, LEFT);
    pdf.font('Helvetica').fontSize(10);
    for (const [label, value] of section.facts ?? []) pdf.text(`${label}: ${value}`, LEFT);
    if (section.columns) row(pdf, section.columns.slice(0, -1), section.columns.at(-1) ?? '', true);
    for (const r of section.rows ?? []) row(pdf, r.cells, r.amount, false);
    for (const [label, amount] of section.totals ?? []) row(pdf, [label], amount, true);
    if (section.text) pdf.text(section.text, LEFT, undefined, { width: RIGHT - LEFT });
  }
  pdf.end();
  return done;
}

/** One table row: the cells spread over the left part, the amount right-aligned at the right edge. */
function row(pdf: PDFKit.PDFDocument, cells: string[], amount: string, bold: boolean): void {
  if (pdf.y > pdf.page.height - 80) pdf.addPage();
  const y = pdf.y;
  const width = (RIGHT - LEFT - AMOUNT_WIDTH) / Math.max(cells.length, 1);
  pdf.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(10);
  let bottom = y;
  cells.forEach((cell, i) => {
    pdf.text(cell, LEFT + i * width, y, { width: width - 6 });
    bottom = Math.max(bottom, pdf.y);
  });
  pdf.text(amount, RIGHT - AMOUNT_WIDTH, y, { width: AMOUNT_WIDTH, align: 'right' });
  pdf.x = LEFT;
  pdf.y = Math.max(bottom, pdf.y) + 2;
}
