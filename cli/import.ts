// `floorflow import <kind> <file.csv|file.json>`: loads plates, jobs, products, engraving items
// or orders into the runtime's database through the same checks as POST /api/admin/import/<kind>,
// and prints what was created, updated and left alone, and each refused row with its reason.
import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import { IMPORT_KINDS, describeRowError, isImportKind, parseImportText } from '../core/import';
import { type ImportReport, importRows } from '../store/import';

export class ImportUsageError extends Error {}

export const IMPORT_USAGE = `floorflow import <${IMPORT_KINDS.join('|')}> <file.csv|file.json>`;

/** The lines the CLI prints for a report (also what the demo logs). */
export function describeReport(report: ImportReport, source: string): string[] {
  const lines = [
    `${source}: ${report.total} ${report.kind} rows: ${report.created} created, ${report.updated} updated, ` +
      `${report.unchanged} unchanged, ${report.failed} not imported`,
  ];
  for (const e of report.errors) lines.push(`  ${describeRowError(e)}`);
  return lines;
}

export function formatOf(file: string): 'csv' | 'json' | undefined {
  const ext = path.extname(file).toLowerCase();
  return ext === '.csv' ? 'csv' : ext === '.json' ? 'json' : undefined;
}

/** Reads and imports one file; a file that cannot be read at all throws with the reason. */
export async function importFile(
  pool: Pool,
  kind: string,
  file: string,
  actor: string,
): Promise<ImportReport> {
  if (!isImportKind(kind))
    throw new ImportUsageError(`unknown kind "${kind}": use one of ${IMPORT_KINDS.join(', ')}`);
  const format = formatOf(file);
  if (!format) throw new ImportUsageError(`${file}: the file must end in .csv or .json`);
  let body: string;
  try {
    body = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    );
  }
  const parsed = parseImportText(kind, format, body);
  if (!parsed.ok) throw new Error(`${file}: ${parsed.error}`);
  return importRows(pool, kind, parsed.rows, parsed.errors, { actor, at: new Date() });
}

export async function importCommand(
  args: string[],
  withDatabase: <T>(work: (pool: Pool) => Promise<T>) => Promise<T>,
): Promise<number> {
  const [kind, file, ...extra] = args;
  if (!kind || !file || extra.length > 0)
    throw new ImportUsageError(`import needs: ${IMPORT_USAGE.slice(10)}`);
  if (!isImportKind(kind))
    throw new ImportUsageError(`unknown kind "${kind}": use one of ${IMPORT_KINDS.join(', ')}`);
  if (!formatOf(file)) throw new ImportUsageError(`${file}: the file must end in .csv or .json`);
  const actor = `cli:${process.env.USER ?? 'unknown'}`;
  const report = await withDatabase((pool) => importFile(pool, kind, file, actor));
  for (const line of describeReport(report, file)) console.log(line);
  return report.failed > 0 ? 1 : 0;
}
