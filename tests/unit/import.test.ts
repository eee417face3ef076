import assert from 'node:assert/strict';
import fc from 'fast-check';
import { csvField, parseCsv } from '../../core/csv';
import { describeRowError, parseImportCsv, parseImportJson, parseImportText } from '../../core/import';

describe('CSV reading', () => {
  it('keeps commas, doubled quotes and line breaks inside quoted fields', () => {
    const result = parseCsv('a,b,c\r\n"1,5","say ""hi""","two\nlines"\n3,,x\n');
    assert.ok(result.ok);
    assert.deepEqual(
      result.records.map((r) => r.cells),
      [
        ['a', 'b', 'c'],
        ['1,5', 'say "hi"', 'two\nlines'],
        ['3', '', 'x'],
      ],
    );
    assert.deepEqual(
      result.records.map((r) => r.line),
      [1, 2, 4],
    );
  });

  it('drops a byte-order mark and blank lines, and keeps a last record without a line break', () => {
    const result = parseCsv('\ufeffa,b\n\n1,2');
    assert.ok(result.ok);
    assert.deepEqual(
      result.records.map((r) => r.cells),
      [
        ['a', 'b'],
        ['1', '2'],
      ],
    );
  });

  it('names the line of a quote that is never closed, or of stray quotes', () => {
    assert.deepEqual(parseCsv('a\n"open,x\n'), {
      ok: false,
      line: 2,
      reason: 'a quoted field is not closed',
    });
    assert.equal((parseCsv('a\nab"c\n') as { reason: string }).reason, 'a quote inside an unquoted field');
    assert.equal((parseCsv('a\n"ab"c\n') as { reason: string }).reason, 'text after a closing quote');
  });

  it('reads back any table it was given, written with csvField (property)', () => {
    const cell = fc.string({ unit: fc.constantFrom('a', 'Z', ' ', ',', '"', '\n', '\r', '\r\n', 'é', '1') });
    fc.assert(
      fc.property(
        fc.array(fc.array(cell, { minLength: 2, maxLength: 4 }), { minLength: 1, maxLength: 6 }),
        (table) => {
          const text = table.map((row) => row.map(csvField).join(',')).join('\r\n');
          const result = parseCsv(text);
          assert.ok(result.ok, JSON.stringify(result));
          assert.deepEqual(
            result.records.map((r) => r.cells),
            table,
          );
        },
      ),
    );
  });
});

describe('reading import files', () => {
  it('turns CSV rows into records and each problem into row, field and reason', () => {
    const parsed = parseImportCsv(
      'plates',
      'plate_number,batch_code,position,status\nAB12 CDE,B-7,front,\nAB12 CDE,,rear,\nXY,B-7,side,embossing_in_progress\n',
    );
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.rows, [
      {
        row: 1,
        line: 2,
        record: { plate_number: 'AB12 CDE', batch_code: 'B-7', position: 'front' },
      },
    ]);
    assert.deepEqual(parsed.errors.map(describeRowError), [
      'row 2, batch_code: is required',
      'row 3, position: must be one of: single, front, rear',
      'row 3, status: must be one of: in_production, ready_for_embossing, embossed, in_storage',
    ]);
  });

  it('refuses a file with a column the kind does not have, naming the columns it does', () => {
    const parsed = parseImportCsv('engraving-items', 'id,name,colour\n');
    assert.equal(parsed.ok, false);
    assert.match(
      (parsed as { error: string }).error,
      /unknown column colour for engraving-items; the columns are id, name/,
    );
  });

  it('reads a job CSV row as one file of the job, and refuses a file of another job', () => {
    const parsed = parseImportCsv(
      'jobs',
      'job_id,version_tag,operations,file_id,imposition_id,runlist_id\n' +
        '4604_5889,1,print;coating,FILE_1_Labex_4604_5889_80,IMP-1,RL-1\n' +
        '4604_5889,1,print,FILE_1_Labex_4604_5890_81,IMP-1,\n' +
        '4604_5891,1,print,,,\n',
    );
    assert.ok(parsed.ok);
    assert.deepEqual(
      parsed.rows.map((r) => r.record),
      [
        {
          job_id: '4604_5889',
          version_tag: '1',
          operations: ['print', 'coating'],
          files: [{ file_id: 'FILE_1_Labex_4604_5889_80', imposition_id: 'IMP-1', runlist_id: 'RL-1' }],
        },
        { job_id: '4604_5891', version_tag: '1', operations: ['print'], files: [] },
      ],
    );
    assert.deepEqual(parsed.errors, [
      { row: 2, line: 3, field: 'file_id', reason: 'names job 4604_5890, not 4604_5889' },
    ]);
  });

  it('puts the extra columns of an order CSV into its details, content as a list', () => {
    const parsed = parseImportCsv(
      'orders',
      'order_number,customer,content\nORD-1,"Hansen, K.",a.mp4;b.pdf\n',
    );
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.rows[0].record, {
      order_number: 'ORD-1',
      details: { customer: 'Hansen, K.', content: ['a.mp4', 'b.pdf'] },
    });
  });

  it('reports numbers that are not whole numbers and JSON that does not parse', () => {
    const parsed = parseImportCsv(
      'engraving-items',
      'id,name,stock_available,max_lines,engraving_area\nCUP-1,Cup,ten,3,\nCUP-2,Cup,4,3,{oops\n',
    );
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.errors, [
      { row: 1, line: 2, field: 'stock_available', reason: 'must be a whole number' },
      { row: 2, line: 3, field: 'engraving_area', reason: 'is not valid JSON' },
    ]);
  });

  it('reads the JSON form: a list of records, each checked on its own', () => {
    const parsed = parseImportJson('products', [
      { product_code: 'P-1', name: 'Plate holder', state: 'OFF' },
      { product_code: 'P-2' },
      'nonsense',
    ]);
    assert.ok(parsed.ok);
    assert.equal(parsed.rows.length, 1);
    assert.deepEqual(parsed.errors, [
      { row: 2, field: 'name', reason: 'is required' },
      { row: 3, field: '', reason: 'must be an object with the fields of one record' },
    ]);
    assert.equal(parseImportText('orders', 'json', '{"order_number": "x"}').ok, false);
    assert.match((parseImportText('orders', 'json', '[{') as { error: string }).error, /^not valid JSON/);
  });

  it('refuses text the database cannot hold (NUL, half a UTF-16 pair) with its field', () => {
    const parsed = parseImportJson('orders', [
      { order_number: 'ORD-1\u0000' },
      { order_number: 'ORD-2', details: { lines: ['ok', 'bad \ud800'] } },
      { order_number: 'ORD-3', details: { 'a\u0000b': 1 } },
    ]);
    assert.ok(parsed.ok);
    assert.equal(parsed.rows.length, 0);
    assert.deepEqual(parsed.errors, [
      { row: 1, field: 'order_number', reason: 'holds a NUL character, which cannot be stored: remove it' },
      {
        row: 2,
        field: 'details.lines.1',
        reason: 'holds a lone UTF-16 surrogate, which cannot be stored: remove it',
      },
      {
        row: 3,
        field: 'details',
        reason: 'has a field name holding a NUL character, which cannot be stored: remove it',
      },
    ]);
    const csv = parseImportCsv('plates', 'plate_number,batch_code\nKL\u000045,B-1\n');
    assert.ok(csv.ok);
    assert.deepEqual(csv.errors, [
      {
        row: 1,
        line: 2,
        field: 'plate_number',
        reason: 'holds a NUL character, which cannot be stored: remove it',
      },
    ]);
  });

  it('refuses a record nested deeper than it may be, without walking it recursively', () => {
    let area: Record<string, unknown> = { font: 'Serif' };
    for (let i = 0; i < 100000; i++) area = { a: area };
    const parsed = parseImportJson('engraving-items', [
      { id: 'PLQ-1', name: 'Plaque', stock_available: 1, max_lines: 3, engraving_area: area },
    ]);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.errors, [{ row: 1, field: '', reason: 'is nested deeper than 32 levels' }]);
  });

  it('takes the first row of a record named twice in one file and reports the repeat', () => {
    const parsed = parseImportCsv('products', 'product_code,name\nP-1,Cup\nP-2,Mug\nP-1,Cup (new)\n');
    assert.ok(parsed.ok);
    assert.deepEqual(
      parsed.rows.map((r) => [r.row, r.record.name]),
      [
        [1, 'Cup'],
        [2, 'Mug'],
      ],
    );
    assert.deepEqual(parsed.errors, [
      {
        row: 3,
        line: 4,
        field: '',
        reason: 'names the same product as row 1: a file lists each record once',
      },
    ]);
    // Plates are one record per batch, number and position: front and rear are two.
    const plates = parseImportJson('plates', [
      { plate_number: '7', batch_code: 'B', position: 'front' },
      { plate_number: '7', batch_code: 'B', position: 'rear' },
    ]);
    assert.ok(plates.ok);
    assert.equal(plates.rows.length, 2);
    // A job's CSV file repeats the job on each of its files' rows.
    const jobs = parseImportCsv(
      'jobs',
      'job_id,file_id,imposition_id\n4604_1,FILE_1_Labex_4604_1_1,IMP-1\n4604_1,FILE_1_Labex_4604_1_2,IMP-1\n',
    );
    assert.ok(jobs.ok);
    assert.deepEqual(jobs.errors, []);
    assert.equal(jobs.rows.length, 2);
  });

  it('quotes a column name in an error short and with control characters escaped', () => {
    const parsed = parseImportCsv('plates', `${'X'.repeat(100000)},PK\u0003\u0004\n1,2\n`);
    assert.equal(parsed.ok, false);
    const error = (parsed as { error: string }).error;
    assert.ok(error.length < 300, error);
    assert.match(error, /^unknown columns X{40}… \(100000 characters\), PK\\x03\\x04 for plates/);
  });
});
