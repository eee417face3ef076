import assert from 'node:assert/strict';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import selectContent from './processing-select-content';

describe('processing-select-content node', () => {
  const t = processingNodeTest();

  it("hands the order's files on as msg.content and keeps the selection in the stage's log row", async () => {
    await t.load(selectContent, 'floorflow-processing-select-content');
    const job = await t.claimed('ORD-C1', { content: ['intro.mp4', { name: 'catalog.pdf', bytes: 4096 }] });
    const { out } = await t.send({ payload: { ...job, completed_stage: 'validation' } });
    const content = out?.content as { files: Array<{ name: string }>; totalBytes: number };
    assert.deepEqual(
      content.files.map((f) => f.name),
      ['intro.mp4', 'catalog.pdf'],
    );
    assert.equal(content.totalBytes, 1024 + 4096);
    const logs = await t.db.pool.query<{ details: { selection: unknown; progress: number } }>(
      `SELECT details FROM processing.processing_job_logs WHERE job_id = $1 AND stage = 'content_selection'`,
      [job.id],
    );
    assert.deepEqual(logs.rows[0].details.selection, content);
    assert.equal(logs.rows[0].details.progress, 30);
  });
});
