// The simulated USB writer behind the processing flow's "USB writer" link: it marks the write
// as started (progress 50) and puts what a real writer would report on msg.usb. Its failures
// come only from its own configuration (the failure switch and the fault profile, see
// docs/processing.md), never from the order or the request.
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import { FloorflowError } from '../../core/errors';
import {
  STAGE_PROGRESS,
  type SimulatedWriterFault,
  checkWriterFaults,
  simulateUsbWrite,
  stageIsDone,
  writerFaultFor,
} from '../../core/processing';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { onInputAsync } from '../common/node-kit';
import { type Carried, claimedJobOf, contentOf } from '../common/processing-pipeline';
import { startStage } from '../../store/processing';
import configSchema from './schema.json';

interface UsbWriterConfig {
  name: string;
  device: string;
  fail: boolean;
  faults: SimulatedWriterFault[];
  db: string;
  schemaVersion: 1;
}

export = function register(RED: NodeAPI): void {
  defineNode<UsbWriterConfig>(
    RED,
    {
      type: 'floorflow-usb-writer',
      schema: configSchema as JsonSchema,
      needs: 'database',
      check: (config) => checkWriterFaults(config.faults),
    },
    ({ node, config, clock, pool, flowVersion }) => {
      const idle = () =>
        node.status(
          config.fail
            ? { fill: 'red', shape: 'ring', text: 'failure switch on' }
            : config.faults.length > 0
              ? {
                  fill: 'yellow',
                  shape: 'dot',
                  text: `simulated ${config.device}, ${config.faults.length} fault(s)`,
                }
              : { fill: 'grey', shape: 'dot', text: `simulated ${config.device}` },
        );
      idle();

      onInputAsync(node, async (input, send, done) => {
        const msg = input as NodeMessageInFlow & Carried;
        const job = claimedJobOf(msg.payload);
        if (stageIsDone(job.completed_stage, 'usb_writing')) {
          send(msg);
          return done();
        }
        const ctx = { pool, now: clock.now(), flowVersion: flowVersion() };
        await startStage(pool, job, 'usb_writing', STAGE_PROGRESS.usb_writing.start, ctx.now);
        const fault = config.fail ? 'fail' : writerFaultFor(config.faults, job.order_number, job.attempts);
        if (fault === 'hang') {
          // A device that stopped answering: this attempt never ends. The stuck-job monitor (or
          // the next start) takes the job back, and the lease keeps this attempt from touching
          // it again. done() is never called, as for a real write that never returns.
          node.status({ fill: 'yellow', shape: 'ring', text: `job ${job.id}: device not answering` });
          return;
        }
        if (fault === 'fail') {
          throw new FloorflowError(
            'FF_MACHINE_FAILED',
            `USB writer ${config.device} failed writing order ${job.order_number} (simulated fault, attempt ${job.attempts})`,
            { retryable: true, details: { stage: 'usb_writing' } },
          );
        }
        const usb = simulateUsbWrite(await contentOf(ctx, job, msg), config.device);
        idle();
        send(Object.assign(msg, { usb }));
        done();
      });
    },
  );
};
