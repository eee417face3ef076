// POST /api/admin/import/<kind>: the import of `floorflow import` over HTTP, for engineers and
// API tokens (the access module keeps /api/admin to them). The body is the file itself: CSV
// (Content-Type text/csv) or the JSON list. Mounted on the front app before Node-RED's routes.
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Pool } from 'pg';
import { actorOf } from '../core/access';
import { lineExcerpt } from '../core/excerpt';
import { IMPORT_KINDS, isImportKind, parseImportJson, parseImportText } from '../core/import';
import { identityOfRequest } from '../nodes/common/identity';
import { importRows } from '../store/import';
import { errorBody } from './http';
import { markBodyUnread } from './idempotency';

/**
 * A body parser whose refusals speak of the file: a file over the limit names the limit and what
 * to do (413), a JSON file that does not parse says where (400). Express's own answer for these
 * ("body is too large") tells the engineer neither.
 */
function readingFile(parser: RequestHandler, limit: string): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) =>
    parser(req, res, (err?: unknown) => {
      if (!err) return next();
      markBodyUnread(res);
      const e = err as Error & { type?: string; status?: number };
      if (e.type === 'entity.too.large') {
        res
          .status(413)
          .json(
            errorBody(
              `the file is larger than ${limit}, the most one import takes over HTTP (FLOORFLOW_HTTP_MAX_BODY): split it, or import it with \`floorflow import\``,
            ),
          );
        return;
      }
      if (e.type === 'entity.parse.failed') {
        res.status(400).json(errorBody(`not valid JSON: ${lineExcerpt(e.message)}`));
        return;
      }
      const status = e.status !== undefined && e.status >= 400 && e.status < 500 ? e.status : 400;
      res.status(status).json(errorBody(`the file cannot be read: ${lineExcerpt(e.message)}`));
    });
}

export function importRouter(pool: Pool, limit: string): express.Router {
  const router = express.Router();
  const json = readingFile(express.json({ limit }), limit);
  const csv = readingFile(
    express.text({ limit, type: ['text/csv', 'text/plain', 'application/csv'] }),
    limit,
  );
  // Express 4 does not catch a rejected handler, and an unhandled rejection stops the whole
  // runtime: whatever the reading or the import throws ends as this request's answer.
  router.post('/api/admin/import/:kind', json, csv, (req: Request, res: Response) => {
    answer(req, res).catch(() => {
      if (!res.headersSent)
        res.status(500).json(errorBody('the import stopped on an unexpected error; importing again is safe'));
    });
  });
  return router;

  async function answer(req: Request, res: Response): Promise<void> {
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
      markBodyUnread(res);
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
  }
}

/** Mounts the import route on the runtime's front app (call before Node-RED's httpNode). */
export function mountImportRoute(app: express.Express, pool: Pool, limit: string): void {
  app.use(importRouter(pool, limit));
}
