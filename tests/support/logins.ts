// Logging in to the real runtime as people and displays do: users and displays made with the
// CLI, the login form's JSON variant, and requests from another loopback address (127.0.0.2),
// which is how a test plays a stranger on the plant network.
import http from 'node:http';
import { runCli } from './runtime-process';

export const SESSION_COOKIE = 'floorflow_session';

/** `floorflow user add`; returns the password. */
export function addUser(
  env: NodeJS.ProcessEnv,
  name: string,
  role: string,
  password = `${name}-password-1`,
): string {
  const result = runCli(['user', 'add', name, '--role', role, '--password', password], env);
  if (result.status !== 0) throw new Error(`user add ${name} failed: ${result.stderr}`);
  return password;
}

/** `floorflow display add`; returns the display link's path (/display/<token>). */
export function addDisplay(env: NodeJS.ProcessEnv, name: string, pages: string[]): string {
  const args = ['display', 'add', name, ...(pages.length > 0 ? ['--pages', pages.join(',')] : [])];
  const result = runCli(args, env);
  const path = /\/display\/\S+/.exec(result.stdout)?.[0];
  if (result.status !== 0 || !path)
    throw new Error(`display add ${name} failed: ${result.stderr}${result.stdout}`);
  return path;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The session cookie the response set, as `floorflow_session=<token>`. */
  cookie?: string;
}

/** One HTTP request over a plain socket, optionally from another loopback address. */
export function rawRequest(
  baseUrl: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: unknown; localAddress?: string } = {},
): Promise<RawResponse> {
  const url = new URL(path, baseUrl);
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: options.method ?? (body ? 'POST' : 'GET'),
        localAddress: options.localAddress,
        // A connection of its own for each request: with the shared keep-alive agent, a request
        // sent while the server closes the idle connection (its 5 s keep-alive timeout) failed
        // with "socket hang up" on a loaded machine, after a slow CLI call between two requests.
        agent: false,
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...options.headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          const set = res.headers['set-cookie']?.find((c) => c.startsWith(`${SESSION_COOKIE}=`));
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            cookie: set?.split(';')[0],
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Logs in with the login form's JSON variant; resolves with the session cookie. */
export async function loginCookie(baseUrl: string, username: string, password: string): Promise<string> {
  const res = await rawRequest(baseUrl, '/login', { body: { username, password } });
  if (res.status !== 200 || !res.cookie)
    throw new Error(`login as ${username} failed: ${res.status} ${res.body}`);
  return res.cookie;
}

/** Opens a display link as a kiosk does; resolves with the session cookie. */
export async function displayCookie(baseUrl: string, linkPath: string): Promise<string> {
  const res = await rawRequest(baseUrl, linkPath);
  if (res.status !== 303 || !res.cookie) throw new Error(`display link failed: ${res.status} ${res.body}`);
  return res.cookie;
}

/** Logs in through the login page in a browser, as a person does, and waits for `then` to load. */
export async function loginInBrowser(
  page: import('playwright-core').Page,
  baseUrl: string,
  username: string,
  password: string,
  then: string,
): Promise<void> {
  await page.goto(`${baseUrl}/login?next=${encodeURIComponent(then)}`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${baseUrl}${then}`), page.click('[data-test="login"]')]);
}
