// An engraver's event (from the machine-events node, out of the durable inbox) applied to the
// job it names: engraved → the job waits for QA (output 1); failed → a person decides
// (output 2); a heartbeat or an event that changes nothing leaves on output 3.
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { ledgerEntryOfInbox } from '../../store/ledger';
import { engravingGlue, type RouteConfig } from '../common/engraving-node';
import { handleMachineEvent, jobMessage } from '../common/engraving-steps';
import { defineNode } from '../common/define-node';
import { type DoneFn, type SendFn, onCloseAsync, onInputAsync } from '../common/node-kit';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineNode<RouteConfig>(
    RED,
    { type: 'floorflow-engraving-machine-event', schema: configSchema as JsonSchema, needs: 'database' },
    (deps) => {
      const { node } = deps;
      const glue = engravingGlue(deps);
      let closed = false;
      onInputAsync(node, async (msg: NodeMessageInFlow, send: SendFn, done: DoneFn) => {
        // An event handed over while the flows stop finds the database node already gone; it
        // stays unapplied in the machine inbox and is applied when the flow starts again.
        if (closed) {
          node.log('machine event left in the inbox: the flow is stopping');
          return done();
        }
        const ctx = glue.context();
        const { result, events } = await handleMachineEvent(
          ctx,
          glue.topicPrefix,
          String(msg.topic ?? ''),
          msg.payload,
          ledgerEntryOfInbox((msg as { inbox?: unknown }).inbox),
        );
        glue.committed(events);
        if (result.result === 'qa') {
          node.status({ fill: 'green', shape: 'dot', text: `job ${result.job.id}: engraved` });
          send([jobMessage(result.job, 'engraving/engraved'), null, null]);
        } else if (result.result === 'attention') {
          send([null, jobMessage(result.job, 'engraving/needs-attention'), null]);
        } else if (result.result === 'ignored') {
          // An event this domain does not know is never applied elsewhere; it is one log line
          // naming the machine, so a misrouted or stale machine is found without the editor.
          node.status({ fill: 'yellow', shape: 'ring', text: result.reason });
          node.log(`machine event ignored: ${result.reason}`);
          send([null, null, Object.assign(msg, { result: result.result })]);
        } else {
          node.status({ fill: 'green', shape: 'dot', text: `job ${result.job.id}: ${result.result}` });
          send([null, null, Object.assign(msg, { result: result.result })]);
        }
        done();
      });
      onCloseAsync(node, () => {
        closed = true;
        return Promise.resolve();
      });
    },
  );
};
