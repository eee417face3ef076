// The design preview (core/design-preview): whatever the text, the SVG stays well formed.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { previewSvg, xmlText } from '../../core/design-preview';

describe('design preview SVG', () => {
  it('draws one centred text element per line, in the job font', () => {
    const svg = previewSvg({ itemName: 'Cup 10 in', text: ['Club Champion', '2026'], font: 'Garamond' });
    assert.equal((svg.match(/text-anchor="middle" font-family="Garamond"/g) ?? []).length, 2);
    assert.match(svg, /<title>Engraving preview: Cup 10 in<\/title>/);
  });

  it('property: any text leaves no markup of its own in the SVG', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 6 }), fc.string(), (lines, font) => {
        const svg = previewSvg({ itemName: 'item', text: lines, font });
        const escapedLines = lines.map(xmlText);
        // Only our own tags: every '<' starts one of the elements we write.
        const tags = svg.match(/<\/?([a-z?]+)/g) ?? [];
        return (
          tags.every((t) =>
            ['<?xml', '<svg', '</svg', '<title', '</title', '<rect', '<text', '</text'].includes(t),
          ) && escapedLines.every((l) => !/[<>"]/.test(l) && !/&(?!(amp|lt|gt|quot|apos);)/.test(l))
        );
      }),
    );
  });
});
