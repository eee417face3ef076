import assert from 'node:assert/strict';
import * as fc from 'fast-check';
import {
  checkScanPatterns,
  DEFAULT_SCAN_PATTERNS,
  normaliseOperations,
  parseFileId,
  parseScan,
  parseScanCode,
  type ScanPatterns,
  splitGs1,
  stripScannerNoise,
} from '../../core/scan-code';
import configSchema from '../../nodes/scan-parser/schema.json';

// A runlist pattern that job codes do not fit, as a plant with `RL-<n>` runlist labels would set.
const NARROW: ScanPatterns = { ...DEFAULT_SCAN_PATTERNS, runlist: 'RL-\\d+' };

const GS = '\x1D';

describe('stripScannerNoise', () => {
  it('removes AIM symbology identifiers of Code 128, DataMatrix, QR and EAN', () => {
    for (const aim of [']C0', ']C1', ']d2', ']Q3', ']E0', ']e0']) {
      assert.equal(stripScannerNoise(`${aim}4604_5889_3`), '4604_5889_3', aim);
    }
  });

  it('removes the CR/LF suffix, surrounding whitespace, NUL padding and a byte-order mark', () => {
    assert.equal(stripScannerNoise('4604_5889_3\r\n'), '4604_5889_3');
    assert.equal(stripScannerNoise('\ufeff  4604_5889_3\t\n'), '4604_5889_3');
    assert.equal(stripScannerNoise('4604_5889_3\0\0\0'), '4604_5889_3');
    assert.equal(stripScannerNoise(']C1 4604_5889_3 \r'), '4604_5889_3');
  });

  it('removes an identifier added twice, by the scanner and by middleware', () => {
    assert.equal(stripScannerNoise(']C1]C14604_5889_3\r\n'), '4604_5889_3');
  });

  it('keeps GS separators and a bracket that is not an AIM identifier', () => {
    assert.equal(
      stripScannerNoise(`]d2${GS}01095011015300031${GS}4604_5889_3`),
      `${GS}01095011015300031${GS}4604_5889_3`,
    );
    assert.equal(stripScannerNoise(']-x'), ']-x');
  });
});

describe('splitGs1', () => {
  it('splits at GS and drops the empty elements a leading FNC1 or trailing GS leaves', () => {
    assert.deepEqual(splitGs1(`${GS}0109501101530003${GS}4604_5889_3${GS}`), [
      '0109501101530003',
      '4604_5889_3',
    ]);
    assert.deepEqual(splitGs1('4604_5889_3'), ['4604_5889_3']);
    assert.deepEqual(splitGs1(''), []);
  });
});

describe('parseScanCode', () => {
  it('reads a job_id_version_tag code as job and version when runlist ids look different', () => {
    assert.deepEqual(parseScanCode('4604_5889_3', NARROW), {
      kind: 'job',
      job_id: '4604_5889',
      version_tag: '3',
    });
  });

  it('reports a code that fits both the runlist and the job pattern as ambiguous', () => {
    assert.deepEqual(parseScanCode('4604_5889_3'), {
      kind: 'ambiguous',
      runlist_id: '4604_5889_3',
      job_id: '4604_5889',
      version_tag: '3',
    });
  });

  it('reads a code that fits only the runlist pattern as a runlist id', () => {
    assert.deepEqual(parseScanCode('RL-2291'), { kind: 'runlist', runlist_id: 'RL-2291' });
    assert.deepEqual(parseScanCode('RL-2291', NARROW), { kind: 'runlist', runlist_id: 'RL-2291' });
  });

  it('takes the runlist id from a runlist_id group when the pattern has one', () => {
    const patterns = { ...DEFAULT_SCAN_PATTERNS, runlist: 'RUN:(?<runlist_id>\\d+)' };
    assert.deepEqual(parseScanCode('RUN:77', patterns), { kind: 'runlist', runlist_id: '77' });
  });

  it('reads a file id even though the default runlist pattern fits it too', () => {
    assert.deepEqual(parseScanCode('FILE_1_Labex_4604_5889_80'), {
      kind: 'file',
      file_id: 'FILE_1_Labex_4604_5889_80',
      job_id: '4604_5889',
      version: '1',
      rest: '80',
    });
  });

  it('rejects a code that fits no pattern, quoting it with control characters escaped', () => {
    const result = parseScanCode('not a code\x07');
    assert.equal(result.kind, 'unparseable');
    assert.match(result.kind === 'unparseable' ? result.reason : '', /"not a code\\u0007" matches none/);
  });

  it('treats an empty pattern as that kind turned off', () => {
    const noRunlists = { ...DEFAULT_SCAN_PATTERNS, runlist: '' };
    assert.equal(parseScanCode('4604_5889_3', noRunlists).kind, 'job');
    assert.equal(parseScanCode('RL-1', noRunlists).kind, 'unparseable');
  });

  it('rejects every code, without throwing, when the patterns are invalid', () => {
    const result = parseScanCode('4604_5889_3', { ...DEFAULT_SCAN_PATTERNS, job: '(' });
    assert.equal(result.kind, 'unparseable');
    assert.match(
      result.kind === 'unparseable' ? result.reason : '',
      /job pattern is not a valid regular expression/,
    );
  });
});

describe('checkScanPatterns', () => {
  it('accepts the shipped default patterns', () => {
    assert.equal(checkScanPatterns(DEFAULT_SCAN_PATTERNS), undefined);
  });

  it('names every invalid pattern and every missing named group', () => {
    const problem = checkScanPatterns({ runlist: '[', job: '(\\d+)_(\\d+)', file: 'FILE_(?<version>\\d+)' });
    assert.match(problem ?? '', /runlist pattern is not a valid regular expression/);
    assert.match(
      problem ?? '',
      /job pattern needs the named groups \(\?<job_id>…\) and \(\?<version_tag>…\)/,
    );
    assert.match(problem ?? '', /file pattern needs the named group \(\?<job_id>…\)/);
  });

  it('rejects a source that is only valid once wrapped in a group', () => {
    assert.match(checkScanPatterns({ ...DEFAULT_SCAN_PATTERNS, runlist: 'a)(b' }) ?? '', /runlist pattern/);
  });

  it('rejects turning every kind off', () => {
    assert.match(
      checkScanPatterns({ runlist: '', job: '', file: '' }) ?? '',
      /all three scan patterns are empty/,
    );
  });

  it('has the same defaults as the node configuration schema', () => {
    const properties = configSchema.properties;
    assert.equal(properties.runlistPattern.default, DEFAULT_SCAN_PATTERNS.runlist);
    assert.equal(properties.jobPattern.default, DEFAULT_SCAN_PATTERNS.job);
    assert.equal(properties.filePattern.default, DEFAULT_SCAN_PATTERNS.file);
  });
});

describe('parseFileId', () => {
  it('splits FILE_<version>_Labex_<job_id>_<rest> as the press names its files', () => {
    assert.deepEqual(parseFileId('FILE_1_Labex_4604_5889_80'), {
      kind: 'file',
      file_id: 'FILE_1_Labex_4604_5889_80',
      job_id: '4604_5889',
      version: '1',
      rest: '80',
    });
  });

  it('keeps underscores in the rest and allows a file id without one', () => {
    const withRest = parseFileId('FILE_2_Labex_4604_5889_80_front_a');
    assert.equal(withRest.kind === 'file' ? withRest.rest : undefined, '80_front_a');
    const withoutRest = parseFileId('FILE_2_Labex_4604_5889');
    assert.equal(withoutRest.kind === 'file' ? withoutRest.job_id : undefined, '4604_5889');
  });

  it('ignores the padding of a fixed-width database column', () => {
    assert.equal(parseFileId('FILE_1_Labex_4604_5889_80   ').kind, 'file');
  });

  it('rejects what is not a file id with a reason', () => {
    assert.deepEqual(parseFileId('IMG_1_Labex_4604_5889_80'), {
      kind: 'unparseable',
      reason: '"IMG_1_Labex_4604_5889_80" is not a file id',
    });
  });
});

describe('normaliseOperations', () => {
  it('accepts a list of names, lower-cased, sorted and each once', () => {
    assert.deepEqual(normaliseOperations(['print', ' Coating ', 'coating', 'KISS_CUT']), {
      ok: true,
      operations: ['coating', 'kiss_cut', 'print'],
    });
  });

  it('accepts an object and keeps only the operations that are true', () => {
    assert.deepEqual(normaliseOperations({ coating: true, print: false, Slitter: true }), {
      ok: true,
      operations: ['coating', 'slitter'],
    });
  });

  it('reads missing operations as none', () => {
    assert.deepEqual(normaliseOperations(undefined), { ok: true, operations: [] });
    assert.deepEqual(normaliseOperations(null), { ok: true, operations: [] });
    assert.deepEqual(normaliseOperations([]), { ok: true, operations: [] });
  });

  it('rejects a name that is not text, naming its position', () => {
    assert.deepEqual(normaliseOperations(['coating', 3]), {
      ok: false,
      reason: 'operations[1] must be an operation name, got number 3',
    });
    assert.equal(normaliseOperations(['']).ok, false);
  });

  it('rejects an object value that is not true or false', () => {
    assert.deepEqual(normaliseOperations({ coating: 'yes' }), {
      ok: false,
      reason: 'operations.coating must be true or false, got the text "yes"',
    });
  });

  it('rejects one operation given as both true and false', () => {
    assert.equal(normaliseOperations({ Coating: true, coating: false }).ok, false);
    assert.deepEqual(normaliseOperations({ Coating: true, coating: true }), {
      ok: true,
      operations: ['coating'],
    });
  });

  it('rejects operations that are neither a list nor an object', () => {
    assert.equal(normaliseOperations('coating').ok, false);
    assert.equal(normaliseOperations(7).ok, false);
  });
});

describe('parseScan', () => {
  it('reads a patterns object again when a caller changes a pattern in it between scans', () => {
    const patterns: ScanPatterns = { ...DEFAULT_SCAN_PATTERNS, runlist: 'RL-\\d+' };
    assert.equal(parseScan('RL-7', patterns).kind, 'runlist');
    patterns.runlist = 'LOT-\\d+';
    assert.equal(parseScan('RL-7', patterns).kind, 'unparseable');
    assert.equal(parseScan('LOT-7', patterns).kind, 'runlist');
    patterns.runlist = '(';
    assert.match(
      (parseScan('LOT-7', patterns) as { reason: string }).reason,
      /not a valid regular expression/,
    );
  });

  it('parses a code sent as text, with no operations', () => {
    assert.deepEqual(parseScan(']C14604_5889_3\r\n', NARROW), {
      kind: 'job',
      job_id: '4604_5889',
      version_tag: '3',
      code: '4604_5889_3',
      operations: [],
    });
  });

  it('parses the scan object a machine sends, with its optional fields', () => {
    const scan = {
      code: 'RL-2291\r\n',
      operations: { coating: true, print: false },
      scanned_at: '2025-12-15T11:30:00+01:00',
      user_id: 'op-17',
      msg_id: 'm-1',
    };
    assert.deepEqual(parseScan(scan, NARROW), {
      kind: 'runlist',
      runlist_id: 'RL-2291',
      code: 'RL-2291',
      operations: ['coating'],
      scanned_at: '2025-12-15T10:30:00.000Z',
      user_id: 'op-17',
      msg_id: 'm-1',
    });
  });

  it('takes the code from the GS1 element that fits the most specific pattern and keeps the rest', () => {
    const result = parseScan(`]d2${GS}0109501101530003${GS}104711${GS}4604_5889_3\r\n`);
    assert.deepEqual(result, {
      kind: 'ambiguous',
      runlist_id: '4604_5889_3',
      job_id: '4604_5889',
      version_tag: '3',
      code: '4604_5889_3',
      operations: [],
      gs1_elements: ['0109501101530003', '104711'],
    });
  });

  it('rejects a GS1 code none of whose elements fits a pattern', () => {
    const result = parseScan(`0109501101530003${GS}10 LOT`, NARROW);
    assert.equal(result.kind, 'unparseable');
    assert.match(result.kind === 'unparseable' ? result.reason : '', /none of the 2 GS1 elements/);
  });

  it('reads a whole number, as MQTT auto-detect makes of a numeric code, as its text', () => {
    assert.deepEqual(parseScan(2291), { kind: 'runlist', runlist_id: '2291', code: '2291', operations: [] });
    assert.equal(parseScan(4604.5).kind, 'unparseable');
  });

  it('reads UTF-8 bytes as text and rejects bytes that are not UTF-8', () => {
    assert.equal(parseScan(Buffer.from('4604_5889_3\r\n'), NARROW).kind, 'job');
    assert.equal(parseScan(Buffer.from([0xff, 0xfe, 0x41])).kind, 'unparseable');
  });

  it('rejects an empty scan, a scan without a code and a payload of the wrong type', () => {
    for (const payload of [
      '',
      ']C1\r\n',
      { operations: ['coating'] },
      { code: null },
      null,
      undefined,
      true,
      ['4604'],
    ]) {
      assert.equal(parseScan(payload).kind, 'unparseable', JSON.stringify(payload));
    }
  });

  it('rejects a scan whose operations cannot be read, saying why', () => {
    assert.deepEqual(parseScan({ code: '4604_5889_3', operations: [42] }), {
      kind: 'unparseable',
      reason: 'operations[0] must be an operation name, got number 42',
    });
  });

  it('rejects a scanned_at without a time zone or that is no real time', () => {
    assert.match(
      JSON.stringify(parseScan({ code: 'RL-1', scanned_at: '2025-12-15T10:30:00' })),
      /scanned_at must be an ISO-8601 time with a zone/,
    );
    assert.equal(parseScan({ code: 'RL-1', scanned_at: '2025-13-45T99:00:00Z' }).kind, 'unparseable');
  });

  it('rejects a user_id or msg_id that is not text', () => {
    assert.equal(parseScan({ code: 'RL-1', user_id: 17 }).kind, 'unparseable');
    assert.equal(parseScan({ code: 'RL-1', msg_id: '' }).kind, 'unparseable');
  });

  it('hints at parsing first when the text is JSON', () => {
    const result = parseScan('{"code":"4604_5889_3"}');
    assert.match(result.kind === 'unparseable' ? result.reason : '', /looks like JSON/);
  });

  it('turns a throwing getter into a reason instead of an exception', () => {
    const scan = Object.defineProperty({}, 'code', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    assert.deepEqual(parseScan(scan), { kind: 'unparseable', reason: 'the scan could not be read: boom' });
  });
});

describe('scan parsing properties', () => {
  // Characters scanners and GS1 labels produce, so generated strings hit the interesting paths
  // far more often than uniformly random text would.
  const scannerChar = fc.constantFrom(...']Cd1Q3e0_-.4605 FILE_Labex\r\n\t\0\x1D\ufeff{'.split(''));
  const scannerText = fc.oneof(fc.string({ unit: scannerChar }), fc.string({ unit: 'binary' }), fc.string());
  const aimPrefix = fc
    .tuple(fc.constantFrom(...'ACdEeQIJ'.split('')), fc.constantFrom(...'0123456789'.split('')))
    .map(([symbology, modifier]) => `]${symbology}${modifier}`);
  const digits = fc.stringMatching(/^\d{1,6}$/);

  it('never throws and always answers with a kind, for any text', () => {
    fc.assert(
      fc.property(scannerText, (text) => {
        assert.equal(typeof parseScan(text).kind, 'string');
        assert.equal(typeof parseScan(text, NARROW).kind, 'string');
      }),
    );
  });

  it('never throws for any JSON value or any value at all', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => assert.equal(typeof parseScan(value).kind, 'string')));
    fc.assert(fc.property(fc.anything(), (value) => assert.equal(typeof parseScan(value).kind, 'string')));
  });

  it('never throws for scan objects with arbitrary fields', () => {
    const scanObject = fc.record(
      {
        code: fc.oneof(scannerText, fc.jsonValue()),
        operations: fc.oneof(
          fc.array(fc.jsonValue()),
          fc.dictionary(fc.string(), fc.jsonValue()),
          fc.jsonValue(),
        ),
        scanned_at: fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.jsonValue(),
        ),
        user_id: fc.jsonValue(),
        msg_id: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    fc.assert(fc.property(scanObject, (scan) => assert.equal(typeof parseScan(scan).kind, 'string')));
  });

  it('stripping scanner noise twice changes nothing the first time did not', () => {
    fc.assert(
      fc.property(scannerText, (text) => {
        const once = stripScannerNoise(text);
        assert.equal(stripScannerNoise(once), once);
      }),
    );
  });

  it('a generated job_id_version_tag code round-trips', () => {
    fc.assert(
      fc.property(digits, digits, digits, (order, item, version) => {
        const jobId = `${order}_${item}`;
        assert.deepEqual(parseScanCode(`${jobId}_${version}`, NARROW), {
          kind: 'job',
          job_id: jobId,
          version_tag: version,
        });
        const ambiguous = parseScanCode(`${jobId}_${version}`);
        assert.equal(ambiguous.kind, 'ambiguous');
        assert.equal(ambiguous.kind === 'ambiguous' ? ambiguous.job_id : undefined, jobId);
      }),
    );
  });

  it('a generated file id round-trips through parseFileId', () => {
    const rest = fc.string({ unit: fc.constantFrom(...'abc019_-'.split('')) });
    fc.assert(
      fc.property(digits, digits, digits, rest, (version, order, item, tail) => {
        const fileId = `FILE_${version}_Labex_${order}_${item}_${tail}`;
        assert.deepEqual(parseFileId(fileId), {
          kind: 'file',
          file_id: fileId,
          job_id: `${order}_${item}`,
          version,
          rest: tail,
        });
      }),
    );
  });

  it('any text with an AIM prefix and CR/LF parses as it does without them', () => {
    fc.assert(
      fc.property(aimPrefix, scannerText, fc.constantFrom('\r\n', '\r', '\n'), (aim, text, lineEnd) => {
        assert.deepEqual(parseScan(`${aim}${text}${lineEnd}`), parseScan(text));
        assert.deepEqual(parseScan(`${aim}${text}${lineEnd}`, NARROW), parseScan(text, NARROW));
      }),
    );
  });

  it('operations come out sorted, lower-case and each once, whatever the input order', () => {
    const name = fc.stringMatching(/^[A-Za-z_]{1,10}$/);
    fc.assert(
      fc.property(fc.array(name), (names) => {
        const result = normaliseOperations(names);
        assert.ok(result.ok);
        const expected = [...new Set(names.map((n) => n.toLowerCase()))].sort();
        assert.deepEqual(result.operations, expected);
      }),
    );
  });
});
