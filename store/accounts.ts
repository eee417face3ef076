// Accounts, floor displays and sessions (floorflow.users, floorflow.displays,
// floorflow.sessions, migration 070). Passwords are bcrypt hashes; display links and session
// tokens are random 256-bit values kept as SHA-256 hashes. Time comes from the caller.
import crypto from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { Pool } from 'pg';
import {
  type DisplayIdentity,
  type Role,
  type UserIdentity,
  isRole,
  nameProblem,
  passwordProblem,
} from '../core/access';
import { FloorflowError } from '../core/errors';
import { randomSecret } from '../core/secrets';
import { withTransaction } from './db';

/** bcrypt's cost: about 0.1 s per check here, which bounds guessing to a few per second per core. */
const BCRYPT_ROUNDS = 11;
/** Compared against when the user name is unknown, so the answer takes as long as a wrong password. */
const DUMMY_HASH = bcrypt.hashSync('not a password of anyone', BCRYPT_ROUNDS);

export interface UserRecord {
  username: string;
  role: Role;
  created_at: Date;
  password_changed_at: Date;
  disabled_at: Date | null;
  last_login_at: Date | null;
}

export interface DisplayRecord {
  name: string;
  pages: string[];
  created_at: Date;
  revoked_at: Date | null;
  last_seen_at: Date | null;
}

export type SessionIdentity = UserIdentity | DisplayIdentity;

export function tokenHash(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

function invalid(message: string): FloorflowError {
  return new FloorflowError('FF_INPUT_INVALID', message);
}

export class AccountStore {
  constructor(private readonly pool: Pool) {}

  async addUser(username: string, role: string, password: string): Promise<void> {
    const problem = nameProblem(username, 'user name');
    if (problem) throw invalid(problem);
    if (!isRole(role)) throw invalid(`role must be engineer, operator or viewer`);
    const weak = passwordProblem(password);
    if (weak) throw invalid(`password too weak: ${weak}`);
    const hash = await bcrypt.hash(password, BCRYPT_ROUNDS);
    const inserted = await this.pool.query(
      `INSERT INTO floorflow.users (username, role, password_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
      [username, role, hash],
    );
    if (inserted.rowCount === 0) throw new FloorflowError('FF_CONFLICT', `user ${username} already exists`);
  }

  /**
   * The `admin` engineer of the first start. `hash` is the bcrypt hash the runtime keeps in
   * its secrets; `replace` (FLOORFLOW_ADMIN_PASSWORD is set) makes it admin's password again.
   */
  async ensureAdmin(hash: string, replace: boolean): Promise<void> {
    await this.pool.query(
      `INSERT INTO floorflow.users (username, role, password_hash) VALUES ('admin', 'engineer', $1)
       ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, password_changed_at = now()
       WHERE $2 AND floorflow.users.password_hash <> EXCLUDED.password_hash`,
      [hash, replace],
    );
  }

  async listUsers(): Promise<UserRecord[]> {
    const result = await this.pool.query<UserRecord>(
      `SELECT u.username, u.role, u.created_at, u.password_changed_at, u.disabled_at,
              (SELECT max(s.created_at) FROM floorflow.sessions s WHERE s.username = u.username) AS last_login_at
       FROM floorflow.users u ORDER BY u.username`,
    );
    return result.rows;
  }

  /** Disables a user and ends their sessions; a disabled user cannot log in. */
  async disableUser(username: string, now: Date): Promise<void> {
    await withTransaction(this.pool, async (c) => {
      const updated = await c.query(
        `UPDATE floorflow.users SET disabled_at = coalesce(disabled_at, $2) WHERE username = $1`,
        [username, now],
      );
      if (updated.rowCount === 0) throw new FloorflowError('FF_NOT_FOUND', `user ${username} does not exist`);
      await c.query(
        `UPDATE floorflow.sessions SET ended_at = $2, end_reason = 'user disabled' WHERE username = $1 AND ended_at IS NULL`,
        [username, now],
      );
    });
  }

  /** Sets a new password (and enables the user again); their open sessions end. */
  async resetPassword(username: string, password: string, now: Date): Promise<void> {
    const weak = passwordProblem(password);
    if (weak) throw invalid(`password too weak: ${weak}`);
    const hash = await bcrypt.hash(password, BCRYPT_ROUNDS);
    await withTransaction(this.pool, async (c) => {
      const updated = await c.query(
        `UPDATE floorflow.users SET password_hash = $2, password_changed_at = $3, disabled_at = NULL WHERE username = $1`,
        [username, hash, now],
      );
      if (updated.rowCount === 0) throw new FloorflowError('FF_NOT_FOUND', `user ${username} does not exist`);
      await c.query(
        `UPDATE floorflow.sessions SET ended_at = $2, end_reason = 'password reset' WHERE username = $1 AND ended_at IS NULL`,
        [username, now],
      );
    });
  }

  /** The user if the password is right and the user is enabled; else undefined, in the same time. */
  async verifyPassword(
    username: string,
    password: string,
  ): Promise<{ username: string; role: Role } | undefined> {
    const result = await this.pool.query<{
      username: string;
      role: Role;
      password_hash: string;
      disabled_at: Date | null;
    }>(`SELECT username, role, password_hash, disabled_at FROM floorflow.users WHERE username = $1`, [
      username,
    ]);
    const row = result.rows[0];
    const ok = await bcrypt.compare(password, row?.password_hash ?? DUMMY_HASH);
    if (!row || !ok || row.disabled_at) return undefined;
    return { username: row.username, role: row.role };
  }

  /** Registers a display and returns its link token, which is not stored in the clear. */
  async addDisplay(name: string, pages: string[]): Promise<string> {
    const problem = nameProblem(name, 'display name');
    if (problem) throw invalid(problem);
    const bad = pages.find((p) => !/^[A-Za-z0-9_-]{1,64}$/.test(p));
    if (bad !== undefined) throw invalid(`page "${bad}" is not a page path: use e.g. machines or dispatch`);
    const token = randomSecret(32);
    const inserted = await this.pool.query(
      `INSERT INTO floorflow.displays (name, token_hash, pages) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
      [name, tokenHash(token), pages],
    );
    if (inserted.rowCount === 0) throw new FloorflowError('FF_CONFLICT', `display ${name} already exists`);
    return token;
  }

  /** Revokes a display's link and ends every session it opened. */
  async revokeDisplay(name: string, now: Date): Promise<void> {
    await withTransaction(this.pool, async (c) => {
      const updated = await c.query(
        `UPDATE floorflow.displays SET revoked_at = coalesce(revoked_at, $2) WHERE name = $1`,
        [name, now],
      );
      if (updated.rowCount === 0) throw new FloorflowError('FF_NOT_FOUND', `display ${name} does not exist`);
      await c.query(
        `UPDATE floorflow.sessions SET ended_at = $2, end_reason = 'display revoked' WHERE display_name = $1 AND ended_at IS NULL`,
        [name, now],
      );
    });
  }

  async listDisplays(): Promise<DisplayRecord[]> {
    const result = await this.pool.query<DisplayRecord>(
      `SELECT name, pages, created_at, revoked_at, last_seen_at FROM floorflow.displays ORDER BY name`,
    );
    return result.rows;
  }

  /** The display a link token opens, unless it was revoked. */
  async displayByToken(token: string, now: Date): Promise<{ name: string; pages: string[] } | undefined> {
    const result = await this.pool.query<{ name: string; pages: string[] }>(
      `UPDATE floorflow.displays SET last_seen_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL RETURNING name, pages`,
      [tokenHash(token), now],
    );
    return result.rows[0];
  }

  /** Opens a session for a user or a display; returns the token for the cookie. */
  async openSession(
    owner: { username: string } | { displayName: string },
    options: { address: string | undefined; now: Date; lifetimeMs: number },
  ): Promise<string> {
    const token = randomSecret(32);
    await this.pool.query(
      `INSERT INTO floorflow.sessions (token_hash, username, display_name, address, created_at, expires_at, last_seen_at)
       VALUES ($1, $2, $3, $4, $5, $6, $5)`,
      [
        tokenHash(token),
        'username' in owner ? owner.username : null,
        'displayName' in owner ? owner.displayName : null,
        options.address ?? null,
        options.now,
        new Date(options.now.getTime() + options.lifetimeMs),
      ],
    );
    return token;
  }

  /**
   * Who holds the session with this hash, if it is still good: not ended, not expired, its
   * user enabled or its display not revoked.
   */
  async sessionIdentity(hash: string, now: Date): Promise<SessionIdentity | undefined> {
    const result = await this.pool.query<{
      username: string | null;
      role: Role | null;
      display_name: string | null;
      pages: string[] | null;
    }>(
      `SELECT s.username, u.role, s.display_name, d.pages
       FROM floorflow.sessions s
       LEFT JOIN floorflow.users u ON u.username = s.username AND u.disabled_at IS NULL
       LEFT JOIN floorflow.displays d ON d.name = s.display_name AND d.revoked_at IS NULL
       WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2
         AND (u.username IS NOT NULL OR d.name IS NOT NULL)`,
      [hash, now],
    );
    const row = result.rows[0];
    if (!row) return undefined;
    if (row.username && row.role) return { kind: 'user', name: row.username, role: row.role, session: hash };
    return {
      kind: 'display',
      name: row.display_name!,
      role: 'viewer',
      pages: row.pages ?? [],
      session: hash,
    };
  }

  /** Which of these session hashes are still good (for re-checking open connections). */
  async liveSessions(hashes: string[], now: Date): Promise<Set<string>> {
    if (hashes.length === 0) return new Set();
    const result = await this.pool.query<{ token_hash: string }>(
      `SELECT s.token_hash FROM floorflow.sessions s
       LEFT JOIN floorflow.users u ON u.username = s.username AND u.disabled_at IS NULL
       LEFT JOIN floorflow.displays d ON d.name = s.display_name AND d.revoked_at IS NULL
       WHERE s.token_hash = ANY($1) AND s.ended_at IS NULL AND s.expires_at > $2
         AND (u.username IS NOT NULL OR d.name IS NOT NULL)`,
      [hashes, now],
    );
    return new Set(result.rows.map((r) => r.token_hash));
  }

  /** Records that these sessions were used (at most once a minute each, by the caller). */
  async touchSessions(hashes: string[], now: Date): Promise<void> {
    if (hashes.length === 0) return;
    await this.pool.query(
      `UPDATE floorflow.sessions SET last_seen_at = $2 WHERE token_hash = ANY($1) AND ended_at IS NULL`,
      [hashes, now],
    );
  }

  async endSession(hash: string, reason: string, now: Date): Promise<void> {
    await this.pool.query(
      `UPDATE floorflow.sessions SET ended_at = $2, end_reason = $3 WHERE token_hash = $1 AND ended_at IS NULL`,
      [hash, now, reason],
    );
  }

  /** Forgets sessions that ended or expired more than `keepMs` ago. */
  async pruneSessions(now: Date, keepMs: number): Promise<number> {
    const before = new Date(now.getTime() - keepMs);
    const result = await this.pool.query(
      `DELETE FROM floorflow.sessions WHERE coalesce(ended_at, expires_at) < $1`,
      [before],
    );
    return result.rowCount ?? 0;
  }
}
