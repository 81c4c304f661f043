/**
 * HTML for the operators' console, escaped by construction: `h\`…\`` escapes every interpolated value
 * (text and attribute values alike) except another `h` fragment or an array of them, so a value can
 * only reach a page as text.
 */
export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** One interpolated value: a fragment as it is, an array joined, anything else escaped (a Date as ISO 8601). */
function piece(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(piece).join('');
  if (value instanceof Date) return escapeHtml(value.toISOString());
  if (value === false || value === null || value === undefined) return '';
  return escapeHtml(value);
}

/** The tagged template of console HTML: `h\`<td>${value}</td>\`` (value escaped). */
export function h(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let text = strings[0] ?? '';
  values.forEach((value, i) => {
    text += piece(value) + (strings[i + 1] ?? '');
  });
  return new Html(text);
}
