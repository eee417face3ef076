// Scanners the runtime reads from a serial port (a registered scanner with `serial_port` in its
// settings), and what the runtime says on their behalf: a serial scanner has no MQTT session, so
// its open port is its connection (a session in floorflow.machine_sessions, for presence) and the
// port's state is its status (floorflow.machines.last_status, shown on the machines page).
import type { Pool } from 'pg';
import { loadScannerSettings } from './scanner-settings';
import { recordConnection, recordDisconnection } from './machines';

export interface SerialScanner {
  machineId: string;
  port: string;
  baudRate: number;
}

export async function serialScanners(pool: Pool): Promise<SerialScanner[]> {
  const settings = await loadScannerSettings(pool);
  return [...settings.entries()]
    .filter(([, s]) => s.serialPort !== undefined)
    .map(([machineId, s]) => ({ machineId, port: s.serialPort!, baudRate: s.baudRate ?? 9600 }))
    .sort((a, b) => (a.machineId < b.machineId ? -1 : 1));
}

/** The scanner's status as the runtime sees its port. */
export async function recordSerialStatus(
  pool: Pool,
  machineId: string,
  status: { state: 'online' | 'offline'; port: string; reason?: string },
): Promise<void> {
  await pool.query(
    `UPDATE floorflow.machines SET last_status = $2, last_status_at = now() WHERE machine_id = $1`,
    [machineId, JSON.stringify({ ...status, via: 'serial port' })],
  );
}

/** The port opened: a session of the scanner, online. Returns the session number. */
export async function serialPortOpened(
  pool: Pool,
  scanner: SerialScanner,
  runtimeId: string,
): Promise<number> {
  const seq = await recordConnection(
    pool,
    scanner.machineId,
    `serial:${scanner.port}`.slice(0, 200),
    runtimeId,
  );
  await recordSerialStatus(pool, scanner.machineId, { state: 'online', port: scanner.port });
  return seq;
}

/** The port closed or disappeared: its session ends, with the reason on the machines page. */
export async function serialPortClosed(
  pool: Pool,
  scanner: SerialScanner,
  sessionSeq: number,
  reason: string,
): Promise<void> {
  // The reason first: whoever sees the scanner offline sees why.
  await recordSerialStatus(pool, scanner.machineId, { state: 'offline', port: scanner.port, reason });
  await recordDisconnection(pool, scanner.machineId, sessionSeq, reason);
}
