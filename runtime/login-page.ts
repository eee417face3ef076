// The login page and the short pages a display or a person sees when a link does not work:
// plain HTML in the floor displays' high-contrast style, no script, nothing but the form.
import type { Identity } from '../core/access';
import { ROLE_SUMMARY } from '../core/access';

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
  body { background: #000; color: #fff; font: 22px/1.4 system-ui, sans-serif; margin: 0;
         display: flex; min-height: 100vh; align-items: center; justify-content: center; }
  main { width: min(30em, 92vw); }
  h1 { color: #ffd600; font-size: 1.6em; margin: 0 0 .6em; }
  label { display: block; margin: .8em 0 .2em; }
  input { width: 100%; box-sizing: border-box; font: inherit; padding: .4em; background: #111;
          color: #fff; border: 2px solid #888; border-radius: 6px; }
  button { margin-top: 1.2em; font: inherit; font-weight: bold; padding: .5em 1.4em; background: #ffd600;
           color: #000; border: 0; border-radius: 6px; cursor: pointer; }
  .error { background: #8b0000; padding: .5em .8em; border-radius: 6px; }
  .note { color: #ccc; font-size: .8em; }
  a { color: #ffd600; }`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · floorflow</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

export function loginPage(options: {
  next: string;
  error?: string;
  message?: string;
  loggedInAs?: Identity;
}): string {
  const who = options.loggedInAs;
  const current = who
    ? `<p class="note" data-test="logged-in-as">Logged in as <b>${escape(who.name)}</b> (${who.role}: ${escape(
        ROLE_SUMMARY[who.role],
      )}). <a href="/logout">Log out</a> · <a href="/dashboard">Floor displays</a></p>`
    : '';
  return page(
    'Log in',
    `<h1>floorflow: log in</h1>
${options.message ? `<p data-test="message">${escape(options.message)}</p>` : ''}
${options.error ? `<p class="error" role="alert" data-test="login-error">${escape(options.error)}</p>` : ''}
${current}
<form method="post" action="/login">
  <input type="hidden" name="next" value="${escape(options.next)}">
  <label for="username">User name</label>
  <input id="username" name="username" autocomplete="username" autocapitalize="none" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit" data-test="login">Log in</button>
</form>
<p class="note">Floor displays open with their display link and need no password.</p>`,
  );
}

export function messagePage(title: string, text: string): string {
  return page(title, `<h1>${escape(title)}</h1><p data-test="message">${escape(text)}</p>`);
}
