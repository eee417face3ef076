// Stage 3 of the processing pipeline (progress 80): records what the USB writer wrote
// (msg.usb, set by whatever runs behind the flow's "USB writer" link). The write itself is not
// done here, so a real writer can replace the simulated one without touching this node.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineStageNode, stageFailed, writtenOf } from '../common/processing-pipeline';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineStageNode(
    RED,
    { type: 'floorflow-processing-record-write', schema: configSchema as JsonSchema, stage: 'usb_writing' },
    async (ctx, job, carried) => {
      const written = await writtenOf(ctx, job, carried);
      if (!written) throw stageFailed('usb_writing', 'the USB writer returned no result (msg.usb)');
      return {
        log: { message: `${written.bytesWritten} bytes written to ${written.device}`, details: { written } },
        carried: { usb: written },
      };
    },
  );
};
