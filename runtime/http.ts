// The HTTP front of the runtime: drain refusal, bearer-token auth for /api and /v1,
// health and metrics, and the contract's JSON error shape for everything that fails.
import express, { NextFunction, Request, RequestHandler, Response } from 'express';
import { verifySecret } from '../core/secrets';
import { counter, registry } from '../kit/metrics';

/** Routes a machine calls with its own signature instead of the API token. */
const SIGNED_ROUTES = [/^\/api\/embossing-jobs\/callback\/[^/]+\/?$/];

export interface HttpState {
  draining: boolean;
  inFlight: number;
  /**
   * True while the flows' routes are not (or not yet) registered: at start and during a
   * deploy. /api and /v1 then answer 503 with Retry-After, never a 404 a client would read
   * as "not found"; /healthz answers 503. Left undefined, nothing is gated (an app without flows).
   */
  starting?: boolean;
}

/** Seconds a client is asked to wait while the flows start. */
export const STARTING_RETRY_AFTER_S = 1;

function isApiPath(path: string): boolean {
  return /^\/(api|v1)(\/|$)/.test(path);
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
    if (state.starting && isApiPath(req.path)) {
      res.set('Retry-After', String(STARTING_RETRY_AFTER_S));
      res.status(503).json(errorBody('floorflow is starting; retry shortly'));
      return;
    }
    next();
  });

  app.get('/healthz', async (_req, res) => {
    const results: Record<string, string> = {};
    let ok = !state.draining && !state.starting;
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
    if (state.starting !== undefined) results.flows = state.starting ? 'starting' : 'up';
    const status = ok ? 'ok' : state.draining ? 'stopping' : state.starting ? 'starting' : 'degraded';
    if (!ok && state.starting) res.set('Retry-After', String(STARTING_RETRY_AFTER_S));
    res.status(ok ? 200 : 503).json({ status, ...results });
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

type BodyError = Error & { status?: number; statusCode?: number; type?: string };

function bodyErrorMessage(err: BodyError, status: number): string {
  if (err.type === 'entity.parse.failed') return 'body is not valid JSON';
  if (err.type === 'entity.too.large') return 'body is too large';
  return status < 500 ? err.message : 'internal error';
}

/** Deeper JSON than this is refused: nodes clone and walk messages recursively. */
export const MAX_JSON_DEPTH = 64;

/** Counts bracket depth outside strings, without parsing, and refuses a body that is too deep. */
function refuseDeepNesting(_req: unknown, _res: unknown, body: Buffer): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) {
        throw Object.assign(new Error(`body is nested deeper than ${MAX_JSON_DEPTH} levels`), {
          status: 400,
          type: 'entity.too.deep',
        });
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
}

/**
 * Parses the JSON and form bodies of the flows' `http in` routes before Node-RED does (its
 * `httpNodeMiddleware`). Node-RED hands its own parser's errors to the http in node's error
 * handler, which answers a bare 500; here a body that is not JSON, too large or in an unknown
 * charset gets the contract's 400/413/415. Node-RED's parsers then see `req._body` and skip.
 */
export function bodyParsers(limit: string): RequestHandler {
  const json = express.json({ limit, verify: refuseDeepNesting });
  const form = express.urlencoded({ limit, extended: true });
  const refuse = (err: BodyError, res: Response) => {
    const status = err.status ?? err.statusCode ?? 400;
    res.status(status).json(errorBody(bodyErrorMessage(err, status)));
  };
  return (req, res, next) => {
    json(req, res, (jsonErr?: unknown) => {
      if (jsonErr) return refuse(jsonErr as BodyError, res);
      form(req, res, (formErr?: unknown) => (formErr ? refuse(formErr as BodyError, res) : next()));
    });
  };
}

/** Handlers that go after Node-RED's routes: JSON 404 for the API, JSON errors, no stack traces. */
export function addFallbacks(app: express.Express): void {
  app.use(['/api', '/v1'], (req: Request, res: Response) => {
    res.status(404).json(errorBody(`no route ${req.method} ${req.originalUrl.split('?')[0]}`));
  });
  app.use((err: BodyError, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status = err.status ?? err.statusCode ?? 500;
    res.status(status).json(errorBody(bodyErrorMessage(err, status)));
  });
}
