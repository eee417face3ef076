// Per-scanner settings in the machine registry (floorflow.machines.settings, see
// core/scanner-settings.ts): written by `floorflow machine set`, read by the inbox writer for every
// flush with scans through a small cache, so a flush does not cost a query per scan.
import {
  readScannerSettings,
  type ScannerSettings,
  type StoredScannerSettings,
} from '../core/scanner-settings';
import type { Queryable } from './db';

export type { ScannerSettings } from '../core/scanner-settings';

/** Scanners with settings of their own, by machine id. */
export async function loadScannerSettings(db: Queryable): Promise<Map<string, ScannerSettings>> {
  const result = await db.query<{ machine_id: string; settings: unknown }>(
    `SELECT machine_id, settings FROM floorflow.machines WHERE kind = 'scanner' AND settings <> '{}'::jsonb`,
  );
  return new Map(result.rows.map((r) => [r.machine_id, readScannerSettings(r.settings)]));
}

/** A change of settings: a value sets it, null removes it, a key left out stays as it is. */
export type ScannerSettingsChange = { [K in keyof StoredScannerSettings]?: StoredScannerSettings[K] | null };

/**
 * Changes a scanner's settings; returns them as they are now, or undefined when no such machine.
 * Only scanners have them: another kind is refused.
 */
export async function updateScannerSettings(
  db: Queryable,
  machineId: string,
  change: ScannerSettingsChange,
): Promise<ScannerSettings | undefined> {
  const kind = await db.query<{ kind: string }>('SELECT kind FROM floorflow.machines WHERE machine_id = $1', [
    machineId,
  ]);
  if (kind.rowCount === 0) return undefined;
  if (kind.rows[0].kind !== 'scanner') {
    throw new Error(`machine ${machineId} is a ${kind.rows[0].kind}: only scanners have scan settings`);
  }
  const set: Record<string, unknown> = {};
  const removed: string[] = [];
  for (const [key, value] of Object.entries(change)) {
    if (value === undefined) continue;
    if (value === null) removed.push(key);
    else set[key] = value;
  }
  const result = await db.query<{ settings: unknown }>(
    `UPDATE floorflow.machines SET settings = (settings || $2::jsonb) - $3::text[]
     WHERE machine_id = $1 RETURNING settings`,
    [machineId, JSON.stringify(set), removed],
  );
  return readScannerSettings(result.rows[0].settings);
}

/** Where the inbox writer reads scanner settings from: the settings in force at a time of receipt. */
export interface ScannerSettingsSource {
  at(receivedAt: Date): Promise<ReadonlyMap<string, ScannerSettings>>;
}

/**
 * The registry's scanner settings, read again when the receipt time of the scans in hand is more
 * than `maxAgeMs` past the last read (or before it: a clock set back): a change made with
 * `floorflow machine set` while the runtime runs applies to scans received a second later.
 * Time comes from the messages (the runtime's clock), not read here.
 */
export class ScannerSettingsCache implements ScannerSettingsSource {
  private loaded?: { at: number; settings: Map<string, ScannerSettings> };
  private loading?: Promise<Map<string, ScannerSettings>>;

  constructor(
    private readonly db: Queryable,
    private readonly maxAgeMs = 1000,
  ) {}

  async at(receivedAt: Date): Promise<ReadonlyMap<string, ScannerSettings>> {
    const t = receivedAt.getTime();
    const loaded = this.loaded;
    if (loaded && t >= loaded.at && t - loaded.at <= this.maxAgeMs) return loaded.settings;
    this.loading ??= loadScannerSettings(this.db).finally(() => (this.loading = undefined));
    const settings = await this.loading;
    this.loaded = { at: t, settings };
    return settings;
  }

  /** Forgets what was read: the next flush reads the registry again. */
  invalidate(): void {
    this.loaded = undefined;
  }
}
