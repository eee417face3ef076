import assert from 'node:assert/strict';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import validate from './processing-validate';

describe('processing-validate node', () => {
  const t = processingNodeTest();

  it('records validation at progress 10 with its log row and sends the job on', async () => {
    await t.load(validate, 'floorflow-processing-validate');
    const job = await t.claimed('ORD-V1', { content: ['a.pdf'] });
    const { out } = await t.send({ payload: job });
    assert.ok(out, 'the job was sent on');
    const row = await t.db.pool.query(
      `SELECT progress, completed_stage FROM processing.processing_jobs WHERE id = $1`,
      [job.id],
    );
    assert.deepEqual(row.rows[0], { progress: 10, completed_stage: 'validation' });
    const logs = await t.db.pool.query(
      `SELECT message, flow_version FROM processing.processing_job_logs WHERE job_id = $1 AND category = 'stage'`,
      [job.id],
    );
    assert.deepEqual(logs.rows, [{ message: 'order ORD-V1 validated', flow_version: '2.0.0' }]);
  });

  it('an order whose content is not a list fails the attempt to the Catch node and records nothing', async () => {
    await t.load(validate, 'floorflow-processing-validate');
    const job = await t.claimed('ORD-V2', { content: 'a.pdf' });
    const { caught } = await t.send({ payload: job });
    assert.ok(caught, 'the Catch node saw the failure');
    const error = caught.error as { message: string };
    assert.match(error.message, /validation: order ORD-V2: details.content must be a list/);
    const row = await t.db.pool.query(
      `SELECT completed_stage FROM processing.processing_jobs WHERE id = $1`,
      [job.id],
    );
    assert.equal(row.rows[0].completed_stage, null);
  });

  it('a job that passed validation in an earlier attempt passes through without a second log row', async () => {
    await t.load(validate, 'floorflow-processing-validate');
    const job = await t.claimed('ORD-V3');
    const { out } = await t.send({ payload: { ...job, completed_stage: 'validation' } });
    assert.ok(out);
    const logs = await t.db.pool.query(
      `SELECT count(*)::int AS n FROM processing.processing_job_logs WHERE job_id = $1 AND category = 'stage'`,
      [job.id],
    );
    assert.equal(logs.rows[0].n, 0);
  });

  it('a message that is not a claimed job fails to the Catch node', async () => {
    await t.load(validate, 'floorflow-processing-validate');
    const { caught } = await t.send({ payload: { id: 7 } });
    assert.match((caught?.error as { message: string }).message, /not a claimed processing job/);
  });
});
