import assert from 'node:assert/strict';
import { excerptOf, lineExcerpt } from '../../core/excerpt';
import { SourceLimiter } from '../../core/rate-limit';

describe('refusal logs: per-source limit and bounded excerpts', () => {
  it('lets a source through a few times a window, then counts what it left out', () => {
    const limiter = new SourceLimiter(2, 60000);
    assert.deepEqual(limiter.take('10.0.0.5', 0), { allowed: true, suppressed: 0 });
    assert.deepEqual(limiter.take('10.0.0.5', 10), { allowed: true, suppressed: 0 });
    assert.deepEqual(limiter.take('10.0.0.5', 20), { allowed: false, suppressed: 1 });
    assert.deepEqual(limiter.take('10.0.0.5', 30), { allowed: false, suppressed: 2 });
    assert.deepEqual(limiter.take('10.0.0.6', 30), { allowed: true, suppressed: 0 }, 'another source');
    assert.deepEqual(limiter.take('10.0.0.5', 60000), { allowed: true, suppressed: 2 }, 'the next window');
  });

  it('remembers a bounded number of sources', () => {
    const limiter = new SourceLimiter(1, 60000, 100);
    for (let i = 0; i < 10000; i++) limiter.take(`source-${i}`, 0);
    assert.ok((limiter as unknown as { entries: Map<string, unknown> }).entries.size <= 100);
  });

  it('keeps 256 bytes of a large body, its size and a hash of the whole', () => {
    const body = Buffer.from(`{"status":"completed","pad":"${'x'.repeat(180 * 1024)}"}`);
    const excerpt = excerptOf(body);
    assert.equal(Buffer.byteLength(excerpt.excerpt), 256);
    assert.equal(excerpt.bytes, body.length);
    assert.match(excerpt.sha256, /^[0-9a-f]{64}$/);
    assert.equal(excerpt.truncated, true);
    assert.ok(JSON.stringify(excerpt).length < 400);
  });

  it('keeps an excerpt storable as JSON text: no NUL, no lone surrogate', () => {
    const excerpt = excerptOf(Buffer.from([0x00, 0xed, 0xa0, 0x80, 0x41, 0xe2, 0x82]));
    assert.equal(excerpt.excerpt.includes('\u0000'), false);
    assert.doesNotMatch(excerpt.excerpt, /[\ud800-\udfff]/);
  });

  it('cuts a log line and escapes control characters', () => {
    assert.equal(lineExcerpt('a\nb'), 'a\\x0ab');
    assert.match(lineExcerpt('t'.repeat(70000)), /… \(70000 characters\)$/);
    assert.ok(lineExcerpt('t'.repeat(70000)).length < 200);
  });
});
