import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  escapeRaw,
  rawExcerpt,
  readMachineEvent,
  readMachineStatus,
  unstorableInText,
  unstorableInValue,
} from '../../core/inbox';
import { readIncomingScan } from '../../core/job-status';

/** Undoes escapeRaw's escapes (for a test only). */
function unescape(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length;) {
    if (text[i] === '\\' && text[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 2;
    } else if (text[i] === '\\' && text[i + 1] === 'x') {
      bytes.push(parseInt(text.slice(i + 2, i + 4), 16));
      i += 4;
    } else if (text.startsWith('\\u0000', i)) {
      bytes.push(0);
      i += 6;
    } else {
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...Buffer.from(ch, 'utf8'));
      i += ch.length;
    }
  }
  return Buffer.from(bytes);
}

describe('reading machine messages for the inbox (core/inbox)', () => {
  it('finds what PostgreSQL text cannot hold: NUL and lone UTF-16 surrogates, not surrogate pairs', () => {
    assert.equal(unstorableInText('plate 7 ✓ 😀'), undefined);
    assert.equal(unstorableInText('a\u0000b'), 'a NUL character');
    assert.equal(unstorableInText('\ud800x'), 'a lone UTF-16 surrogate');
    assert.equal(unstorableInText('x\udc00'), 'a lone UTF-16 surrogate');
    assert.equal(
      unstorableInValue({ ops: ['ok', 'b\u0000'] }, 'the scan'),
      'the scan.ops[1] holds a NUL character',
    );
    assert.equal(
      unstorableInValue({ ['k\ud800']: 1 }),
      'a field name in the message holds a lone UTF-16 surrogate',
    );
  });

  it('keeps valid UTF-8 as it is and escapes the rest so that nothing of it is lost (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const { text, escaped } = escapeRaw(Buffer.from(bytes));
        assert.equal(unstorableInText(text), undefined, 'the text is storable');
        if (!escaped) assert.equal(text, Buffer.from(bytes).toString('utf8'));
        else assert.deepEqual(unescape(text), Buffer.from(bytes), 'the bytes can be read back');
      }),
      { numRuns: 500 },
    );
  });

  it('escapes a string with NUL or lone surrogates, leaving surrogate pairs', () => {
    assert.deepEqual(escapeRaw('a\\b'), { text: 'a\\b', escaped: false });
    assert.deepEqual(escapeRaw('a\u0000\ud800😀\\'), { text: 'a\\u0000\\ud800😀\\\\', escaped: true });
  });

  it('keeps an excerpt of a long payload and says so', () => {
    const kept = rawExcerpt('x'.repeat(5000), 4096);
    assert.equal(kept.text.length, 4096);
    assert.match(kept.note ?? '', /first 4096 of 5000 characters/);
  });

  it('reads an event as any JSON PostgreSQL can hold, and says why otherwise', () => {
    assert.deepEqual(readMachineEvent(Buffer.from('{"job_id": 1, "status": "completed"}')), {
      ok: true,
      value: { job_id: 1, status: 'completed' },
    });
    assert.deepEqual(readMachineEvent(Buffer.from('done')), { ok: false, reason: 'the event is not JSON' });
    assert.match((readMachineEvent('{"status": "\\u0000"}') as { reason: string }).reason, /NUL/);
    assert.match((readMachineEvent(Buffer.from([0x7b, 0xff])) as { reason: string }).reason, /not UTF-8/);
  });

  it('records a status that is not an object as unknown, with an excerpt of what came', () => {
    assert.deepEqual(readMachineStatus(Buffer.from('{"state": "busy"}')), { state: 'busy' });
    assert.deepEqual(readMachineStatus(Buffer.from('up')), { state: 'unknown', raw: 'up' });
  });

  it('rejects scans that could never be stored, with the reason', () => {
    const reasons = [
      '{"code": "A\\u0000", "operations": []}',
      '{"code": "A\\ud800", "operations": []}',
      '{"code": "A", "operations": [], "user_id": "\\u0000"}',
      '{"code": "A", "operations": [], "scanned_at": "+099999-01-01T00:00:00Z"}',
      '{"code": "A", "operations": [], "scanned_at": "0000-01-01T00:00:00Z"}',
    ].map((p) => {
      const read = readIncomingScan(p);
      return read.ok ? 'stored' : read.reason;
    });
    assert.deepEqual(reasons, [
      'the scan.code holds a NUL character, which cannot be stored',
      'the scan.code holds a lone UTF-16 surrogate, which cannot be stored',
      'the scan.user_id holds a NUL character, which cannot be stored',
      'scanned_at must be a time between the years 1970 and 9999',
      'scanned_at must be a time between the years 1970 and 9999',
    ]);
  });
});
