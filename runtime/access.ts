// The runtime's one login for everything: the login page and display links, the session cookie,
// and the checks in front of /api and /v1 (with the SSE stream), /editor (Node-RED's adminAuth
// reads the same session through its `tokens` function), /dashboard and Dashboard 2.0's
// socket.io connections. Rules are in core/access.ts, accounts and sessions in store/accounts.ts.
// Open connections are re-checked every few seconds, so a revoked display or a disabled user is
// cut off while connected, not only at the next login.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import express, { type Request, type RequestHandler, type Response } from 'express';
import {
  type Identity,
  actionRefusal,
  actorOf,
  apiRefusal,
  cookieValue,
  isSafeMethod,
  isSameOrigin,
  mayEdit,
  mayOpenPage,
  safeNextPath,
} from '../core/access';
import { limitUiConfig } from '../core/display-pages';
import { DEFAULT_THROTTLE, LoginThrottle, type ThrottleLimits } from '../core/login-throttle';
import { verifySecret } from '../core/secrets';
import { attachIdentity } from '../nodes/common/identity';
import { type AccountStore, type SessionIdentity, tokenHash } from '../store/accounts';
import { errorBody } from './http';
import { loginPage, messagePage } from './login-page';

export const SESSION_COOKIE = 'floorflow_session';

export interface ApiToken {
  /** The name audit rows carry for this token: `token:<name>`. */
  name: string;
  hash: string;
}

export interface AccessOptions {
  accounts: AccountStore;
  apiTokens: ApiToken[];
  log: (line: string) => void;
  /** A person's session lasts this long (default 12 h: a shift with overtime). */
  userSessionMs?: number;
  /** A display's session (default 400 days, the longest a browser keeps a cookie); its link can open a new one. */
  displaySessionMs?: number;
  /** How often open connections are re-checked (default 15 s). */
  recheckMs?: number;
  /** How long a checked session is trusted without asking the database again (default 5 s). */
  cacheMs?: number;
  throttle?: ThrottleLimits;
  now?: () => Date;
}

interface Found {
  identity: Identity;
  /** A cookie rides along with any request the browser makes, so those need a same-origin check. */
  via: 'bearer' | 'cookie';
}

/** The part of a socket.io socket the access module uses (Dashboard 2.0 passes the real one). */
export interface DashboardSocket {
  id: string;
  request: IncomingMessage;
  handshake: { xdomain?: boolean };
  client: { conn: { request: IncomingMessage; close(): void } };
  data: Record<string, unknown>;
  emit(event: string, ...args: unknown[]): boolean;
  use(fn: (packet: unknown[], next: (err?: Error) => void) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
  disconnect(close?: boolean): unknown;
}

/** Who a dashboard connection belongs to, as flows see it on msg._client.user. */
export function publicIdentity(identity: Identity): Record<string, unknown> {
  return { name: identity.name, kind: identity.kind, role: identity.role, actor: actorOf(identity) };
}

function sessionOf(identity: Identity): string | undefined {
  return identity.kind === 'token' ? undefined : identity.session;
}

function bearerOf(headers: IncomingHttpHeaders): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')?.[1];
}

function originOf(headers: IncomingHttpHeaders): { origin?: string; host?: string; secFetchSite?: string } {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  return {
    origin: one(headers.origin),
    host: one(headers.host),
    secFetchSite: one(headers['sec-fetch-site']),
  };
}

function wantsHtml(req: Request): boolean {
  return req.method === 'GET' && (req.get('accept') ?? '').includes('text/html');
}

export class AccessControl {
  private readonly accounts: AccountStore;
  private readonly throttle: LoginThrottle;
  private readonly now: () => Date;
  private readonly cache = new Map<string, { identity: SessionIdentity | undefined; until: number }>();
  private readonly sockets = new Map<string, { socket: DashboardSocket; identity: Identity }>();
  /** Responses in progress under a session (SSE streams live long), ended when the session ends. */
  private readonly open = new Set<{ session: string; res: Response }>();
  private readonly used = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private sweeps = 0;

  constructor(private readonly options: AccessOptions) {
    this.accounts = options.accounts;
    this.throttle = new LoginThrottle(options.throttle ?? DEFAULT_THROTTLE);
    this.now = options.now ?? (() => new Date());
  }

  /** Starts re-checking open connections. */
  start(): void {
    this.timer = setInterval(() => void this.recheck(), this.options.recheckMs ?? 15000);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  // ---- who is asking --------------------------------------------------------------------

  private async session(hash: string): Promise<SessionIdentity | undefined> {
    const now = this.now();
    const cached = this.cache.get(hash);
    if (cached && cached.until > now.getTime()) return cached.identity;
    const identity = await this.accounts.sessionIdentity(hash, now);
    this.cache.set(hash, { identity, until: now.getTime() + (this.options.cacheMs ?? 5000) });
    // Bounded: a flood of made-up tokens must not grow memory.
    if (this.cache.size > 10000) this.cache.delete(this.cache.keys().next().value as string);
    if (identity) this.used.add(hash);
    return identity;
  }

  /** The identity of a request: a bearer token (API token or session) or the session cookie. */
  async identify(headers: IncomingHttpHeaders): Promise<Found | undefined> {
    const bearer = bearerOf(headers);
    if (bearer) {
      const token = this.options.apiTokens.find((t) => verifySecret(bearer, t.hash));
      if (token) return { identity: { kind: 'token', name: token.name, role: 'engineer' }, via: 'bearer' };
      // A wrong bearer token does not fall back to the cookie: the caller meant the token.
      const identity = await this.session(tokenHash(bearer));
      return identity ? { identity, via: 'bearer' } : undefined;
    }
    const cookie = cookieValue(headers.cookie, SESSION_COOKIE);
    if (!cookie) return undefined;
    const identity = await this.session(tokenHash(cookie));
    return identity ? { identity, via: 'cookie' } : undefined;
  }

  /** The identity of an open dashboard connection (Dashboard 2.0 puts its id on msg._client). */
  identityOfClient(client: unknown): Identity | undefined {
    const socketId = (client as { socketId?: unknown } | undefined)?.socketId;
    return typeof socketId === 'string' ? this.sockets.get(socketId)?.identity : undefined;
  }

  /** Why the person on this dashboard connection may not run `action`, or undefined. */
  actionRefusal(client: unknown, action: string): string | undefined {
    return actionRefusal(this.identityOfClient(client), action);
  }

  private track(identity: Identity, res: Response): void {
    const session = sessionOf(identity);
    if (!session) return;
    const entry = { session, res };
    this.open.add(entry);
    res.once('close', () => this.open.delete(entry));
  }

  // ---- /api and /v1 ---------------------------------------------------------------------

  /** Authenticates /api and /v1 (createFrontApp mounts it after the machine-signed exemptions). */
  api(): RequestHandler {
    return (req, res, next) => {
      this.identify(req.headers).then(
        (found) => {
          if (!found) {
            const error = bearerOf(req.headers)
              ? 'invalid bearer token'
              : 'log in or send a bearer token (Authorization: Bearer <token>)';
            res.status(401).set('WWW-Authenticate', 'Bearer').json(errorBody(error));
            return;
          }
          const path = req.originalUrl.split('?')[0];
          const refusal = apiRefusal(found.identity, req.method, path);
          if (refusal) {
            res.status(403).json(errorBody(`${actorOf(found.identity)} may not do this: ${refusal}`));
            return;
          }
          if (found.via === 'cookie' && !isSafeMethod(req.method) && !isSameOrigin(originOf(req.headers))) {
            res.status(403).json(errorBody('refused: the request came from another site'));
            return;
          }
          attachIdentity(req, found.identity);
          this.track(found.identity, res);
          next();
        },
        (err: Error) => {
          this.options.log(`[access] could not check a login: ${err.message}`);
          res
            .status(503)
            .set('Retry-After', '5')
            .json(errorBody('logins cannot be checked now; retry shortly'));
        },
      );
    };
  }

  // ---- login page, logout, display links --------------------------------------------------

  /** Answers a login attempt: throttled per address, logged with the address when it fails. */
  private async tryLogin(
    req: Request,
    username: string,
    password: string,
  ): Promise<
    | { ok: true; user: { username: string; role: string }; token: string }
    | { ok: false; status: number; error: string; retryAfterS?: number }
  > {
    const address = req.socket.remoteAddress ?? 'unknown';
    const now = this.now();
    const decision = this.throttle.check(address, username, now.getTime());
    if (!decision.allowed) {
      const retryAfterS = Math.ceil(decision.retryAfterMs / 1000);
      this.options.log(`[access] login refused for "${username}" from ${address}: ${decision.reason}`);
      return {
        ok: false,
        status: 429,
        retryAfterS,
        error: `${decision.reason}; try again in ${Math.ceil(retryAfterS / 60)} min`,
      };
    }
    const user = await this.accounts.verifyPassword(username, password);
    if (!user) {
      const wait = this.throttle.failed(address, username, now.getTime());
      this.options.log(`[access] failed login for "${username}" from ${address}`);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      return { ok: false, status: 401, error: 'wrong user name or password' };
    }
    this.throttle.succeeded(address, username);
    const token = await this.accounts.openSession(
      { username: user.username },
      { address, now, lifetimeMs: this.userSessionMs },
    );
    this.options.log(`[access] ${user.username} (${user.role}) logged in from ${address}`);
    return { ok: true, user, token };
  }

  private get userSessionMs(): number {
    return this.options.userSessionMs ?? 12 * 3600 * 1000;
  }

  private setCookie(req: Request, res: Response, token: string, maxAgeMs: number): void {
    res.cookie(SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'lax',
      secure: req.secure,
      path: '/',
      maxAge: maxAgeMs,
    });
  }

  private async logout(req: Request, res: Response, token: string | undefined): Promise<void> {
    const given = token ?? bearerOf(req.headers) ?? cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (given) {
      const hash = tokenHash(given);
      const identity = await this.session(hash);
      await this.accounts.endSession(hash, 'logged out', this.now());
      this.cache.delete(hash);
      this.endConnections(new Set([hash]));
      if (identity) this.options.log(`[access] ${actorOf(identity)} logged out`);
    }
    res.clearCookie(SESSION_COOKIE, { path: '/' });
  }

  /** GET/POST /login, POST /logout, GET /display/:token. */
  pages(): express.Router {
    const router = express.Router();
    const bodies = [express.urlencoded({ extended: false, limit: '10kb' }), express.json({ limit: '10kb' })];

    router.get('/login', async (req, res, next) => {
      try {
        const found = await this.identify(req.headers);
        res
          .type('html')
          .set('Cache-Control', 'no-store')
          .send(
            loginPage({
              next: safeNextPath(req.query.next),
              loggedInAs: found && found.identity.kind !== 'token' ? found.identity : undefined,
              message: typeof req.query.message === 'string' ? req.query.message.slice(0, 200) : undefined,
            }),
          );
      } catch (err) {
        next(err);
      }
    });

    router.post('/login', ...bodies, async (req, res, next) => {
      const json = Boolean(req.is('application/json'));
      const fail = (status: number, error: string, next: string) =>
        json
          ? res.status(status).json(errorBody(error))
          : res.status(status).type('html').send(loginPage({ next, error }));
      try {
        const body = (req.body ?? {}) as Record<string, unknown>;
        const nextPath = safeNextPath(body.next);
        if (!isSameOrigin(originOf(req.headers)))
          return void fail(403, 'refused: the login came from another site', nextPath);
        const { username, password } = body;
        if (typeof username !== 'string' || typeof password !== 'string' || !username || !password) {
          return void fail(400, 'enter a user name and a password', nextPath);
        }
        const result = await this.tryLogin(req, username.trim().toLowerCase(), password);
        if (!result.ok) {
          if (result.retryAfterS) res.set('Retry-After', String(result.retryAfterS));
          return void fail(result.status, result.error, nextPath);
        }
        this.setCookie(req, res, result.token, this.userSessionMs);
        if (json) res.json({ success: true, user: { name: result.user.username, role: result.user.role } });
        else res.redirect(303, nextPath);
      } catch (err) {
        next(err);
      }
    });

    const logout: RequestHandler = async (req, res, next) => {
      try {
        if (req.method === 'POST' && !isSameOrigin(originOf(req.headers))) {
          res.status(403).json(errorBody('refused: the request came from another site'));
          return;
        }
        await this.logout(req, res, undefined);
        if (req.is('application/json')) res.json({ success: true });
        else res.redirect(303, '/login?message=' + encodeURIComponent('You are logged out.'));
      } catch (err) {
        next(err);
      }
    };
    router.post('/logout', ...bodies, logout);
    router.get('/logout', logout);

    router.get('/display/:token', async (req, res, next) => {
      try {
        const address = req.socket.remoteAddress ?? 'unknown';
        const now = this.now();
        const decision = this.throttle.check(address, '(display link)', now.getTime());
        if (!decision.allowed) {
          res.status(429).type('html').send(messagePage('Too many wrong display links', decision.reason));
          return;
        }
        const display = await this.accounts.displayByToken(req.params.token, now);
        if (!display) {
          this.throttle.failed(address, '(display link)', now.getTime());
          this.options.log(`[access] unknown or revoked display link opened from ${address}`);
          res
            .status(404)
            .type('html')
            .send(
              messagePage(
                'This display link does not work',
                'It was revoked or mistyped. Ask an engineer for a new link (floorflow display add).',
              ),
            );
          return;
        }
        const lifetimeMs = this.options.displaySessionMs ?? 400 * 24 * 3600 * 1000;
        const token = await this.accounts.openSession(
          { displayName: display.name },
          { address, now, lifetimeMs },
        );
        this.options.log(`[access] display ${display.name} logged in from ${address}`);
        this.setCookie(req, res, token, lifetimeMs);
        res.redirect(303, display.pages.length > 0 ? `/dashboard/${display.pages[0]}` : '/dashboard');
      } catch (err) {
        next(err);
      }
    });
    return router;
  }

  // ---- the editor -----------------------------------------------------------------------

  /**
   * Mounted at /editor before Node-RED's admin app: the editor's own login (POST /auth/token)
   * goes through the floorflow login, throttled per address, and issues a floorflow session;
   * the session cookie is handed to Node-RED as a bearer token, which adminAuth.tokens checks.
   */
  editor(): express.Router {
    const router = express.Router();
    const bodies = [express.urlencoded({ extended: false, limit: '10kb' }), express.json({ limit: '10kb' })];

    router.post('/auth/token', ...bodies, async (req, res, next) => {
      try {
        const body = (req.body ?? {}) as Record<string, unknown>;
        if (!isSameOrigin(originOf(req.headers))) {
          res.status(403).json({ error: 'access_denied', error_description: 'login from another site' });
          return;
        }
        const { username, password } = body;
        if (typeof username !== 'string' || typeof password !== 'string') {
          res
            .status(400)
            .json({ error: 'invalid_request', error_description: 'username and password required' });
          return;
        }
        const result = await this.tryLogin(req, username.trim().toLowerCase(), password);
        if (!result.ok) {
          if (result.retryAfterS) res.set('Retry-After', String(result.retryAfterS));
          // Node-RED's editor shows "login failed" for any 4xx; 403 is what it answered before.
          res
            .status(result.status === 429 ? 429 : 403)
            .json({ error: 'access_denied', error_description: result.error });
          return;
        }
        if (result.user.role !== 'engineer') {
          await this.accounts.endSession(tokenHash(result.token), 'not an engineer', this.now());
          res.status(403).json({
            error: 'access_denied',
            error_description: `${result.user.username} is an ${result.user.role}: only engineers may edit flows`,
          });
          return;
        }
        this.setCookie(req, res, result.token, this.userSessionMs);
        res.json({
          access_token: result.token,
          expires_in: Math.floor(this.userSessionMs / 1000),
          token_type: 'Bearer',
        });
      } catch (err) {
        next(err);
      }
    });

    router.post('/auth/revoke', ...bodies, async (req, res, next) => {
      try {
        if (!isSameOrigin(originOf(req.headers))) {
          res.status(403).end();
          return;
        }
        const token = (req.body as { token?: unknown } | undefined)?.token;
        await this.logout(req, res, typeof token === 'string' && token ? token : undefined);
        res.json({ redirect: '/login?message=' + encodeURIComponent('You are logged out.') });
      } catch (err) {
        next(err);
      }
    });

    router.use(async (req, res, next) => {
      try {
        const cookie = cookieValue(req.headers.cookie, SESSION_COOKIE);
        if (!req.headers.authorization && cookie) {
          if (!isSafeMethod(req.method) && !isSameOrigin(originOf(req.headers))) {
            res.status(403).json(errorBody('refused: the request came from another site'));
            return;
          }
          req.headers.authorization = `Bearer ${cookie}`;
        }
        // The editor page itself: a login page for anyone who is not an engineer.
        if (req.method === 'GET' && req.path === '/') {
          const found = await this.identify(req.headers);
          if (!mayEdit(found?.identity)) {
            const message = found
              ? `${found.identity.name} cannot open the editor: log in as an engineer.`
              : undefined;
            const query = new URLSearchParams({ next: '/editor/', ...(message ? { message } : {}) });
            res.redirect(303, `/login?${query.toString()}`);
            return;
          }
        }
        next();
      } catch (err) {
        next(err);
      }
    });
    return router;
  }

  /** For the HTTP server's 'upgrade' event, before Node-RED's: the editor's WebSocket carries the cookie as a token. */
  onUpgrade = (req: IncomingMessage): void => {
    const path = (req.url ?? '').split('?')[0];
    if (!/^\/editor\/comms$/i.test(path) || req.headers.authorization) return;
    const cookie = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (cookie && isSameOrigin(originOf(req.headers))) req.headers.authorization = `Bearer ${cookie}`;
  };

  /** Node-RED's adminAuth: the editor's users are floorflow's engineers, through their sessions. */
  adminAuth(): Record<string, unknown> {
    const asEditor = (identity: Identity | undefined) =>
      identity && mayEdit(identity) ? { username: identity.name, permissions: '*' } : null;
    return {
      type: 'credentials',
      users: async (username: string) => {
        const users = await this.accounts.listUsers();
        const user = users.find((u) => u.username === username && !u.disabled_at && u.role === 'engineer');
        return user ? { username: user.username, permissions: '*' } : null;
      },
      // Passwords are checked by floorflow's POST /editor/auth/token (throttled per address);
      // Node-RED's own password exchange, which locked users out by name, is never reached.
      authenticate: async () => null,
      tokens: async (token: string) => asEditor(await this.session(tokenHash(token))),
    };
  }

  // ---- dashboards -----------------------------------------------------------------------

  /** Mounted at /dashboard before Node-RED's routes: pages and their files need a login. */
  dashboard(): RequestHandler {
    return (req, res, next) => {
      this.identify(req.headers).then(
        (found) => {
          if (!found) {
            if (wantsHtml(req)) {
              res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
            } else {
              res.status(401).json(errorBody('log in to see the floor displays'));
            }
            return;
          }
          const page = req.path.split('/')[1] ?? '';
          const isPage = page !== '' && !page.includes('.') && !page.startsWith('_') && page !== 'assets';
          if (isPage && !mayOpenPage(found.identity, page) && found.identity.kind === 'display') {
            res.redirect(303, `/dashboard/${found.identity.pages[0]}`);
            return;
          }
          attachIdentity(req, found.identity);
          next();
        },
        (err: Error) => next(err),
      );
    };
  }

  /**
   * Dashboard 2.0's `ioMiddleware`: a socket.io connection needs a session, and each message it
   * sends is checked against that session when it arrives. It replaces Dashboard 2.0's default
   * middleware, so that one's two checks come first, unchanged.
   */
  socketMiddleware = (socket: DashboardSocket, next: (err?: Error) => void): void => {
    if ((socket.client.conn.request.url ?? '').includes('transport=websocket')) {
      // Dashboard 2.0 refuses direct WebSocket handshakes; its client always starts with polling.
      socket.client.conn.close();
      return;
    }
    if (socket.handshake.xdomain !== false) {
      socket.disconnect(true);
      return;
    }
    this.identify(socket.request.headers).then(
      (found) => {
        if (!found) return next(new Error('log in to see the floor displays'));
        this.admit(socket, found.identity);
        next();
      },
      () => next(new Error('logins cannot be checked now; retry shortly')),
    );
  };

  private admit(socket: DashboardSocket, identity: Identity): void {
    this.sockets.set(socket.id, { socket, identity });
    socket.on('disconnect', () => this.sockets.delete(socket.id));
    socket.data.floorflow = publicIdentity(identity);
    socket.use((packet, nextPacket) => {
      // A connection whose session ended since it opened is being cut off: drop what it sends.
      if (!this.sockets.has(socket.id)) return;
      const [event, , msg] = packet as [string, unknown, unknown];
      // Flows see who sent a widget message on msg._client.user, stamped here, never the page's word.
      if ((event === 'widget-action' || event === 'widget-send') && msg && typeof msg === 'object') {
        const m = msg as { _client?: Record<string, unknown> };
        m._client = { ...(m._client ?? {}), user: publicIdentity(identity) };
      }
      nextPacket();
    });
    if (identity.kind === 'display' && identity.pages.length > 0) this.limitToPages(socket, identity.pages);
  }

  /** A display limited to some pages gets only their configuration and their widgets' messages. */
  private limitToPages(socket: DashboardSocket, pages: string[]): void {
    const emit = socket.emit.bind(socket);
    let widgets: Set<string> | undefined;
    socket.emit = (event: string, ...args: unknown[]): boolean => {
      if (event === 'ui-config') {
        const limited = limitUiConfig(args[1], pages);
        widgets = limited.widgets;
        return emit(event, args[0], limited.config, ...args.slice(2));
      }
      const widget = /^(?:msg-input|widget-load|widget-sync):(.+)$/.exec(event)?.[1];
      if (widget !== undefined && widgets && !widgets.has(widget)) return true;
      return emit(event, ...args);
    };
  }

  // ---- re-checking open connections ------------------------------------------------------

  private endConnections(dead: Set<string>): void {
    for (const [id, { socket, identity }] of this.sockets) {
      const session = sessionOf(identity);
      if (session && dead.has(session)) {
        this.sockets.delete(id);
        socket.disconnect(true);
      }
    }
    for (const entry of this.open) {
      if (dead.has(entry.session)) {
        this.open.delete(entry);
        entry.res.destroy();
      }
    }
  }

  /** Ends the connections of sessions that ended, expired or lost their user or display. */
  async recheck(): Promise<void> {
    const now = this.now();
    const sessions = new Set<string>();
    for (const { identity } of this.sockets.values()) {
      const s = sessionOf(identity);
      if (s) sessions.add(s);
    }
    for (const entry of this.open) sessions.add(entry.session);
    try {
      const live = await this.accounts.liveSessions([...sessions], now);
      const dead = new Set([...sessions].filter((s) => !live.has(s)));
      for (const s of dead) this.cache.delete(s);
      if (dead.size > 0) {
        this.options.log(`[access] ${dead.size} ended session(s): their open connections are closed`);
        this.endConnections(dead);
      }
      const used = [...this.used, ...live];
      this.used.clear();
      await this.accounts.touchSessions([...new Set(used)], now);
      // Once an hour or so: forget sessions that ended more than a week ago.
      if (this.sweeps++ % 240 === 0) await this.accounts.pruneSessions(now, 7 * 24 * 3600 * 1000);
    } catch (err) {
      this.options.log(`[access] open sessions not re-checked: ${(err as Error).message}`);
    }
  }
}
