import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import { type FloorflowServices, ManualClock } from '../common/services';
import { type TestDatabase, createTestDatabase } from '../../tests/support/db';
import engravingQa from './engraving-qa';

helper.init(require.resolve('node-red'));

type FlowNode = Parameters<typeof helper.load>[1][number] & Record<string, unknown>;
type Message = NodeMessage & Record<string, unknown>;

const flow: FlowNode[] = [
  { id: 'tab', type: 'tab' },
  {
    id: 'qa',
    type: 'floorflow-engraving-qa',
    z: 'tab',
    name: 'quality check',
    schemaVersion: 1,
    wires: [['answer'], ['reengrave'], ['escalate']],
  },
  { id: 'answer', type: 'helper', z: 'tab' },
  { id: 'reengrave', type: 'helper', z: 'tab' },
  { id: 'escalate', type: 'helper', z: 'tab' },
];

describe('engraving quality check node', function () {
  this.timeout(30000);
  let db: TestDatabase;
  let clock: ManualClock;

  before(async () => {
    db = await createTestDatabase();
    await db.pool.query(
      `INSERT INTO engraving.items (id, name, stock_available, max_lines) VALUES ('cup-10', 'Cup 10 in', 5, 3)`,
    );
  });
  after(async () => {
    await db.drop();
  });
  beforeEach(() => {
    clock = new ManualClock(new Date('2026-01-05T08:00:00Z'));
    const services: FloorflowServices = {
      pool: db.pool,
      topicPrefix: 'floorflow',
      runtimeId: 'test',
      events: new EventEmitter(),
      flowVersion: () => '1.2.0',
      machineSecret: async () => undefined,
      clock,
    };
    helper.settings({ floorflow: services } as Parameters<typeof helper.settings>[0]);
  });
  afterEach(async () => {
    await helper.unload();
  });

  /** An engraved job waiting at the QA station, as an engraver's "completed" leaves it. */
  async function engravedJob(qaAttempts = 0): Promise<string> {
    const row = await db.pool.query<{ id: string }>(
      `INSERT INTO engraving.engraving_jobs (customer_id, item_id, text, due_date, status, machine_id, stock_reserved, qa_attempts)
       VALUES ('cust-1', 'cup-10', '["Club Champion"]', '2026-01-20', 'qa', 'engraver-1', true, $1) RETURNING id::text AS id`,
      [qaAttempts],
    );
    return row.rows[0].id;
  }

  /** Sends one QA result and returns what left on each output. */
  async function check(jobId: string, passed: boolean): Promise<Message[][]> {
    const outputs: Message[][] = [[], [], []];
    ['answer', 'reengrave', 'escalate'].forEach((id, i) =>
      helper.getNode(id).on('input', (m: Message) => outputs[i].push(m)),
    );
    const answered = new Promise<void>((resolve) => helper.getNode('answer').on('input', () => resolve()));
    helper
      .getNode('qa')
      .receive({ req: { params: { id: jobId }, body: { passed } } } as unknown as NodeMessage);
    await answered;
    // The follow-on messages leave in the same send as the answer.
    await new Promise((r) => setImmediate(r));
    return outputs;
  }

  it('a pass answers with the completed job and sends nothing on to re-engrave or escalate', async () => {
    await helper.load(engravingQa, flow);
    const [answer, reengrave, escalate] = await check(await engravedJob(), true);
    assert.equal(answer[0].statusCode, 200);
    assert.equal((answer[0].payload as { data: { qa_outcome: string } }).data.qa_outcome, 'complete');
    assert.deepEqual([reengrave.length, escalate.length], [0, 0]);
  });

  it('a first failure sends the job back to be re-engraved on output 2', async () => {
    await helper.load(engravingQa, flow);
    const id = await engravedJob();
    const [answer, reengrave, escalate] = await check(id, false);
    assert.equal((answer[0].payload as { data: { qa_outcome: string } }).data.qa_outcome, 'reengrave');
    assert.equal(reengrave.length, 1);
    assert.equal(reengrave[0].topic, 'engraving/re-engrave');
    assert.deepEqual(
      {
        jobId: (reengrave[0].payload as { jobId: number }).jobId,
        status: (reengrave[0].payload as { status: string }).status,
      },
      { jobId: Number(id), status: 'queued' },
    );
    assert.equal(escalate.length, 0);
  });

  it('the third failure sends the job to a manager on output 3, with the reason', async () => {
    await helper.load(engravingQa, flow);
    const id = await engravedJob(2);
    const [, reengrave, escalate] = await check(id, false);
    assert.equal(reengrave.length, 0);
    assert.equal(escalate.length, 1);
    assert.equal(escalate[0].topic, 'engraving/escalated');
    const payload = escalate[0].payload as { jobId: number; status: string; reason: string };
    assert.deepEqual(
      [payload.jobId, payload.status, payload.reason],
      [Number(id), 'escalated', 'QA failed 3 times'],
    );
  });

  it('a job not at the QA station is a 409 answer and nothing goes on', async () => {
    await helper.load(engravingQa, flow);
    const id = await engravedJob();
    await db.pool.query(`UPDATE engraving.engraving_jobs SET status = 'queued' WHERE id = $1`, [id]);
    const [answer, reengrave, escalate] = await check(id, false);
    assert.equal(answer[0].statusCode, 409);
    assert.deepEqual([reengrave.length, escalate.length], [0, 0]);
  });
});
