// POST /api/admin/import/<kind>: the import of `floorflow import` over HTTP, for engineers and
// API tokens (the access module keeps /api/admin to them). The body is the file itself: CSV
// (Content-Type text/csv) or the JSON list. Mounted on the front app before Node-RED's routes.
import express, { Request, Response } from 'express';
import type { Pool } from 'pg';
import { actorOf } from '../core/access';
import { IMPORT_KINDS, isImportKind, parseImportJson, parseImportText } from '../core/import';
import { identityOfRequest } from '../nodes/common/identity';
import { importRows } from '../store/import';
import { errorBody } from './http';

export function importRouter(pool: Pool, limit: string): express.Router {
  const router = express.Router();
  const json = express.json({ limit });
  const csv = express.text({ limit, type: ['text/csv', 'text/plain', 'application/csv'] });
  router.post('/api/admin/import/:kind', json, csv, async (req: Request, res: Response) => {
    const { kind } = req.params;
    if (!isImportKind(kind)) {
      res
        .status(404)
        .json(errorBody(`nothing to import as "${kind}": use one of ${IMPORT_KINDS.join(', ')}`));
      return;
    }
    const type = req.get('content-type') ?? '';
    let parsed;
    if (typeof req.body === 'string') parsed = parseImportText(kind, 'csv', req.body);
    else if (/json/i.test(type)) parsed = parseImportJson(kind, req.body);
    else {
      res.status(415).json(errorBody('send the file as text/csv or as a JSON list (application/json)'));
      return;
    }
    if (!parsed.ok) {
      res.status(400).json(errorBody(parsed.error));
      return;
    }
    const identity = identityOfRequest(req);
    try {
      const report = await importRows(pool, kind, parsed.rows, parsed.errors, {
        actor: identity ? actorOf(identity) : 'api',
        at: new Date(),
      });
      const imported = report.total - report.failed;
      const body = {
        success: report.failed === 0,
        ...(report.failed > 0 ? { error: `${report.failed} of ${report.total} rows were not imported` } : {}),
        ...report,
      };
      // Some rows in: the import happened (200), with the refused rows listed. None in: 400.
      res.status(report.failed > 0 && imported === 0 ? 400 : 200).json(body);
    } catch {
      res
        .status(500)
        .json(errorBody('the import stopped: the database could not be reached; importing again is safe'));
    }
  });
  return router;
}

/** Mounts the import route on the runtime's front app (call before Node-RED's httpNode). */
export function mountImportRoute(app: express.Express, pool: Pool, limit: string): void {
  app.use(importRouter(pool, limit));
}
