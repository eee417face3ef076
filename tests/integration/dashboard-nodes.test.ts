import assert from 'node:assert/strict';
import type { NodeMessage } from 'node-red';
import type { Identity } from '../../core/access';
import type { FlowNode } from '../../core/flow-files';
import type { AlertEvent } from '../../nodes/alerts/alert-check';
import type { BoardMessagePayload } from '../../nodes/dashboard-feed/dashboard-boards';
import type { ActionResult } from '../../nodes/dashboard-action/dashboard-actions';
import { ManualClock } from '../../nodes/common/services';
import type { EmbossingBoard, MachineView, ProcessingBoard } from '../../store/dashboards';
import { createJob, failJob, logMachineMessage } from '../../store/embossing';
import { seedFloor } from '../support/dashboard-fixtures';
import { type FlowKit, startFlowKit } from '../support/flow-kit';

type Message = NodeMessage & Record<string, unknown>;

/** Every message reaching helper node `id`, in order. */
function collect(kit: FlowKit, id: string): Message[] {
  const seen: Message[] = [];
  kit.node(id).on('input', (msg: Message) => seen.push(msg));
  return seen;
}

const tab: FlowNode = { id: 'dash-test', type: 'tab', label: 'dashboard test' };

/** The display connection an operator is logged in on (Dashboard 2.0 sets msg._client.socketId). */
const OPERATOR = { socketId: 'operator-screen' };
const OLGA: Identity = { kind: 'user', name: 'olga', role: 'operator', session: 'test-session' };

describe('floor display nodes (dashboard-feed, dashboard-action, alerts)', function () {
  this.timeout(60000);
  let kit: FlowKit | undefined;
  afterEach(async () => {
    await kit?.stop();
    kit = undefined;
  });

  describe('floorflow-dashboard-feed', () => {
    /** A feed for `page` wired to a helper; resolves once the board it sends at start arrived. */
    async function startFeed(
      page: string,
      refreshSeconds: number,
    ): Promise<{ feedKit: FlowKit; clock: ManualClock; boards: Message[] }> {
      const clock = new ManualClock(new Date());
      const feedKit = await startFlowKit({
        flows: [],
        clock,
        extraNodes: [
          tab,
          {
            id: 'feed',
            type: 'floorflow-dashboard-feed',
            z: 'dash-test',
            page,
            refreshSeconds,
            wires: [['board']],
          },
          { id: 'board', type: 'helper', z: 'dash-test' },
        ],
      });
      kit = feedKit;
      const boards = collect(feedKit, 'board');
      await feedKit.waitFor(() => boards.length >= 1, 'the board sent at start');
      return { feedKit, clock, boards };
    }

    it('sends the Machines board read from the database at start and again on a display connect, with offline machines stale', async () => {
      const { feedKit: k, boards } = await startFeed('machines', 0);
      await k.addMachine('press-4', 'press');
      const secret = await k.addMachine('scanner-2', 'scanner');
      const client = await k.connectMachine('scanner-2', secret);
      await client.publishAsync('floorflow/machines/scanner-2/status', JSON.stringify({ state: 'busy' }), {
        qos: 1,
        retain: true,
      });
      await k.waitFor(
        async () =>
          (await k.pool.query(`SELECT 1 FROM floorflow.machines WHERE last_status->>'state' = 'busy'`))
            .rowCount,
        'the status recorded',
      );

      k.receive('feed', { payload: 'connect', _client: { socketId: 'display-1' } });
      const board = await k.waitFor(() => {
        const last = boards.at(-1)?.payload as BoardMessagePayload | undefined;
        const machines = (last?.board as { machines: MachineView[] } | undefined)?.machines;
        return machines?.length === 2 ? machines : undefined;
      }, 'a board with both machines');
      const press = board.find((m) => m.machine_id === 'press-4')!;
      const scanner = board.find((m) => m.machine_id === 'scanner-2')!;
      assert.equal(press.online, false);
      assert.equal(press.state, 'offline');
      assert.ok(press.stale_since, 'an offline machine carries "stale since"');
      assert.equal(scanner.online, true);
      assert.equal(scanner.state, 'busy');
      assert.equal(scanner.stale_since, null);
      assert.equal(boards.at(-1)!.topic, 'machines');
    });

    it('re-reads its page when a domain event arrives, so a change made elsewhere shows without a reload', async () => {
      const { feedKit: k, clock, boards } = await startFeed('processing', 0);
      const seeded = await seedFloor(k.pool, clock.now());
      k.services.events.emit('engraving', { type: 'design_created' });
      const board = await k.waitFor(() => {
        const b = (boards.at(-1)?.payload as BoardMessagePayload | undefined)?.board as
          ProcessingBoard | undefined;
        return b && b.designs.length === 2 ? b : undefined;
      }, 'the processing board after the event');
      assert.deepEqual(
        board.designs.map((d) => d.job_id),
        seeded.designJobs,
      );
      assert.equal(board.processingCounts.processing, 1);
      assert.equal(board.qa.rate, 50);
      assert.equal(board.active[0].progress, 60);
      assert.match(board.failures.map((f) => f.reason).join(' '), /checksum mismatch/);
    });

    it('refreshes every refreshSeconds on the runtime clock', async () => {
      const { feedKit: k, clock, boards } = await startFeed('embossing', 10);
      await k.pool.query(
        `INSERT INTO embossing.plates (plate_number, batch_code, status) VALUES ('ZZ-1', 'B-1', 'ready_for_embossing')`,
      );
      await clock.advance(10000);
      const board = await k.waitFor(() => {
        const b = (boards.at(-1)?.payload as BoardMessagePayload | undefined)?.board as
          EmbossingBoard | undefined;
        return b && b.plates.length === 1 ? b : undefined;
      }, 'the embossing board after the refresh');
      assert.equal(board.plates[0].plate_number, 'ZZ-1');
    });
  });

  describe('floorflow-dashboard-action', () => {
    async function start(): Promise<{ kit: FlowKit; results: Message[]; lifecycle: unknown[] }> {
      const started = await startFlowKit({
        flows: [],
        clock: new ManualClock(new Date()),
        extraNodes: [
          tab,
          { id: 'action', type: 'floorflow-dashboard-action', z: 'dash-test', wires: [['result']] },
          { id: 'result', type: 'helper', z: 'dash-test' },
        ],
      });
      started.loginDashboardClient(OPERATOR.socketId, OLGA);
      const lifecycle: unknown[] = [];
      started.services.events.on('lifecycle', (e) => lifecycle.push(e));
      return { kit: started, results: collect(started, 'result'), lifecycle };
    }

    it('"Send to Embosser" queues a job holding the plates and announces the transitions; the same plate again is refused', async () => {
      const started = await start();
      kit = started.kit;
      await kit.addMachine('embosser-1', 'embosser');
      const plate = await kit.pool.query<{ id: string }>(
        `INSERT INTO embossing.plates (plate_number, batch_code, status) VALUES ('AB-1', 'B-7', 'ready_for_embossing') RETURNING id::text AS id`,
      );
      const plateId = plate.rows[0].id;
      kit.receive('action', {
        _client: OPERATOR,
        topic: 'emboss',
        payload: { plate_ids: [plateId], machine_id: 'embosser-1' },
      });
      await kit.waitFor(() => started.results.length === 1, 'the outcome');
      const ok = started.results[0].payload as ActionResult;
      assert.equal(ok.ok, true, ok.message);
      assert.equal(started.results[0].topic, 'action-result');
      const jobs = await kit.pool.query(
        `SELECT status, machine_id, created_by FROM embossing.embossing_jobs`,
      );
      assert.deepEqual(jobs.rows, [{ status: 'queued', machine_id: 'embosser-1', created_by: 'olga' }]);
      // Announced by the lifecycle relay once it reads the committed transition (on the commit's
      // notice), which may come after the action's outcome: wait for it rather than race it.
      await kit.waitFor(() => started.lifecycle.length >= 1, 'the plate transition announced');

      kit.receive('action', {
        _client: OPERATOR,
        topic: 'emboss',
        payload: { plate_ids: [plateId], machine_id: 'embosser-1' },
      });
      await kit.waitFor(() => started.results.length === 2, 'the second outcome');
      const refused = started.results[1].payload as ActionResult;
      assert.equal(refused.ok, false);
      assert.match(refused.message, /no longer available/);
      assert.equal((await kit.pool.query(`SELECT 1 FROM embossing.embossing_jobs`)).rowCount, 1);
    });

    it('Retry queues a failed embossing job again, Cancel cancels it, and Logs lists its machine messages', async () => {
      const started = await start();
      kit = started.kit;
      await kit.addMachine('embosser-1', 'embosser');
      const plate = await kit.pool.query<{ id: string }>(
        `INSERT INTO embossing.plates (plate_number, status) VALUES ('AB-2', 'ready_for_embossing') RETURNING id::text AS id`,
      );
      const at = new Date();
      const { job } = await createJob(
        kit.pool,
        { plateIds: [plate.rows[0].id], machineId: 'embosser-1' },
        { at },
      );
      await failJob(kit.pool, job.id, 'machine did not answer', { at });
      await logMachineMessage(kit.pool, {
        direction: 'out',
        machineId: 'embosser-1',
        jobId: job.id,
        channel: 'mqtt',
        payload: { type: 'emboss', job_id: Number(job.id) },
        result: 'timeout',
        at,
      });
      const status = async () =>
        (
          await kit!.pool.query<{ status: string }>(
            `SELECT status FROM embossing.embossing_jobs WHERE id = $1`,
            [job.id],
          )
        ).rows[0].status;

      kit.receive('action', {
        _client: OPERATOR,
        topic: 'retry_embossing',
        payload: { job_id: job.id },
      });
      await kit.waitFor(() => started.results.length === 1, 'the retry outcome');
      assert.equal((started.results[0].payload as ActionResult).ok, true);
      assert.equal(await status(), 'queued');

      kit.receive('action', {
        _client: OPERATOR,
        topic: 'embossing_logs',
        payload: { job_id: job.id },
      });
      await kit.waitFor(() => started.results.length === 2, 'the logs');
      const logs = started.results[1].payload as ActionResult;
      assert.deepEqual(
        (logs.data as { messages: Array<{ direction: string; result: string }> }).messages.map((m) => [
          m.direction,
          m.result,
        ]),
        [['out', 'timeout']],
      );

      kit.receive('action', {
        _client: OPERATOR,
        topic: 'cancel_embossing',
        payload: { job_id: job.id },
      });
      await kit.waitFor(() => started.results.length === 3, 'the cancel outcome');
      assert.equal((started.results[2].payload as ActionResult).ok, true);
      assert.equal(await status(), 'cancelled');

      kit.receive('action', {
        _client: OPERATOR,
        topic: 'retry_embossing',
        payload: { job_id: job.id },
      });
      await kit.waitFor(() => started.results.length === 4, 'the refused retry');
      assert.equal(
        (started.results[3].payload as ActionResult).ok,
        false,
        'a cancelled job cannot be retried',
      );
    });

    it('moves a live product to past with its reason, approves a design, and refuses a second move', async () => {
      const started = await start();
      kit = started.kit;
      const seeded = await seedFloor(kit.pool, new Date());
      const product = seeded.liveProducts[0];
      kit.receive('action', {
        _client: OPERATOR,
        topic: 'move_to_past',
        payload: { product_id: product.id, reason: 'dispatched' },
      });
      kit.receive('action', {
        _client: OPERATOR,
        topic: 'approve_design',
        payload: { job_id: seeded.designJobs[0] },
      });
      await kit.waitFor(() => started.results.length === 2, 'two outcomes');
      assert.deepEqual(
        started.results.map((r) => (r.payload as ActionResult).ok),
        [true, true],
      );
      const moved = await kit.pool.query(
        `SELECT to_state, reason, actor, source FROM trackopz.product_transitions WHERE product_id = $1`,
        [product.id],
      );
      assert.deepEqual(moved.rows, [
        { to_state: 'OFF', reason: 'dispatched', actor: 'olga', source: 'dispatch' },
      ]);
      const design = await kit.pool.query(
        `SELECT status, decided_by FROM engraving.designs WHERE job_id = $1`,
        [seeded.designJobs[0]],
      );
      assert.deepEqual(design.rows, [{ status: 'approved', decided_by: 'olga' }]);

      kit.receive('action', {
        _client: OPERATOR,
        topic: 'move_to_past',
        payload: { product_id: product.id, reason: 'dispatched' },
      });
      await kit.waitFor(() => started.results.length === 3, 'the third outcome');
      assert.equal((started.results[2].payload as ActionResult).ok, false);
    });

    it('refuses every action from a viewer, a display or a connection without a login, and writes nothing; a viewer may still read logs', async () => {
      const started = await start();
      kit = started.kit;
      await kit.addMachine('embosser-1', 'embosser');
      const plate = await kit.pool.query<{ id: string }>(
        `INSERT INTO embossing.plates (plate_number, status) VALUES ('AB-9', 'ready_for_embossing') RETURNING id::text AS id`,
      );
      kit.loginDashboardClient('viewer-screen', {
        kind: 'user',
        name: 'vera',
        role: 'viewer',
        session: 's-vera',
      });
      kit.loginDashboardClient('line-display', {
        kind: 'display',
        name: 'line-2',
        role: 'viewer',
        pages: ['embossing'],
        session: 's-line',
      });
      const emboss = {
        topic: 'emboss',
        payload: { plate_ids: [plate.rows[0].id], machine_id: 'embosser-1' },
      };
      kit.receive('action', { ...emboss, _client: { socketId: 'viewer-screen' } });
      kit.receive('action', { ...emboss, _client: { socketId: 'line-display' } });
      kit.receive('action', { ...emboss, _client: { socketId: 'nobody' } });
      // A page cannot promote itself by naming a user on the message: only the connection counts.
      kit.receive('action', {
        ...emboss,
        _client: { socketId: 'nobody', user: { name: 'olga', role: 'operator' } },
      });
      await kit.waitFor(() => started.results.length === 4, 'four outcomes');
      const outcomes = started.results.map((r) => r.payload as ActionResult);
      assert.deepEqual(
        outcomes.map((o) => o.ok),
        [false, false, false, false],
      );
      assert.match(outcomes[0].message, /vera is a viewer/);
      assert.match(outcomes[1].message, /display only shows the floor/);
      assert.match(outcomes[2].message, /log in/);
      assert.equal((await kit.pool.query(`SELECT 1 FROM embossing.embossing_jobs`)).rowCount, 0);
      assert.equal((await kit.pool.query(`SELECT 1 FROM floorflow.lifecycle_transitions`)).rowCount, 0);

      kit.receive('action', {
        topic: 'embossing_logs',
        payload: { job_id: '1' },
        _client: { socketId: 'viewer-screen' },
      });
      await kit.waitFor(() => started.results.length === 5, 'the logs outcome');
      assert.equal((started.results[4].payload as ActionResult).ok, true);
    });

    it('answers an unknown action with a refusal instead of an error', async () => {
      const started = await start();
      kit = started.kit;
      kit.receive('action', {
        _client: OPERATOR,
        topic: 'machines',
        payload: {},
      });
      await kit.waitFor(() => started.results.length === 1, 'the outcome');
      assert.deepEqual(started.results[0].payload, {
        action: 'unknown',
        ok: false,
        message: 'unknown dashboard action "machines"',
      });
    });
  });

  describe('floorflow-alerts', () => {
    async function start(clock: ManualClock, rules: Record<string, number>) {
      const started = await startFlowKit({
        flows: [],
        clock,
        extraNodes: [
          tab,
          {
            id: 'alerts',
            type: 'floorflow-alerts',
            z: 'dash-test',
            intervalSeconds: 60,
            ...rules,
            wires: [['out']],
          },
          { id: 'out', type: 'helper', z: 'dash-test' },
          { id: 'alerts-status', type: 'status', z: 'dash-test', scope: ['alerts'], wires: [['status-out']] },
          { id: 'status-out', type: 'helper', z: 'dash-test' },
        ],
      });
      const statuses = collect(started, 'status-out');
      // The check the node runs at start has finished once it shows its first status.
      await started.waitFor(() => statuses.length > 0, 'the first check');
      const published: AlertEvent[] = [];
      await new Promise<void>((resolve) =>
        started.broker!.aedes.subscribe(
          'floorflow/alerts',
          (packet, cb) => {
            published.push(JSON.parse(packet.payload.toString()) as AlertEvent);
            cb();
          },
          resolve,
        ),
      );
      return { kit: started, out: collect(started, 'out'), published };
    }

    async function rows(k: FlowKit) {
      return (
        await k.pool.query<{ alert_key: string; began_at: Date; ended_at: Date | null }>(
          `SELECT alert_key, began_at, ended_at FROM floorflow.alerts ORDER BY id`,
        )
      ).rows;
    }

    it('queue_depth fires when a queue grows past the threshold and clears when it drains, recorded with began_at and ended_at', async () => {
      const clock = new ManualClock(new Date());
      const started = await start(clock, { queueDepthAbove: 2 });
      kit = started.kit;
      await kit.pool.query(
        `INSERT INTO embossing.embossing_jobs (machine_id, status) VALUES ('embosser-1', 'queued'), ('embosser-1', 'queued'), ('embosser-1', 'queued')`,
      );
      const firedAt = new Date(clock.now().getTime() + 60000);
      await clock.advance(60000);
      await kit.waitFor(() => started.out.length === 1, 'the alert');
      assert.equal(started.out[0].payload, 'ALERT: embossing queue holds 3 jobs (more than 2)');
      await kit.waitFor(() => started.published.length === 1, 'the MQTT alert');
      assert.equal(started.published[0].event, 'began');
      assert.equal(started.published[0].key, 'queue_depth:embossing');

      await clock.advance(60000);
      assert.equal((await rows(kit)).length, 1, 'an open alert is not raised twice');

      await kit.pool.query(`UPDATE embossing.embossing_jobs SET status = 'cancelled'`);
      const clearedAt = new Date(clock.now().getTime() + 60000);
      await clock.advance(60000);
      await kit.waitFor(() => started.out.length === 2, 'the clearing');
      assert.match(String(started.out[1].payload), /^cleared: embossing queue/);
      await kit.waitFor(() => started.published.length === 2, 'the MQTT clearing');
      assert.equal(started.published[1].event, 'ended');
      assert.deepEqual(await rows(kit), [
        { alert_key: 'queue_depth:embossing', began_at: firedAt, ended_at: clearedAt },
      ]);
    });

    it('qa_pass_rate fires below 80 % and clears once enough results pass', async () => {
      const clock = new ManualClock(new Date());
      const started = await start(clock, {});
      kit = started.kit;
      await kit.pool.query(
        `INSERT INTO engraving.items (id, name, stock_available, max_lines) VALUES ('cup', 'Cup', 5, 3)`,
      );
      const job = await kit.pool.query<{ id: string }>(
        `INSERT INTO engraving.engraving_jobs (customer_id, item_id, due_date, status) VALUES ('C-1', 'cup', $1, 'qa') RETURNING id::text AS id`,
        [clock.now()],
      );
      const qa = (attempt: number, passed: boolean) =>
        kit!.pool.query(
          `INSERT INTO engraving.qa_results (job_id, attempt, passed, created_at) VALUES ($1, $2, $3, $4)`,
          [job.rows[0].id, attempt, passed, clock.now()],
        );
      await qa(1, false);
      await qa(2, true);
      await clock.advance(60000);
      await kit.waitFor(() => started.out.length === 1, 'the alert');
      assert.match(String(started.out[0].payload), /QA pass rate is 50 % \(below 80 %\)/);
      for (let attempt = 3; attempt <= 6; attempt++) await qa(attempt, true);
      await clock.advance(60000);
      await kit.waitFor(() => started.out.length === 2, 'the clearing');
      assert.match(String(started.out[1].payload), /^cleared: QA pass rate/);
      const [record] = await rows(kit);
      assert.equal(record.alert_key, 'qa_pass_rate');
      assert.ok(record.ended_at, 'the alert ended');
    });

    it('machine_silent fires when a machine has been gone for more than 5 minutes and clears when it connects', async () => {
      const clock = new ManualClock(new Date(Date.now() + 1000));
      const started = await start(clock, {});
      kit = started.kit;
      const secret = await kit.addMachine('press-4', 'press');
      await clock.advance(4 * 60000);
      assert.equal(started.out.length, 0, 'silent for 4 minutes is not an alert yet');
      await clock.advance(2 * 60000);
      await kit.waitFor(() => started.out.length === 1, 'the alert');
      assert.match(String(started.out[0].payload), /^ALERT: machine press-4 silent for \d+ min/);
      assert.equal((started.out[0].alert as AlertEvent).severity, 'critical');

      await kit.connectMachine('press-4', secret);
      await kit.waitFor(
        async () => (await kit!.pool.query(`SELECT 1 FROM floorflow.machines WHERE online`)).rowCount,
        'the machine online',
      );
      kit.receive('alerts', { payload: 'check now' });
      await kit.waitFor(() => started.out.length === 2, 'the clearing');
      assert.match(String(started.out[1].payload), /^cleared: machine press-4/);
      await kit.waitFor(() => started.published.length === 2, 'both published');
    });
  });
});
