// The HTTP front of the runtime: drain refusal, bearer-token auth for /api and /v1,
// health and metrics, and the contract's JSON error shape for everything that fails.
import express, { NextFunction, Request, Response } from 'express';
import { verifySecret } from '../core/secrets';
import { counter, registry } from '../kit/metrics';

/** Routes a machine calls with its own signature instead of the API token. */
const SIGNED_ROUTES = [/^\/api\/embossing-jobs\/callback\/[^/]+\/?$/];

export interface HttpState {
  draining: boolean;
  inFlight: number;
}

export interface HealthCheck {
  name: string;
  check(): Promise<void>;
}

export function errorBody(error: string): { success: false; error: string } {
  return { success: false, error };
}

const httpRequests = () =>
  counter('floorflow_http_requests_total', 'HTTP requests by route prefix and status', ['route', 'status']);

function routeLabel(path: string): string {
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'api' || parts[0] === 'v1') return '/' + parts.slice(0, 2).join('/');
  return '/' + (parts[0] ?? '');
}

export function createFrontApp(
  state: HttpState,
  apiTokenHash: string,
  checks: HealthCheck[],
): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  app.use((req, res, next) => {
    state.inFlight++;
    let counted = false;
    const finish = () => {
      if (counted) return;
      counted = true;
      state.inFlight--;
      httpRequests().inc({ route: routeLabel(req.path), status: String(res.statusCode) });
    };
    res.on('finish', finish);
    res.on('close', finish);
    if (state.draining && req.path !== '/healthz') {
      res.set('Connection', 'close');
      res.status(503).json(errorBody('floorflow is stopping; retry shortly'));
      return;
    }
    next();
  });

  app.get('/healthz', async (_req, res) => {
    const results: Record<string, string> = {};
    let ok = !state.draining;
    await Promise.all(
      checks.map(async (c) => {
        try {
          await c.check();
          results[c.name] = 'up';
        } catch (err) {
          ok = false;
          results[c.name] = `down: ${(err as Error).message}`;
        }
      }),
    );
    res
      .status(ok ? 200 : 503)
      .json({ status: ok ? 'ok' : state.draining ? 'stopping' : 'degraded', ...results });
  });

  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', registry.contentType);
    res.send(await registry.metrics());
  });

  const requireToken = (req: Request, res: Response, next: NextFunction) => {
    // req.path is relative to the /api mount point; the signed routes are written in full.
    const fullPath = req.originalUrl.split('?')[0];
    if (SIGNED_ROUTES.some((r) => r.test(fullPath)) && req.method === 'POST') return next();
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      res.status(401).set('WWW-Authenticate', 'Bearer').json(errorBody('missing bearer token'));
      return;
    }
    if (!verifySecret(match[1], apiTokenHash)) {
      res.status(401).set('WWW-Authenticate', 'Bearer').json(errorBody('invalid bearer token'));
      return;
    }
    next();
  };
  app.use('/api', requireToken);
  app.use('/v1', requireToken);
  return app;
}

/** Handlers that go after Node-RED's routes: JSON 404 for the API, JSON errors, no stack traces. */
export function addFallbacks(app: express.Express): void {
  app.use(['/api', '/v1'], (req: Request, res: Response) => {
    res.status(404).json(errorBody(`no route ${req.method} ${req.originalUrl.split('?')[0]}`));
  });
  app.use(
    (
      err: Error & { status?: number; statusCode?: number; type?: string },
      _req: Request,
      res: Response,
      next: NextFunction,
    ) => {
      if (res.headersSent) return next(err);
      const status = err.status ?? err.statusCode ?? 500;
      const message =
        err.type === 'entity.parse.failed'
          ? 'body is not valid JSON'
          : err.type === 'entity.too.large'
            ? 'body is too large'
            : status < 500
              ? err.message
              : 'internal error';
      res.status(status).json(errorBody(message));
    },
  );
}
