// Who may do what: the roles, the identity a request or a display connection carries, the
// name that identity leaves in audit rows, and the rules the runtime checks on the server.
// Pure: the runtime's access module (runtime/access.ts) applies these to requests and sockets.

export const ROLES = ['engineer', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** What each role may do, in the words the CLI and the docs use. */
export const ROLE_SUMMARY: Record<Role, string> = {
  engineer: 'editor and admin API, every page and action',
  operator: 'every dashboard page and its actions, and the HTTP API except /api/admin',
  viewer: 'dashboard pages and the HTTP API read-only',
};

/** A person logged in with a password. */
export interface UserIdentity {
  kind: 'user';
  name: string;
  role: Role;
  /** SHA-256 of the session token, to end or re-check the session. */
  session: string;
}

/** A floor display logged in by its link: a viewer of some pages (none listed: every page). */
export interface DisplayIdentity {
  kind: 'display';
  name: string;
  role: 'viewer';
  pages: string[];
  session: string;
}

/** A script or machine integration with a bearer token; it may do what an engineer may. */
export interface TokenIdentity {
  kind: 'token';
  name: string;
  role: 'engineer';
}

export type Identity = UserIdentity | DisplayIdentity | TokenIdentity;

/**
 * The name an identity leaves in created_by, actor and audit rows: a person's user name as it
 * is, a display as `display:<name>`, a bearer token as `token:<name>`. User names cannot hold a
 * colon, so the three never collide.
 */
export function actorOf(identity: Identity): string {
  if (identity.kind === 'user') return identity.name;
  return `${identity.kind}:${identity.name}`;
}

export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const MIN_PASSWORD_LENGTH = 8;

/** Why a user or display name cannot be used, or undefined. */
export function nameProblem(name: string, what: 'user name' | 'display name'): string | undefined {
  if (NAME_PATTERN.test(name)) return undefined;
  return `${what} "${name}" may hold only lower-case letters, digits, . _ and - (at most 64, starting with a letter or digit)`;
}

export function passwordProblem(password: string): string | undefined {
  if (password.length < MIN_PASSWORD_LENGTH) return `use at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > 200) return 'use at most 200 characters';
  return undefined;
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method.toUpperCase());
}

/** Whether `identity` may make this HTTP API request: undefined if so, else why not. */
export function apiRefusal(identity: Identity, method: string, path: string): string | undefined {
  if (identity.role === 'engineer') return undefined;
  if (isSafeMethod(method)) return undefined;
  if (identity.role === 'viewer')
    return `a ${identity.kind === 'display' ? 'display' : 'viewer'} may only read`;
  // Operators act on the floor; the admin routes (reprocessing, confirming orders) are engineers'.
  if (/^\/api\/admin(\/|$)/i.test(path)) return 'only an engineer may use the admin routes';
  return undefined;
}

/** Dashboard actions that only read; every other action changes the plant's records. */
const READ_ACTIONS = new Set(['embossing_logs', 'product_details', 'processing_logs']);

/** Whether a dashboard action only reads (logs, details): anyone logged in may, and nothing changes. */
export function isReadAction(action: string): boolean {
  return READ_ACTIONS.has(action);
}

/** Whether `identity` may run this dashboard action: undefined if so, else what to tell the person. */
export function actionRefusal(identity: Identity | undefined, action: string): string | undefined {
  if (!identity) return 'log in to use this page';
  if (READ_ACTIONS.has(action)) return undefined;
  if (identity.role === 'viewer') {
    return identity.kind === 'display'
      ? 'this display only shows the floor: log in as an operator to act'
      : `${identity.name} is a viewer: ask an engineer for the operator role to act`;
  }
  return undefined;
}

/** Whether the identity may open the editor and its admin API. */
export function mayEdit(identity: Identity | undefined): boolean {
  return identity?.kind === 'user' && identity.role === 'engineer';
}

/**
 * Whether a display may open a dashboard page (`page` without the leading slash: 'dispatch').
 * People see every page; a display the pages it was given, or every page if none were.
 */
export function mayOpenPage(identity: Identity, page: string): boolean {
  if (identity.kind !== 'display' || identity.pages.length === 0) return true;
  return identity.pages.includes(page);
}

/**
 * Request body fields that used to say who did something. Who comes from the login now, so a
 * body naming someone is refused rather than silently recorded or silently dropped.
 */
export const WHO_FIELDS = ['created_by', 'decided_by', 'inspector', 'actor', 'operatorId', 'userId'];

/** The first field of `body` that claims who acted, if any. */
export function whoFieldIn(body: unknown): string | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  return WHO_FIELDS.find((field) => Object.prototype.hasOwnProperty.call(body, field));
}

/** The message for a refused who-field. */
export function whoFieldMessage(field: string, actor: string | undefined): string {
  return `${field} is not accepted: floorflow records who made the request${actor ? ` (${actor})` : ''} from the login or API token`;
}

/** Where a successful login may send the browser: a path on this server, never another site. */
export function safeNextPath(next: unknown, fallback = '/dashboard'): string {
  if (typeof next !== 'string') return fallback;
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return fallback;
  if (/[\r\n]/.test(next) || next.length > 500) return fallback;
  return next;
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(value);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Whether a browser request came from a page of this server. A cross-site form or script
 * carries its own site's Origin (browsers send Origin on every POST) or a Sec-Fetch-Site other
 * than same-origin; a request with neither is not from a browser, so it cannot ride on a
 * person's cookie without them.
 */
export function isSameOrigin(headers: { origin?: string; host?: string; secFetchSite?: string }): boolean {
  if (headers.origin !== undefined && headers.origin !== 'null') {
    let host: string;
    try {
      host = new URL(headers.origin).host;
    } catch {
      return false;
    }
    return host === headers.host;
  }
  // A browser sends `Origin: null` under some referrer policies even for its own pages; then the
  // Sec-Fetch-Site header, which no page script can set, decides.
  if (headers.origin === 'null') return headers.secFetchSite === 'same-origin';
  if (headers.secFetchSite !== undefined) return ['same-origin', 'none'].includes(headers.secFetchSite);
  return true;
}
