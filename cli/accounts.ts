// `floorflow user …` and `floorflow display …`: the people who log in and the floor displays,
// on the runtime's database. Passwords and display links are printed once and stored hashed.
import type { Pool } from 'pg';
import { ROLES, ROLE_SUMMARY, isRole } from '../core/access';
import { FloorflowError } from '../core/errors';
import { randomSecret } from '../core/secrets';
import type { FloorflowConfig } from '../settings';
import { AccountStore } from '../store/accounts';

export class AccountsUsageError extends Error {}

type WithDatabase = <T>(config: FloorflowConfig, work: (pool: Pool) => Promise<T>) => Promise<T>;

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) throw new AccountsUsageError(`${name} needs a value`);
  args.splice(i, 2);
  return value;
}

function one(args: string[], what: string): string {
  const [value, extra] = args;
  if (!value) throw new AccountsUsageError(`${what} is missing`);
  if (extra !== undefined) throw new AccountsUsageError(`unexpected "${extra}"`);
  return value;
}

/** The link a display opens: the runtime's address as configured, since the CLI cannot know the plant's name for it. */
function displayLink(config: FloorflowConfig, token: string): string {
  const host = config.host === '0.0.0.0' ? '<this computer>' : config.host;
  return `http://${host}:${config.port}/display/${token}`;
}

function when(date: Date | null): string {
  return date ? date.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

export async function accountsCommand(
  config: FloorflowConfig,
  command: 'user' | 'display',
  argv: string[],
  withDatabase: WithDatabase,
): Promise<number> {
  const [sub, ...rest] = argv;
  const run = <T>(work: (store: AccountStore) => Promise<T>) =>
    withDatabase(config, (pool) => work(new AccountStore(pool))).catch((err: unknown) => {
      // Refusals (bad name, unknown user) are one line for the person, not a stack.
      if (err instanceof FloorflowError) throw new Error(err.message);
      throw err;
    });
  const now = new Date();
  if (command === 'user') {
    switch (sub) {
      case 'add': {
        const role = option(rest, '--role');
        const given = option(rest, '--password');
        const name = one(rest, 'user add needs <name>');
        if (!role || !isRole(role)) throw new AccountsUsageError(`--role must be one of ${ROLES.join(', ')}`);
        const password = given ?? randomSecret(12);
        await run((s) => s.addUser(name, role, password));
        console.log(`user ${name} added as ${role} (${ROLE_SUMMARY[role]}).`);
        if (!given) console.log(`password (shown once, stored hashed): ${password}`);
        return 0;
      }
      case 'list': {
        const users = await run((s) => s.listUsers());
        for (const u of users) {
          const state = u.disabled_at ? `disabled since ${when(u.disabled_at)}` : 'active';
          console.log(`${u.username}\t${u.role}\t${state}\tlast login ${when(u.last_login_at)}`);
        }
        return 0;
      }
      case 'disable': {
        const name = one(rest, 'user disable needs <name>');
        await run((s) => s.disableUser(name, now));
        console.log(`user ${name} disabled; their open sessions end within a minute.`);
        return 0;
      }
      case 'reset-password': {
        const given = option(rest, '--password');
        const name = one(rest, 'user reset-password needs <name>');
        const password = given ?? randomSecret(12);
        await run((s) => s.resetPassword(name, password, now));
        console.log(`password of ${name} reset; their open sessions end within a minute.`);
        if (!given) console.log(`new password (shown once, stored hashed): ${password}`);
        return 0;
      }
      default:
        throw new AccountsUsageError(`unknown user command "${sub ?? ''}"`);
    }
  }
  switch (sub) {
    case 'add': {
      const pages = option(rest, '--pages');
      const name = one(rest, 'display add needs <name>');
      const list = (pages ?? '')
        .split(',')
        .map((p) => p.trim().replace(/^\/+/, ''))
        .filter(Boolean);
      const token = await run((s) => s.addDisplay(name, list));
      console.log(`display ${name} added: a viewer of ${list.length > 0 ? list.join(', ') : 'every page'}.`);
      console.log(`display link (shown once, stored hashed; open it on the display):`);
      console.log(`  ${displayLink(config, token)}`);
      return 0;
    }
    case 'list': {
      const displays = await run((s) => s.listDisplays());
      for (const d of displays) {
        const state = d.revoked_at ? `revoked ${when(d.revoked_at)}` : `last seen ${when(d.last_seen_at)}`;
        console.log(`${d.name}\t${d.pages.length > 0 ? d.pages.join(',') : 'every page'}\t${state}`);
      }
      return 0;
    }
    case 'revoke': {
      const name = one(rest, 'display revoke needs <name>');
      await run((s) => s.revokeDisplay(name, now));
      console.log(`display ${name} revoked; it is logged out within a minute.`);
      return 0;
    }
    default:
      throw new AccountsUsageError(`unknown display command "${sub ?? ''}"`);
  }
}
