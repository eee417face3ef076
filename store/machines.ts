// The machine registry and machine presence (floorflow.machines, floorflow.machine_sessions).
import { Pool, PoolClient } from 'pg';
import { hashSecret, randomSecret, seal, unseal, verifySecret } from '../core/secrets';
import { Queryable, withTransaction } from './db';

export const MACHINE_KINDS = ['embosser', 'scanner', 'press', 'engraver'] as const;
export type MachineKind = (typeof MACHINE_KINDS)[number];

export interface MachineRecord {
  machine_id: string;
  kind: MachineKind;
  online: boolean;
  online_since: Date | null;
  last_seen_at: Date | null;
  session_seq: string;
  last_status: Record<string, unknown> | null;
  last_status_at: Date | null;
  created_at: Date;
  /** Settings of the machine's own (a scanner's: see core/scanner-settings.ts). */
  settings: Record<string, unknown>;
}

export const MACHINE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export class MachineStore {
  constructor(
    private readonly pool: Pool,
    private readonly sealKey: string,
  ) {}

  /** Registers a machine and returns its secret, which is not stored in the clear. */
  async add(machineId: string, kind: MachineKind): Promise<string> {
    if (!MACHINE_ID_PATTERN.test(machineId)) {
      throw new Error(`machine id "${machineId}" may hold only letters, digits, _ and - (at most 64)`);
    }
    if (!MACHINE_KINDS.includes(kind)) throw new Error(`kind must be one of ${MACHINE_KINDS.join(', ')}`);
    const secret = randomSecret(24);
    const inserted = await this.pool.query(
      `INSERT INTO floorflow.machines (machine_id, kind, secret_hash, secret_sealed)
       VALUES ($1, $2, $3, $4) ON CONFLICT (machine_id) DO NOTHING`,
      [machineId, kind, hashSecret(secret), seal(secret, this.sealKey)],
    );
    if (inserted.rowCount === 0) throw new Error(`machine "${machineId}" is already registered`);
    return secret;
  }

  async rotateSecret(machineId: string): Promise<string> {
    const secret = randomSecret(24);
    const updated = await this.pool.query(
      `UPDATE floorflow.machines SET secret_hash = $2, secret_sealed = $3, secret_rotated_at = now() WHERE machine_id = $1`,
      [machineId, hashSecret(secret), seal(secret, this.sealKey)],
    );
    if (updated.rowCount === 0) throw new Error(`machine "${machineId}" is not registered`);
    return secret;
  }

  async remove(machineId: string): Promise<boolean> {
    const deleted = await this.pool.query('DELETE FROM floorflow.machines WHERE machine_id = $1', [
      machineId,
    ]);
    return (deleted.rowCount ?? 0) > 0;
  }

  async list(): Promise<MachineRecord[]> {
    const result = await this.pool.query<MachineRecord>(
      `SELECT machine_id, kind, online, online_since, last_seen_at, session_seq, last_status, last_status_at, created_at, settings
       FROM floorflow.machines ORDER BY machine_id`,
    );
    return result.rows;
  }

  async get(machineId: string): Promise<MachineRecord | undefined> {
    const result = await this.pool.query<MachineRecord>(
      `SELECT machine_id, kind, online, online_since, last_seen_at, session_seq, last_status, last_status_at, created_at, settings
       FROM floorflow.machines WHERE machine_id = $1`,
      [machineId],
    );
    return result.rows[0];
  }

  /** The kind of the machine if the secret is right, otherwise undefined. */
  async authenticate(machineId: string, secret: string): Promise<MachineKind | undefined> {
    if (!MACHINE_ID_PATTERN.test(machineId)) return undefined;
    const result = await this.pool.query<{ kind: MachineKind; secret_hash: string }>(
      'SELECT kind, secret_hash FROM floorflow.machines WHERE machine_id = $1',
      [machineId],
    );
    const row = result.rows[0];
    // Verify against a dummy hash for unknown machines so timing does not reveal which ids exist.
    const ok = verifySecret(secret, row?.secret_hash ?? 'sha256$x$x');
    return row && ok ? row.kind : undefined;
  }

  /** The machine's secret in the clear, for verifying its callback signatures. */
  async secretOf(machineId: string): Promise<string | undefined> {
    const result = await this.pool.query<{ secret_sealed: string }>(
      'SELECT secret_sealed FROM floorflow.machines WHERE machine_id = $1',
      [machineId],
    );
    const row = result.rows[0];
    return row ? unseal(row.secret_sealed, this.sealKey) : undefined;
  }

  /** Records a new connection; returns its session number (see recordConnection). */
  async connected(machineId: string, clientId: string, runtimeId: string): Promise<number> {
    return recordConnection(this.pool, machineId, clientId, runtimeId);
  }

  /** Records the end of a session (see recordDisconnection). */
  async disconnected(machineId: string, sessionSeq: number, reason: string): Promise<void> {
    await recordDisconnection(this.pool, machineId, sessionSeq, reason);
  }

  async recordStatus(db: Queryable, machineId: string, status: Record<string, unknown>): Promise<void> {
    await db.query(
      `UPDATE floorflow.machines SET last_status = $2, last_status_at = now(), last_seen_at = now() WHERE machine_id = $1`,
      [machineId, status],
    );
  }

  async recordStatusNow(machineId: string, status: Record<string, unknown>): Promise<void> {
    await this.recordStatus(this.pool, machineId, status);
  }

  async touch(machineId: string): Promise<void> {
    await this.pool.query('UPDATE floorflow.machines SET last_seen_at = now() WHERE machine_id = $1', [
      machineId,
    ]);
  }

  /**
   * Sessions recorded by runtimes that are gone (no live lease in floorflow.leases: killed, or this
   * runtime's previous run) are over; a machine whose sessions are all over is offline. Sessions
   * of other live runtimes on the same database stay.
   */
  async closeSessionsOfGoneRuntimes(reason: string): Promise<void> {
    await withTransaction(this.pool, async (c) => {
      const ended = await c.query<{ machine_id: string }>(
        `UPDATE floorflow.machine_sessions SET disconnected_at = now(), end_reason = $1
         WHERE disconnected_at IS NULL AND runtime_id NOT IN (
           SELECT holder FROM floorflow.leases WHERE starts_with(name, 'runtime/') AND expires_at >= clock_timestamp())
         RETURNING machine_id`,
        [reason],
      );
      await this.recomputeOnline(c, ended.rows);
    });
  }

  /**
   * Ends every session this runtime held (after a crash or at stop); a machine whose sessions are
   * all over is offline.
   */
  async closeSessionsOf(runtimeId: string | null, reason: string): Promise<void> {
    await withTransaction(this.pool, async (c) => {
      const ended = await c.query<{ machine_id: string }>(
        `UPDATE floorflow.machine_sessions SET disconnected_at = now(), end_reason = $2
         WHERE disconnected_at IS NULL AND ($1::text IS NULL OR runtime_id = $1) RETURNING machine_id`,
        [runtimeId, reason],
      );
      await this.recomputeOnline(c, ended.rows);
    });
  }

  /** A machine is online while any of its sessions is open. */
  private async recomputeOnline(c: PoolClient, ended: { machine_id: string }[]): Promise<void> {
    const ids = [...new Set(ended.map((r) => r.machine_id))];
    if (ids.length === 0) return;
    await c.query(
      `UPDATE floorflow.machines m
       SET online = EXISTS (SELECT 1 FROM floorflow.machine_sessions s
                            WHERE s.machine_id = m.machine_id AND s.disconnected_at IS NULL)
       WHERE m.machine_id = ANY($1::text[])`,
      [ids],
    );
  }
}

/**
 * Records a new connection (an MQTT client, or a serial port the runtime reads a scanner from);
 * returns its session number. A machine may hold several connections
 * (`<id>` and `<id>/<suffix>`): it is online from its first and stays online since then.
 */
export async function recordConnection(
  pool: Pool,
  machineId: string,
  clientId: string,
  runtimeId: string,
): Promise<number> {
  return withTransaction(pool, async (c) => {
    const result = await c.query<{ session_seq: string }>(
      `UPDATE floorflow.machines
         SET online = true, online_since = CASE WHEN online THEN online_since ELSE now() END,
             last_seen_at = GREATEST(last_seen_at, now()), session_seq = session_seq + 1
         WHERE machine_id = $1 RETURNING session_seq`,
      [machineId],
    );
    const seq = Number(result.rows[0]?.session_seq ?? 0);
    if (seq > 0) {
      await c.query(
        `INSERT INTO floorflow.machine_sessions (machine_id, session_seq, client_id, runtime_id) VALUES ($1, $2, $3, $4)`,
        [machineId, seq, clientId, runtimeId],
      );
    }
    return seq;
  });
}

/**
 * Records the end of a session. Presence is per machine, not per connection: the machine stays
 * online while any other of its sessions is open (a short-lived second connection closing, in
 * any order, leaves the long-lived one online). The machine row is locked first, so two
 * sessions ending at once cannot both see the other still open.
 */
export async function recordDisconnection(
  pool: Pool,
  machineId: string,
  sessionSeq: number,
  reason: string,
): Promise<void> {
  await withTransaction(pool, async (c) => {
    await c.query('SELECT 1 FROM floorflow.machines WHERE machine_id = $1 FOR UPDATE', [machineId]);
    await c.query(
      `UPDATE floorflow.machine_sessions SET disconnected_at = now(), end_reason = $3
         WHERE machine_id = $1 AND session_seq = $2 AND disconnected_at IS NULL`,
      [machineId, sessionSeq, reason],
    );
    await c.query(
      `UPDATE floorflow.machines m
         SET online = EXISTS (SELECT 1 FROM floorflow.machine_sessions s
                              WHERE s.machine_id = m.machine_id AND s.disconnected_at IS NULL),
             last_seen_at = GREATEST(last_seen_at, now())
         WHERE machine_id = $1`,
      [machineId],
    );
  });
}
