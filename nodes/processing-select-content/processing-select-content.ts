// Stage 2 of the processing pipeline (progress 30): picks the files to write from the order's
// details.content and hands them on as msg.content; the selection is kept in the stage's log
// row, where a resumed attempt reads it back.
import type { NodeAPI } from 'node-red';
import { selectContent } from '../../core/processing';
import type { JsonSchema } from '../../core/schema';
import { defineStageNode } from '../common/processing-pipeline';
import { orderOf } from '../../store/processing';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineStageNode(
    RED,
    {
      type: 'floorflow-processing-select-content',
      schema: configSchema as JsonSchema,
      stage: 'content_selection',
    },
    async ({ pool }, job) => {
      const selection = selectContent(await orderOf(pool, job.id));
      return {
        log: { message: `${selection.files.length} file(s) selected`, details: { selection } },
        carried: { content: selection },
      };
    },
  );
};
