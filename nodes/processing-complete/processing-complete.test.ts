import assert from 'node:assert/strict';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import complete from './processing-complete';

describe('processing-complete node', () => {
  const t = processingNodeTest();

  it('completes the job at 100, releases its lease and sends the job as the API shows it', async () => {
    await t.load(complete, 'floorflow-processing-complete');
    const job = await t.claimed('ORD-D1');
    const { out } = await t.send({ payload: { ...job, completed_stage: 'verification' } });
    const shown = out?.payload as { status: string; progress: number; orderNumber: string };
    assert.equal(shown.status, 'completed');
    assert.equal(shown.progress, 100);
    assert.equal(shown.orderNumber, 'ORD-D1');
    const row = await t.db.pool.query(`SELECT lease_token FROM processing.processing_jobs WHERE id = $1`, [
      job.id,
    ]);
    assert.equal(row.rows[0].lease_token, null);
  });

  it('an attempt whose job was taken back cannot complete it', async () => {
    await t.load(complete, 'floorflow-processing-complete');
    const job = await t.claimed('ORD-D2');
    const { caught } = await t.send({
      payload: { ...job, lease_token: '00000000-0000-4000-8000-000000000000' },
    });
    assert.match((caught?.error as { message: string }).message, /no longer held by this attempt/);
    const row = await t.db.pool.query(`SELECT status FROM processing.processing_jobs WHERE id = $1`, [
      job.id,
    ]);
    assert.equal(row.rows[0].status, 'processing');
  });
});
