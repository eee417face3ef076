// Stage 4 of the processing pipeline (progress 90): the written copy must match the content
// selection (checksum and size); a mismatch fails the attempt and the job is retried.
import type { NodeAPI } from 'node-red';
import { verifyWrite } from '../../core/processing';
import type { JsonSchema } from '../../core/schema';
import { contentOf, defineStageNode, stageFailed, writtenOf } from '../common/processing-pipeline';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineStageNode(
    RED,
    { type: 'floorflow-processing-verify', schema: configSchema as JsonSchema, stage: 'verification' },
    async (ctx, job, carried) => {
      const problem = verifyWrite(await contentOf(ctx, job, carried), await writtenOf(ctx, job, carried));
      if (problem) throw stageFailed('verification', problem);
      return { log: { message: 'written content verified' } };
    },
  );
};
