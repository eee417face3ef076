// What is kept of a message that failed authentication or its signature: never the whole of
// it (a stranger must not be able to fill the disk through the log of refusals), but enough to
// recognise it: its first bytes as text, its size, and a hash that matches it if it comes again.
import crypto from 'node:crypto';

/** Bytes of a refused message kept as text. */
export const EXCERPT_BYTES = 256;

export interface Excerpt {
  excerpt: string;
  bytes: number;
  sha256: string;
  truncated: boolean;
}

export function excerptOf(raw: Buffer | string, keep = EXCERPT_BYTES): Excerpt {
  const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'utf8');
  // Decoding a cut multi-byte character gives U+FFFD, and NUL cannot be stored in jsonb text: both are replaced.
  const excerpt = bytes.subarray(0, keep).toString('utf8').replaceAll('\u0000', '\\u0000');
  return {
    excerpt,
    bytes: bytes.length,
    sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
    truncated: bytes.length > keep,
  };
}

/** The same, for a log line: at most `keep` characters of the text, control characters escaped. */
export function lineExcerpt(text: string, keep = 120): string {
  const cut = text.length > keep ? `${text.slice(0, keep)}… (${text.length} characters)` : text;
  // eslint-disable-next-line no-control-regex -- control characters are what this escapes
  return cut.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
