// The HTTP front of the runtime: security headers, drain refusal, authentication of /api and
// /v1 (exact exemptions only), the admin API's CORS, health and metrics, and the API's
// JSON error shape for everything that fails.
import express, { NextFunction, Request, RequestHandler, Response } from 'express';
import { unstorableInValue } from '../core/inbox';
import { verifySecret } from '../core/secrets';
import { counter, registry } from './metrics';
import { recordResponse } from '../nodes/common/monitoring';

/**
 * Routes a machine calls with its own signature instead of the API token, matched exactly:
 * a job id is digits, so `/callback/retry` is not one of them and needs the token.
 */
const SIGNED_ROUTES = [/^\/api\/embossing-jobs\/callback\/[0-9]{1,18}$/];

/** Pages (editor, dashboards) run their own scripts and open WebSockets; nothing loads from elsewhere. */
const PAGE_POLICY = [
  "default-src 'self'",
  // Node-RED's editor and Dashboard 2.0 use inline scripts and eval (Vue templates, Monaco).
  "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "worker-src 'self' blob:",
  "frame-ancestors 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');
/** Data answers (API, metrics, health) are never rendered as a page. */
const DATA_POLICY = "default-src 'none'; frame-ancestors 'none'";

/** Headers on every response, set first so no route can forget them (a route may still override). */
function securityHeaders(req: Request, res: Response): void {
  const data = /^\/(api|v1|metrics|healthz)(\/|$)/.test(req.path);
  res.setHeader('Content-Security-Policy', data ? DATA_POLICY : PAGE_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', data ? 'DENY' : 'SAMEORIGIN');
  // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on a same-origin form
  // POST (the login page), which the cross-site check must then refuse.
  res.setHeader('Referrer-Policy', 'same-origin');
}

/**
 * Node-RED's admin API always answers `Access-Control-Allow-Origin: *` (its editor-api installs
 * cors({origin: "*"}) before any setting is read). Its CORS headers are dropped here unless the
 * request comes from one of the configured origins, which then gets its own origin back.
 */
function restrictAdminCors(req: Request, res: Response, allowed: ReadonlySet<string>): void {
  const origin = req.get('origin');
  const allow = origin !== undefined && allowed.has(origin);
  const setHeader = res.setHeader.bind(res);
  res.setHeader = ((name: string, value: number | string | readonly string[]) => {
    const lower = name.toLowerCase();
    if (!lower.startsWith('access-control-')) return setHeader(name, value);
    if (!allow) return res;
    if (lower === 'access-control-allow-origin') {
      res.vary('Origin');
      return setHeader(name, origin);
    }
    return setHeader(name, value);
  }) as typeof res.setHeader;
}

export interface FrontOptions {
  /** Exact origins whose pages may call the admin API (`FLOORFLOW_ADMIN_CORS_ORIGINS`). */
  adminCorsOrigins?: string[];
}

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
  counter('floorflow_http_requests_total', 'HTTP requests by route and status', ['route', 'status']);

/** Parts of the runtime other than the API, each one label whatever path follows. */
const FIXED_AREAS = new Set(['editor', 'dashboard', 'metrics', 'healthz', 'mqtt', 'trace', 'favicon.ico']);
/** Route templates labelled before the rest go to "other": the flows define a few dozen. */
const MAX_ROUTE_LABELS = 200;
const routeLabels = new Set<string>();

/**
 * The metric label of a request: the route template that answered it (`/api/embossing-jobs/:id`),
 * never the raw path, so a stranger requesting random paths cannot add series.
 */
export function routeLabel(req: Request): string {
  const first = req.originalUrl.split('?')[0].split('/')[1] ?? '';
  if (first === 'api' || first === 'v1') {
    const template = (req as Request & { route?: { path?: unknown } }).route?.path;
    if (typeof template !== 'string') return `/${first}/(no route)`;
    const label = `${req.baseUrl ?? ''}${template}`;
    if (routeLabels.has(label)) return label;
    if (routeLabels.size >= MAX_ROUTE_LABELS) return `/${first}/(other)`;
    routeLabels.add(label);
    return label;
  }
  if (first === '') return '/';
  return FIXED_AREAS.has(first) ? `/${first}` : '(other)';
}

/** Checks the API token alone: the HTTP front without the runtime's logins (tests of the front). */
function bearerOnly(apiTokenHash: string): RequestHandler {
  return (req, res, next) => {
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
}

/**
 * `apiAuth` authenticates /api and /v1: the runtime passes its access module (runtime/access.ts:
 * sessions and named API tokens); a string is the hash of the one API token.
 */
export function createFrontApp(
  state: HttpState,
  apiAuth: string | RequestHandler,
  checks: HealthCheck[],
  options: FrontOptions = {},
): express.Express {
  const authenticate = typeof apiAuth === 'string' ? bearerOnly(apiAuth) : apiAuth;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  const adminCorsOrigins = new Set(options.adminCorsOrigins ?? []);

  app.use((req, res, next) => {
    securityHeaders(req, res);
    if (req.path === '/editor' || req.path.startsWith('/editor/'))
      restrictAdminCors(req, res, adminCorsOrigins);
    state.inFlight++;
    let counted = false;
    const started = process.hrtime.bigint();
    const finish = () => {
      if (counted) return;
      counted = true;
      state.inFlight--;
      const route = routeLabel(req);
      httpRequests().inc({ route, status: String(res.statusCode) });
      // The product API's monitoring: answer times, not the live streams (open for hours by design).
      if (isApiPath(req.path) && !String(res.getHeader('content-type') ?? '').startsWith('text/event-stream'))
        recordResponse(
          `${req.method} ${route}`,
          Number(process.hrtime.bigint() - started) / 1e6,
          res.statusCode,
        );
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
    authenticate(req, res, next);
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
 * charset gets the API's 400/413/415. Node-RED's parsers then see `req._body` and skip.
 */
/**
 * Marks a request whose body was refused before it was read (too large, not JSON, wrong
 * content type): its Idempotency-Key keeps no answer (runtime/idempotency.ts).
 */
export function markBodyUnread(res: Response): void {
  res.locals.idempotencyBodyUnread = true;
}

export function bodyParsers(limit: string): RequestHandler {
  const json = express.json({ limit, verify: refuseDeepNesting });
  const form = express.urlencoded({ limit, extended: true });
  // A body the parser refused was never read: the same request sent again under its
  // Idempotency-Key is refused the same way, not told it has "another body".
  const refuse = (err: BodyError, res: Response) => {
    const status = err.status ?? err.statusCode ?? 400;
    markBodyUnread(res);
    res.status(status).json(errorBody(bodyErrorMessage(err, status)));
  };
  return (req, res, next) => {
    json(req, res, (jsonErr?: unknown) => {
      if (jsonErr) return refuse(jsonErr as BodyError, res);
      form(req, res, (formErr?: unknown) => {
        if (formErr) return refuse(formErr as BodyError, res);
        // PostgreSQL stores neither NUL nor half a UTF-16 pair: refused here, naming the field,
        // rather than by the database as "invalid value in the request".
        const problem = unstorableInValue(req.body, 'the body');
        if (problem) return res.status(400).json(errorBody(`${problem}, which cannot be stored: remove it`));
        next();
      });
    });
  };
}

/** Handlers that go after Node-RED's routes: JSON 404 for the API, JSON errors, no stack traces. */
export function addFallbacks(app: express.Express): void {
  app.use(['/api', '/v1'], (req: Request, res: Response) => {
    res.status(404).json(errorBody(`no route ${req.method} ${req.originalUrl.split('?')[0]}`));
  });
  // Express's own 404 page clears every header first (finalhandler), security headers included.
  app.use((_req: Request, res: Response) => {
    res.status(404).type('text/plain').send('Not found');
  });
  app.use((err: BodyError, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status = err.status ?? err.statusCode ?? 500;
    res.status(status).json(errorBody(bodyErrorMessage(err, status)));
  });
}
