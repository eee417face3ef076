import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import { type FloorflowServices, ManualClock } from '../common/services';
import { type TestDatabase, createTestDatabase } from '../../tests/support/db';
import engravingLookup from './engraving-lookup';

helper.init(require.resolve('node-red'));

type FlowNode = Parameters<typeof helper.load>[1][number] & Record<string, unknown>;
type Message = NodeMessage & Record<string, unknown>;

const flow: FlowNode[] = [
  { id: 'tab', type: 'tab' },
  {
    id: 'lookup',
    type: 'floorflow-engraving-lookup',
    z: 'tab',
    name: 'look up',
    schemaVersion: 1,
    wires: [['answer']],
  },
  { id: 'answer', type: 'helper', z: 'tab' },
];

describe('engraving look-up node', function () {
  this.timeout(30000);
  let db: TestDatabase;
  let jobId: string;

  before(async () => {
    db = await createTestDatabase();
    await db.pool.query(
      `INSERT INTO engraving.items (id, name, stock_available, max_lines) VALUES ('cup-10', 'Cup 10 in', 5, 3)`,
    );
    const row = await db.pool.query<{ id: string }>(
      `INSERT INTO engraving.engraving_jobs (customer_id, item_id, text, due_date, status)
       VALUES ('cust-1', 'cup-10', '["Club Champion"]', '2026-01-20', 'queued') RETURNING id::text AS id`,
    );
    jobId = row.rows[0].id;
  });
  after(async () => {
    await db.drop();
  });
  beforeEach(async () => {
    const services: FloorflowServices = {
      pool: db.pool,
      topicPrefix: 'floorflow',
      runtimeId: 'test',
      events: new EventEmitter(),
      flowVersion: () => '1.2.0',
      machineSecret: async () => undefined,
      clock: new ManualClock(new Date('2026-01-05T08:00:00Z')),
    };
    helper.settings({ floorflow: services } as Parameters<typeof helper.settings>[0]);
    await helper.load(engravingLookup, flow);
  });
  afterEach(async () => {
    await helper.unload();
  });

  /** What the node answers for a request the `http in` node matched with these params and path. */
  async function ask(params: Record<string, string>, path: string): Promise<Message> {
    const answered = new Promise<Message>((resolve) => helper.getNode('answer').on('input', resolve));
    helper.getNode('lookup').receive({ req: { params, path } } as unknown as NodeMessage);
    return answered;
  }

  it('a request with a job id answers with the job and its queue position', async () => {
    const answer = await ask({ id: jobId }, `/api/engraving-jobs/${jobId}`);
    assert.equal(answer.statusCode, 200);
    const data = (answer.payload as { data: { id: number; status: string; queue_position: number } }).data;
    assert.deepEqual([data.id, data.status, data.queue_position], [Number(jobId), 'queued', 1]);
  });

  it('a request for the job preview answers with the SVG', async () => {
    const answer = await ask({ id: jobId }, `/api/engraving-jobs/${jobId}/preview.svg`);
    assert.equal(answer.statusCode, 200);
    assert.match(String((answer.headers as Record<string, string>)['content-type']), /^image\/svg\+xml/);
    assert.match(String(answer.payload), />Club Champion</);
  });

  it('a request without a job id answers with the queue', async () => {
    const answer = await ask({}, '/api/engraving/queue');
    const data = (answer.payload as { data: { queue: Array<{ id: number }>; depth: number } }).data;
    assert.deepEqual([data.depth, data.queue.map((q) => q.id)], [1, [Number(jobId)]]);
  });

  it('an unknown job is a 404, for the job and for its preview', async () => {
    assert.equal((await ask({ id: '999' }, '/api/engraving-jobs/999')).statusCode, 404);
    assert.equal((await ask({ id: '999' }, '/api/engraving-jobs/999/preview.svg')).statusCode, 404);
  });
});
