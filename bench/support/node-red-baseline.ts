// The scan-ingest baseline: a plain Node-RED 4.1 (`node node_modules/node-red/red.js`, temp
// userDir) running the stock flow a plant would write without floorflow: `mqtt in` (the
// machine's Mosquitto at 127.0.0.1:1883, anonymous, QoS 1) → `function` doing one SQL update per
// message with `pg` (a pool handed to functions through functionGlobalContext) into a scratch
// table. Mosquitto acknowledges a publish on receipt; the row commits later, in the function.
import { ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import { freePort, REPO_ROOT, tempDir } from '../../tests/support/runtime-process';

export const SYSTEM_MOSQUITTO = { host: '127.0.0.1', port: 1883 };

export interface NodeRedBaseline {
  /** Topic prefix unique to this run: scanners publish to `<prefix>/<scanner>/scan`. */
  prefix: string;
  pid: number;
  stop(): Promise<void>;
}

/** The scratch schema: a job row updated per scan, and the scan's log row written in the same statement. */
export async function createBaselineTables(pool: Pool, codes: string[]): Promise<void> {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS baseline`);
  await pool.query(
    `CREATE TABLE baseline.jobs (code text PRIMARY KEY, coating_done boolean NOT NULL DEFAULT false,
       scans integer NOT NULL DEFAULT 0, last_scan_at timestamptz)`,
  );
  await pool.query(
    `CREATE TABLE baseline.scan_log (id bigserial PRIMARY KEY, msg_id text NOT NULL, code text NOT NULL,
       committed_at timestamptz NOT NULL DEFAULT now())`,
  );
  await pool.query(`INSERT INTO baseline.jobs (code) SELECT unnest($1::text[])`, [codes]);
}

const FUNCTION_BODY = `
const pool = global.get('pool');
const scan = msg.payload || {};
pool.query(
  "WITH u AS (UPDATE baseline.jobs SET coating_done = true, scans = scans + 1, last_scan_at = now() WHERE code = $1 RETURNING code) " +
  "INSERT INTO baseline.scan_log (msg_id, code) SELECT $2, code FROM u",
  [String(scan.code), String(scan.msg_id)]
).then(() => node.done(), (err) => node.error(err, msg));
return null;
`;

export async function startNodeRedBaseline(databaseUrl: string, poolSize: number): Promise<NodeRedBaseline> {
  const userDir = tempDir('floorflow-nr-baseline-');
  const port = await freePort();
  const prefix = `ffbench-${crypto.randomBytes(4).toString('hex')}`;
  const pgPath = path.join(REPO_ROOT, 'node_modules', 'pg');
  fs.writeFileSync(
    path.join(userDir, 'settings.js'),
    `const { Pool } = require(${JSON.stringify(pgPath)});
module.exports = {
  uiHost: '127.0.0.1',
  uiPort: ${port},
  flowFile: 'flows.json',
  credentialSecret: false,
  logging: { console: { level: 'info', metrics: false, audit: false } },
  functionGlobalContext: {
    pool: new Pool({ connectionString: ${JSON.stringify(databaseUrl)}, max: ${poolSize} }),
  },
};
`,
  );
  const flows = [
    { id: 'tab1', type: 'tab', label: 'scan ingest baseline' },
    {
      id: 'broker1',
      type: 'mqtt-broker',
      name: 'mosquitto',
      broker: SYSTEM_MOSQUITTO.host,
      port: String(SYSTEM_MOSQUITTO.port),
      clientid: `${prefix}-nodered`,
      autoConnect: true,
      usetls: false,
      protocolVersion: '4',
      keepalive: '60',
      cleansession: true,
    },
    {
      id: 'in1',
      type: 'mqtt in',
      z: 'tab1',
      name: 'scans',
      topic: `${prefix}/+/scan`,
      qos: '1',
      datatype: 'json',
      broker: 'broker1',
      nl: false,
      rap: true,
      rh: 0,
      inputs: 0,
      x: 120,
      y: 80,
      wires: [['fn1']],
    },
    {
      id: 'fn1',
      type: 'function',
      z: 'tab1',
      name: 'update job',
      func: FUNCTION_BODY,
      outputs: 0,
      timeout: 0,
      noerr: 0,
      initialize: '',
      finalize: '',
      libs: [],
      x: 320,
      y: 80,
      wires: [],
    },
  ];
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flows, null, 2));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      path.join(REPO_ROOT, 'node_modules', 'node-red', 'red.js'),
      '--userDir',
      userDir,
      '--settings',
      path.join(userDir, 'settings.js'),
    ],
    {
      cwd: userDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_RED_ENABLE_PROJECTS: 'false' },
    },
  );
  let text = '';
  child.stdout!.on('data', (b: Buffer) => (text += b.toString('utf8')));
  child.stderr!.on('data', (b: Buffer) => (text += b.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 120000;
  while (!/Connected to broker/.test(text)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`baseline Node-RED did not connect to Mosquitto:\n${text.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    prefix,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
      fs.rmSync(userDir, { recursive: true, force: true });
    },
  };
}
