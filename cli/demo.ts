// `floorflow demo`: the runtime on a demo data directory (<data dir>/demo), a small plant loaded
// through the import, and simulated machines of every kind doing a shift's work, so a new user
// sees every floor page move within a minute. Ctrl-C stops the machines, then the runtime.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import { type ImportKind, type ImportRecords, parseImportJson } from '../core/import';
import { type FloorflowConfig, loadConfig } from '../settings';
import { type RuntimeHandle, StartAborted, startRuntime } from '../runtime/index';
import { loadSecrets } from '../runtime/secrets';
import { importRows } from '../store/import';
import { type MachineKind, MachineStore } from '../store/machines';
import { recordFinished } from '../store/workpanel';
import { describeReport } from './import';
import {
  DEMO_ITEMS,
  DEMO_PRODUCTS,
  DEMO_WRITER_FAULTS,
  type DemoWave,
  demoOperations,
  demoWave,
  shiftStamp,
} from './demo-plant';
import { DemoPress, DemoScanner } from './demo-machines';
import { EmbosserSimulator } from './embosser-simulator';
import { EngraverSimulator } from './engraver-simulator';

/** The admin password of the demo unless FLOORFLOW_ADMIN_PASSWORD is set: the demo has no secrets. */
export const DEMO_PASSWORD = 'floorflow-demo';

export const DEMO_MACHINES: ReadonlyArray<{ id: string; kind: MachineKind }> = [
  { id: 'PRESS-1', kind: 'press' },
  { id: 'SCAN-COAT', kind: 'scanner' },
  { id: 'SCAN-CUT', kind: 'scanner' },
  { id: 'EMB-1', kind: 'embosser' },
  { id: 'EMB-2', kind: 'embosser' },
  { id: 'ENG-1', kind: 'engraver' },
  { id: 'ENG-2', kind: 'engraver' },
];

/** How often each part of the floor acts, in ms. Tests may make the plant faster. */
export interface DemoPace {
  press: number;
  scan: number;
  emboss: number;
  engrave: number;
  dispatch: number;
  confirm: number;
  flaky: number;
  wave: number;
  /** How long an embosser or engraver works on one job. */
  machineWork: number;
}

export const DEMO_PACE: DemoPace = {
  press: 3000,
  scan: 3500,
  emboss: 5000,
  engrave: 6000,
  dispatch: 7000,
  confirm: 5000,
  flaky: 40000,
  wave: 180000,
  machineWork: 2500,
};

type Log = (line: string) => void;

/** The demo's data directory and its own copies of the flows. */
function demoConfig(base: FloorflowConfig): FloorflowConfig {
  const dataDir = path.join(base.dataDir, 'demo');
  const flowsDir = path.join(dataDir, 'flows');
  const dashboardsDir = path.join(dataDir, 'dashboards');
  // Fresh copies at every run: the demo shows the flows this version ships, and a deploy in the
  // demo's editor never writes to the plant's own flows.
  for (const [from, to] of [
    [base.flowsDir, flowsDir],
    [base.dashboardsDir, dashboardsDir],
  ]) {
    fs.rmSync(to, { recursive: true, force: true });
    fs.cpSync(from, to, { recursive: true });
  }
  setDemoWriterFaults(path.join(flowsDir, 'processing.json'));
  return {
    ...base,
    dataDir,
    flowsDir,
    dashboardsDir,
    adminPassword: base.adminPassword ?? DEMO_PASSWORD,
    // A token for this run: the demo's floor drives the API with it, and it is printed.
    apiToken: base.apiToken ?? crypto.randomBytes(18).toString('base64url'),
  };
}

/** The demo's copy of the processing flow gets the simulated USB writer's demo fault profile. */
function setDemoWriterFaults(file: string): void {
  if (!fs.existsSync(file)) return;
  const nodes = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<Record<string, unknown>>;
  for (const node of nodes) if (node.type === 'floorflow-usb-writer') node.faults = DEMO_WRITER_FAULTS;
  fs.writeFileSync(file, JSON.stringify(nodes, null, 2) + '\n');
}

async function load<K extends ImportKind>(
  pool: Pool,
  kind: K,
  records: Array<ImportRecords[K]>,
  log: Log,
  source: string,
): Promise<void> {
  // Through the import's own checks, as a file of the plant would go.
  const parsed = parseImportJson(kind, records);
  if (!parsed.ok) throw new Error(`demo ${kind}: ${parsed.error}`);
  const report = await importRows(pool, kind, parsed.rows, parsed.errors, { actor: 'demo', at: new Date() });
  for (const line of describeReport(report, source)) log(`[demo] ${line}`);
}

/** A repeating action; one run at a time, its failures logged, never thrown. */
class Loops {
  private readonly timers = new Set<NodeJS.Timeout>();
  private running = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly log: Log) {}

  every(name: string, ms: number, action: () => Promise<void>): void {
    const tick = () => {
      if (this.stopped) return;
      const run = action()
        .catch((err: Error) => this.log(`[demo] ${name}: ${err.message}`))
        .finally(() => {
          this.running.delete(run);
          if (!this.stopped) this.timers.add(setTimeout(tick, ms));
        });
      this.running.add(run);
    };
    this.timers.add(setTimeout(tick, Math.min(ms, 1000)));
  }

  later(ms: number, action: () => Promise<void>, name: string): void {
    if (this.stopped) return;
    this.timers.add(
      setTimeout(() => {
        if (this.stopped) return;
        const run = action()
          .catch((err: Error) => this.log(`[demo] ${name}: ${err.message}`))
          .finally(() => this.running.delete(run));
        this.running.add(run);
      }, ms),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(this.running);
  }
}

/** The floor pages' paths (`/embossing`, ...), read from the dashboard flows, so new pages are listed too. */
function dashboardPages(dir: string): string[] {
  const paths: string[] = [];
  for (const file of fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    try {
      const nodes = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as unknown;
      if (!Array.isArray(nodes)) continue;
      for (const n of nodes as Array<{ type?: unknown; path?: unknown }>)
        if (n.type === 'ui-page' && typeof n.path === 'string') paths.push(n.path);
    } catch {
      // A file the runtime could not read either: it said so at start.
    }
  }
  return paths;
}

export interface DemoHandle {
  runtime: RuntimeHandle;
  stop(): Promise<void>;
}

/** Starts the runtime, loads the plant and starts the floor; resolves once everything runs. */
export async function startDemo(
  base: FloorflowConfig,
  options: { log?: Log; pace?: Partial<DemoPace>; signal?: AbortSignal; random?: () => number } = {},
): Promise<DemoHandle> {
  const log = options.log ?? ((line: string) => console.log(line));
  const pace = { ...DEMO_PACE, ...options.pace };
  const random = options.random ?? Math.random;
  const config = demoConfig(base);
  const runtime = await startRuntime(config, log, { signal: options.signal });
  const pool = runtime.database.pool;
  const base_ = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${runtime.httpPort}`;
  const api = async (
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
  ): Promise<Record<string, unknown>> => {
    const res = await fetch(base_ + route, {
      method,
      headers: { authorization: `Bearer ${config.apiToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status >= 400 && res.status !== 409)
      throw new Error(`${method} ${route} answered ${res.status}: ${String(answer.error ?? '')}`);
    return answer;
  };

  const loops = new Loops(log);
  const machines: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async () => {
    await loops.stop();
    for (const m of machines) await m.stop().catch(() => undefined);
  };
  try {
    // ---- the plant -----------------------------------------------------------------------
    const stamp = shiftStamp(new Date());
    await load(pool, 'products', DEMO_PRODUCTS, log, 'product catalogue');
    await load(pool, 'engraving-items', DEMO_ITEMS, log, 'engraving items');
    const waves: DemoWave[] = [];
    const printQueue: DemoWave['impositions'] = [];
    const scanQueue: Array<{ runlistId: string; operation: string }> = [];
    const printed = new Map<string, Set<string>>();
    const loadWave = async (wave: DemoWave) => {
      await load(pool, 'jobs', wave.jobs, log, `shift ${wave.stamp} jobs`);
      await load(pool, 'plates', wave.plates, log, `shift ${wave.stamp} plates`);
      await load(pool, 'orders', wave.orders, log, `shift ${wave.stamp} orders`);
      waves.push(wave);
      printQueue.push(...wave.impositions);
    };
    await loadWave(demoWave(stamp, 6));

    // ---- the machines ----------------------------------------------------------------------
    const { secrets } = loadSecrets(config.dataDir, {});
    const store = new MachineStore(pool, secrets.machineSealKey);
    const secretOf = async (id: string, kind: MachineKind) =>
      store.add(id, kind).catch(() => store.rotateSecret(id));
    const url = `mqtt://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${runtime.mqttPort}`;
    const prefix = config.topicPrefix;
    const press = new DemoPress(
      { machineId: 'PRESS-1', secret: await secretOf('PRESS-1', 'press'), url, prefix },
      pool,
    );
    const coater = new DemoScanner({
      machineId: 'SCAN-COAT',
      secret: await secretOf('SCAN-COAT', 'scanner'),
      url,
      prefix,
    });
    const cutter = new DemoScanner({
      machineId: 'SCAN-CUT',
      secret: await secretOf('SCAN-CUT', 'scanner'),
      url,
      prefix,
    });
    const workers: Array<{ id: string; sim: EmbosserSimulator; busy: number }> = [];
    for (const m of DEMO_MACHINES.filter((d) => d.kind === 'embosser' || d.kind === 'engraver')) {
      const simOptions = {
        machineId: m.id,
        secret: await secretOf(m.id, m.kind),
        url,
        prefix,
        workMs: pace.machineWork,
        failShare: 0.12,
        random,
      };
      const sim =
        m.kind === 'engraver' ? new EngraverSimulator(simOptions) : new EmbosserSimulator(simOptions);
      const worker = { id: m.id, sim, busy: 0 };
      sim.on('job', () => worker.busy++);
      sim.on('reported', (r: { jobId: string; status: string }) => {
        if (r.status === 'failed') log(`[demo] ${m.id}: simulated machine failure on job ${r.jobId}`);
        if (r.status === 'completed' || r.status === 'failed') worker.busy = Math.max(0, worker.busy - 1);
      });
      sim.on('error', (err: Error) => log(`[demo] ${m.id}: ${err.message}`));
      workers.push(worker);
    }
    for (const m of [press, coater, cutter]) {
      await m.start();
      machines.push(m);
    }
    for (const w of workers) {
      await w.sim.start();
      machines.push(w.sim);
    }

    // ---- the floor -------------------------------------------------------------------------
    loops.every('press', pace.press, async () => {
      const next = printQueue.shift();
      if (!next) return;
      if (random() < 0.1) {
        log(`[demo] PRESS-1: simulated paper jam on ${next.impositionId}; it is printed again later`);
        await press.print(next.impositionId, 'ABORTED');
        printQueue.push(next);
        return;
      }
      await press.print(next.impositionId, 'PRINTED');
      const done = printed.get(next.runlistId) ?? new Set<string>();
      done.add(next.impositionId);
      printed.set(next.runlistId, done);
      const wave = waves.find((w) => w.impositions.includes(next));
      const all = wave?.impositions.filter((i) => i.runlistId === next.runlistId) ?? [];
      if (all.every((i) => done.has(i.impositionId)))
        for (const operation of demoOperations(next.runlistId).slice(1))
          scanQueue.push({ runlistId: next.runlistId, operation });
    });

    loops.every('scanners', pace.scan, async () => {
      const next = scanQueue.shift();
      if (!next) return;
      await (next.operation === 'coating' ? coater : cutter).scan(next.runlistId, next.operation);
    });

    let nextEmbosser = 0;
    loops.every('embossing', pace.emboss, async () => {
      const open = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM embossing.embossing_jobs WHERE status IN ('queued', 'sent', 'accepted', 'in_progress')`,
      );
      if (open.rows[0].n < 4) {
        // A plate pair goes to the embosser together.
        const pair = await pool.query<{ id: string }>(
          `SELECT p.id::text AS id FROM embossing.plates p
            WHERE p.status = 'ready_for_embossing' AND p.unavailable_reason IS NULL
              AND NOT EXISTS (SELECT 1 FROM embossing.embossing_job_plates h WHERE h.plate_id = p.id AND h.released_at IS NULL)
              AND p.plate_number = (SELECT q.plate_number FROM embossing.plates q
                                     WHERE q.status = 'ready_for_embossing' AND q.unavailable_reason IS NULL
                                       AND NOT EXISTS (SELECT 1 FROM embossing.embossing_job_plates h
                                                        WHERE h.plate_id = q.id AND h.released_at IS NULL)
                                     ORDER BY q.id LIMIT 1)
            ORDER BY p.id LIMIT 2`,
        );
        if (pair.rows.length > 0) {
          const machineId = nextEmbosser++ % 2 === 0 ? 'EMB-1' : 'EMB-2';
          await api('POST', '/api/embossing-jobs', {
            plate_ids: pair.rows.map((r) => Number(r.id)),
            machine_id: machineId,
          });
        }
      }
      // The operator at the embossers sends a failed job again.
      const failed = await pool.query<{ id: string }>(
        `SELECT id::text AS id FROM embossing.embossing_jobs WHERE status = 'failed' ORDER BY id LIMIT 1`,
      );
      if (failed.rows[0]) await api('POST', `/api/embossing-jobs/${failed.rows[0].id}/retry`, {});
    });

    let engraved = 0;
    loops.every('engraving', pace.engrave, async () => {
      const open = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM engraving.engraving_jobs WHERE status IN ('queued', 'designing', 'pending_approval', 'engraving', 'qa', 'needs_attention')`,
      );
      if (open.rows[0].n < 6) {
        engraved++;
        const item = DEMO_ITEMS[engraved % DEMO_ITEMS.length];
        const lines = ['Club Champion', `Season ${new Date().getUTCFullYear()}`, 'Well played'].slice(
          0,
          Math.min(item.max_lines, 1 + (engraved % 3)),
        );
        await api('POST', '/api/engraving-jobs', {
          customer_id: `CUST-${100 + (engraved % 7)}`,
          item_id: item.id,
          text: lines,
          rush: engraved % 5 === 0,
          due_date: new Date(Date.now() + (1 + (engraved % 3)) * 86400000).toISOString(),
          ...(engraved % 3 === 0 ? { artwork_url: `https://example.com/artwork/${engraved}.svg` } : {}),
        });
      }
      // The customer approves a waiting design; the QA station checks what was engraved.
      const design = await pool.query<{ id: string }>(
        `SELECT id::text AS id FROM engraving.engraving_jobs WHERE status = 'pending_approval' ORDER BY id LIMIT 1`,
      );
      if (design.rows[0]) await api('POST', `/api/engraving-jobs/${design.rows[0].id}/design/approve`, {});
      const qa = await pool.query<{ id: string }>(
        `SELECT id::text AS id FROM engraving.engraving_jobs WHERE status = 'qa' ORDER BY id LIMIT 1`,
      );
      if (qa.rows[0]) {
        const passed = random() >= 0.15;
        await api('POST', `/api/engraving-jobs/${qa.rows[0].id}/qa`, {
          passed,
          ...(passed ? {} : { notes: 'simulated QA failure: letters off centre' }),
        });
      }
      // A machine failure is never re-sent on its own (the item may be marked): the operator
      // at the engravers sends the job again, to the other engraver.
      const attention = await pool.query<{ id: string }>(
        `SELECT id::text AS id FROM engraving.engraving_jobs WHERE status = 'needs_attention' ORDER BY id LIMIT 1`,
      );
      if (attention.rows[0]) await api('POST', `/api/engraving-jobs/${attention.rows[0].id}/retry`, {});
    });

    let dispatches = 0;
    loops.every('dispatch', pace.dispatch, async () => {
      dispatches++;
      // Products leave (dispatched) and come back (a new order), keeping a few live to show.
      const live = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM trackopz.products p
          WHERE p.product_code IS NOT NULL
            AND (SELECT state FROM trackopz.jobs j WHERE j.product_id = p.id ORDER BY created_at DESC, id DESC LIMIT 1) = 'ON'`,
      );
      const want = live.rows[0].n > 4 && dispatches % 2 === 1 ? 'ON' : 'OFF';
      const product = await pool.query<{ id: string }>(
        `SELECT p.id::text AS id FROM trackopz.products p
           JOIN LATERAL (SELECT state FROM trackopz.jobs j WHERE j.product_id = p.id
                          ORDER BY created_at DESC, id DESC LIMIT 1) s ON true
          WHERE p.product_code IS NOT NULL AND s.state = $1 ORDER BY random() LIMIT 1`,
        [want],
      );
      const id = product.rows[0]?.id;
      if (!id) return;
      if (want === 'ON') {
        // The operator at the workpanel reports the run finished, then it is dispatched.
        await recordFinished(pool, {
          productId: id,
          machineId: 'PRESS-1',
          quantity: 100 * (1 + (dispatches % 5)),
          operatorId: 'demo',
          now: new Date(),
        });
        await api('POST', '/api/live-products/dispatchable', { productId: id, reason: 'dispatched' });
      } else
        await api('POST', '/api/products/lifecycle', {
          productId: id,
          action: 'reactivate',
          reason: 'new order',
        });
    });

    loops.every('orders', pace.confirm, async () => {
      const order = await pool.query<{ order_number: string }>(
        `SELECT order_number FROM processing.orders WHERE status = 'pending' AND order_number LIKE 'ORD-%' ORDER BY id LIMIT 1`,
      );
      if (order.rows[0]) await api('POST', `/api/admin/orders/${order.rows[0].order_number}/confirm`, {});
    });

    let flakes = 0;
    loops.every('connections', pace.flaky, async () => {
      flakes++;
      if (flakes % 2 === 1) {
        (flakes % 4 === 1 ? coater : press).dropConnection();
        log(`[demo] ${flakes % 4 === 1 ? 'SCAN-COAT' : 'PRESS-1'}: simulated network drop; it reconnects`);
        return;
      }
      // An idle embosser or engraver loses power and comes back.
      const idle = workers.find((w) => w.busy === 0 && w.sim.connected);
      if (!idle) return;
      log(`[demo] ${idle.id}: simulated power cut; back in 5 s`);
      await idle.sim.goOffline();
      loops.later(5000, () => idle.sim.comeBack(), 'power back');
    });

    let waveNo = 0;
    loops.every('shifts', pace.wave, async () => {
      if (waveNo++ === 0) return;
      await loadWave(demoWave(shiftStamp(new Date(), waveNo), 4));
    });
  } catch (err) {
    await stopAll();
    await runtime.stop('demo could not start');
    throw err;
  }

  const pages = dashboardPages(config.dashboardsDir);
  log(
    [
      'floorflow demo running: a small plant with simulated presses, scanners, embossers, engravers and a USB writer',
      `  dashboards  ${base_}/dashboard  (${pages.map((p) => `/dashboard${p}`).join(', ')})`,
      `  editor      ${base_}/editor`,
      `  login       admin / ${config.adminPassword === DEMO_PASSWORD ? DEMO_PASSWORD : '(FLOORFLOW_ADMIN_PASSWORD)'}`,
      `  API token   ${config.apiToken}  (this run only)`,
      `  data        ${config.dataDir}  (delete it to start the demo afresh)`,
      '  stop        Ctrl-C',
    ].join('\n'),
  );
  let stopping: Promise<void> | undefined;
  return {
    runtime,
    stop: () =>
      (stopping ??= (async () => {
        log('[demo] stopping the machines');
        await stopAll();
        await runtime.stop('demo stopped');
      })()),
  };
}

/** `floorflow demo`: runs until Ctrl-C (or SIGTERM); 0 after a clean stop. */
export async function demoCommand(): Promise<number> {
  const config = loadConfig();
  const starting = new AbortController();
  let demo: DemoHandle | undefined;
  let resolveStopped: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  let signalled = false;
  const stopDemo = (running: DemoHandle) =>
    running.stop().then(
      () => resolveStopped(0),
      (err: Error) => {
        console.error(`stop failed: ${err.message}`);
        resolveStopped(1);
      },
    );
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    if (demo) void stopDemo(demo);
    else starting.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    demo = await startDemo(config, { signal: starting.signal });
  } catch (err) {
    if (err instanceof StartAborted) return 0;
    throw err;
  }
  // A signal while the floor was being set up: stop now.
  if (signalled) void stopDemo(demo);
  return stopped;
}
