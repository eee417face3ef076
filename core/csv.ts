// A small RFC 4180 CSV reader for plant data exported from spreadsheets: quoted fields may hold
// commas, doubled quotes and line breaks; CRLF or LF ends a record; a leading byte-order mark
// is dropped. Total: every input yields records or one reason, nothing throws.

export interface CsvRecord {
  /** 1-based line of the file where the record starts (a quoted line break makes records span lines). */
  line: number;
  cells: string[];
}

export type CsvResult = { ok: true; records: CsvRecord[] } | { ok: false; line: number; reason: string };

export function parseCsv(text: string): CsvResult {
  const records: CsvRecord[] = [];
  let cells: string[] = [];
  let cell = '';
  let line = 1;
  let recordLine = 1;
  let quoted = false;
  /** True once the current cell began with a quote and that quote closed. */
  let closed = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRecord = () => {
    cells.push(cell);
    // A line with nothing on it is not a record (spreadsheets add one at the end).
    if (!(cells.length === 1 && cells[0] === '' && !closed)) records.push({ line: recordLine, cells });
    cells = [];
    cell = '';
    closed = false;
  };
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else {
          quoted = false;
          closed = true;
        }
      } else {
        if (c === '\n') line++;
        cell += c;
      }
      continue;
    }
    if (c === '"') {
      if (cell !== '' || closed) return { ok: false, line, reason: 'a quote inside an unquoted field' };
      quoted = true;
    } else if (c === ',') {
      cells.push(cell);
      cell = '';
      closed = false;
    } else if (c === '\r' && text[i + 1] === '\n') {
      // CRLF: the LF ends the record.
    } else if (c === '\n' || c === '\r') {
      endRecord();
      line++;
      recordLine = line;
    } else {
      if (closed) return { ok: false, line, reason: 'text after a closing quote' };
      cell += c;
    }
  }
  if (quoted) return { ok: false, line: recordLine, reason: 'a quoted field is not closed' };
  if (cell !== '' || cells.length > 0 || closed) endRecord();
  return { ok: true, records };
}

/** One CSV field as written: quoted when it holds a comma, a quote or a line break. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) || /^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
