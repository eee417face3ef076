// GET /api/trace/:kind/:id, the provenance of one entity (store/trace.ts). Mounted on the
// front app before Node-RED's routes, so the bearer-token check on /api covers it and no
// flow can shadow it.
import express, { Request, Response } from 'express';
import type { Pool } from 'pg';
import { TRACE_KINDS, isTraceKind, parseTraceId, traceEntity } from '../store/trace';
import { errorBody } from './http';

export function traceRouter(pool: Pool): express.Router {
  const router = express.Router();
  router.get('/api/trace/:kind/:id', async (req: Request, res: Response) => {
    const { kind, id } = req.params;
    if (!isTraceKind(kind)) {
      res.status(404).json(errorBody(`no trace for kind "${kind}": use one of ${TRACE_KINDS.join(', ')}`));
      return;
    }
    const parsed = parseTraceId(kind, id);
    if ('error' in parsed) {
      res.status(400).json(errorBody(parsed.error));
      return;
    }
    try {
      const events = await traceEntity(pool, kind, parsed.id);
      if (events.length === 0) {
        res.status(404).json(errorBody(`nothing is recorded for ${kind} ${parsed.id}`));
        return;
      }
      res.json({ success: true, kind, id: parsed.id, events });
    } catch {
      res.status(500).json(errorBody('the trace could not be read from the database'));
    }
  });
  return router;
}

/** Mounts the trace route on the runtime's front app (call before Node-RED's httpNode). */
export function mountTraceRoute(app: express.Express, pool: Pool): void {
  app.use(traceRouter(pool));
}
