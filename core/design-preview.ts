// The design preview of an engraving job's design ("generate preview"), without an outside
// service: an SVG of the item's engraving area with the job's text lines centred on it, in
// the job's font where the viewer has it. Pure, so the route and the tests draw the same.

export interface PreviewInput {
  itemName: string;
  text: readonly string[];
  font?: string | null;
  /** Shown small under the plate when the job has artwork (the artwork itself is not fetched). */
  artworkUrl?: string | null;
}

const WIDTH = 600;
const LINE_HEIGHT = 56;

/** Text made safe inside SVG (XML) text and attribute values. */
export function xmlText(value: string): string {
  return (
    value
      // Characters XML 1.0 does not allow at all.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

export function previewSvg(input: PreviewInput): string {
  const lines = input.text.length > 0 ? input.text : [''];
  const plateHeight = Math.max(160, lines.length * LINE_HEIGHT + 80);
  const height = plateHeight + 90;
  const font = xmlText(input.font?.trim() || 'serif');
  const firstBaseline = 40 + (plateHeight - lines.length * LINE_HEIGHT) / 2 + LINE_HEIGHT * 0.7;
  const rows = lines
    .map(
      (line, i) =>
        `<text x="${WIDTH / 2}" y="${Math.round(firstBaseline + i * LINE_HEIGHT)}" text-anchor="middle" font-family="${font}" font-size="40" fill="#2b2b2b">${xmlText(line)}</text>`,
    )
    .join('\n  ');
  const artwork = input.artworkUrl
    ? `\n  <text x="${WIDTH / 2}" y="${height - 18}" text-anchor="middle" font-family="sans-serif" font-size="14" fill="#555">artwork: ${xmlText(input.artworkUrl.slice(0, 120))}</text>`
    : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">
  <title>${xmlText(`Engraving preview: ${input.itemName}`)}</title>
  <rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#ffffff"/>
  <rect x="20" y="40" width="${WIDTH - 40}" height="${plateHeight}" rx="18" fill="#d9b65c" stroke="#8a6d1f" stroke-width="4"/>
  <text x="${WIDTH / 2}" y="26" text-anchor="middle" font-family="sans-serif" font-size="18" fill="#333">${xmlText(input.itemName)}</text>
  ${rows}${artwork}
</svg>
`;
}
