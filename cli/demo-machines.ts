// The demo's presses and scanners. A press reports its state over MQTT like any machine and
// writes its "print OS" rows to the database, as the printer app does; a scanner publishes
// runlist scans with the operation done. Both take time, fail now and then, and drop their
// connection to come back a little later (mqtt.js reconnects; QoS 1 scans queued meanwhile
// are sent then), so the runtime sees what it sees on a floor.
import { EventEmitter } from 'node:events';
import mqtt, { MqttClient } from 'mqtt';
import type { Pool } from 'pg';

export interface DemoMachineOptions {
  machineId: string;
  secret: string;
  url: string;
  prefix?: string;
}

/** An MQTT machine that keeps its retained status and comes back after a dropped connection. */
export class DemoMachine extends EventEmitter {
  protected client?: MqttClient;
  private readonly prefix: string;

  constructor(readonly options: DemoMachineOptions) {
    super();
    this.prefix = options.prefix ?? 'floorflow';
  }

  protected topic(kind: 'scan' | 'status'): string {
    return `${this.prefix}/machines/${this.options.machineId}/${kind}`;
  }

  async start(): Promise<void> {
    const client = await mqtt.connectAsync(this.options.url, {
      username: this.options.machineId,
      password: this.options.secret,
      clientId: `${this.options.machineId}/demo`,
      reconnectPeriod: 1500,
      clean: true,
      will: {
        topic: this.topic('status'),
        payload: Buffer.from(JSON.stringify({ state: 'offline' })),
        qos: 1,
        retain: true,
      },
    });
    this.client = client;
    client.on('connect', () => {
      this.emit('connected');
      void this.status('idle');
    });
    client.on('error', () => undefined);
    await this.status('idle');
  }

  async status(state: 'idle' | 'busy' | 'error'): Promise<void> {
    await this.client
      ?.publishAsync(this.topic('status'), JSON.stringify({ state }), { qos: 1, retain: true })
      .catch(() => undefined);
  }

  /** The cable is pulled: the broker publishes the will, mqtt.js reconnects shortly after. */
  dropConnection(): void {
    this.client?.stream?.destroy();
    this.emit('dropped');
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await client
      .publishAsync(this.topic('status'), JSON.stringify({ state: 'offline' }), { qos: 1, retain: true })
      .catch(() => undefined);
    await client.endAsync(true).catch(() => undefined);
  }
}

export class DemoScanner extends DemoMachine {
  private sent = 0;

  /** A scan of a runlist's barcode after `operation` was done on it; resolves once the broker has it. */
  async scan(code: string, operation: string): Promise<void> {
    const msgId = `${this.options.machineId}-${Date.now().toString(36)}-${++this.sent}`;
    await this.client?.publishAsync(
      this.topic('scan'),
      JSON.stringify({ code, operations: [operation], scanned_at: new Date().toISOString(), msg_id: msgId }),
      { qos: 1 },
    );
  }
}

export class DemoPress extends DemoMachine {
  constructor(
    options: DemoMachineOptions,
    private readonly pool: Pool,
  ) {
    super(options);
  }

  /**
   * Prints an imposition: a "print OS" row as the printer app writes it, with the next marker.
   * An ABORTED row is what a jam leaves; the imposition is printed again later.
   */
  async print(impositionId: string, status: 'PRINTED' | 'ABORTED'): Promise<void> {
    await this.status('busy');
    // One press writes at a time (the demo's loop), so max + 1 is the printer app's sequence.
    await this.pool.query(
      `INSERT INTO jobmanager."print OS" (name, status, marker, job_name, item_id, job_complete_time, copies)
       SELECT $1, $2, COALESCE(max(marker), 0) + 1, $1, $3, now(), $4 FROM jobmanager."print OS"`,
      [impositionId, status, this.options.machineId, status === 'PRINTED' ? 250 : 0],
    );
    await this.status(status === 'PRINTED' ? 'idle' : 'error');
  }
}
