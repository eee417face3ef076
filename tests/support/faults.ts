// Helpers the fault tests share: the HTTP routes the shipped flows serve (read from their
// `http in` nodes, so a new route is covered without editing a test), row counts of every
// domain table, and the runtime's database connections.
import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';

export interface FlowRoute {
  method: string;
  url: string;
  file: string;
}

interface FlowNode {
  type?: string;
  url?: string;
  method?: string;
}

/** Every `http in` route under /api and /v1 in the flow files of `dirs`. */
export function shippedHttpRoutes(dirs: string[]): FlowRoute[] {
  const routes: FlowRoute[] = [];
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'manifest.json')) {
      const nodes = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as unknown;
      if (!Array.isArray(nodes)) continue;
      for (const node of nodes as FlowNode[]) {
        if (node.type !== 'http in' || !node.url) continue;
        const url = node.url.startsWith('/') ? node.url : `/${node.url}`;
        if (!/^\/(api|v1)\//.test(url)) continue;
        routes.push({ method: (node.method ?? 'get').toUpperCase(), url, file: name });
      }
    }
  }
  return routes;
}

/** `value` escaped for a path; a lone surrogate becomes the invalid UTF-8 it would be on the wire. */
function pathSegment(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return encodeURIComponent(value.replace(/[\ud800-\udfff]/g, '')) + '%ED%A0%80';
  }
}

/** The route's URL with each `:param` replaced by `value`. */
export function fillParams(url: string, value: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, () => pathSegment(value));
}

export const DOMAIN_SCHEMAS = [
  'jobmanager',
  'logs',
  'embossing',
  'trackopz',
  'processing',
  'engraving',
  'floorflow',
];

/** Row counts of every table in the domain schemas, keyed "schema.table". */
export async function domainRowCounts(pool: Pool, except: string[] = []): Promise<Record<string, number>> {
  const tables = await pool.query<{ schema: string; name: string }>(
    `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
     WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE' ORDER BY 1, 2`,
    [DOMAIN_SCHEMAS],
  );
  const counts: Record<string, number> = {};
  for (const t of tables.rows) {
    const key = `${t.schema}.${t.name}`;
    if (except.includes(key)) continue;
    const result = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM "${t.schema.replace(/"/g, '""')}"."${t.name.replace(/"/g, '""')}"`,
    );
    counts[key] = Number(result.rows[0].n);
  }
  return counts;
}

/** Connections to the test database other than the test's own pool. */
export async function otherConnections(pool: Pick<Pool, 'query'>): Promise<number> {
  const result = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> 'floorflow-test'`,
  );
  return Number(result.rows[0].n);
}
