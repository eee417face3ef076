// Calls a person: a job that was escalated after QA, or needs attention after its engraver
// failed or went silent, becomes an alert on every floor page (the runtime's event bus) and one
// log line with the reason. The message goes on unchanged (for a ui-notification, a mail node).
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { type JobMessagePayload, personNeededAlert } from '../common/engraving-steps';
import { defineNode } from '../common/define-node';
import type { DoneFn, SendFn } from '../common/node-kit';
import configSchema from './schema.json';

interface AlertConfig {
  name?: string;
  schemaVersion: number;
}

export = function register(RED: NodeAPI): void {
  defineNode<AlertConfig>(
    RED,
    { type: 'floorflow-engraving-alert', schema: configSchema as JsonSchema, needs: 'runtime' },
    ({ node, services }) => {
      node.on('input', (msg: NodeMessageInFlow, send: SendFn, done: DoneFn) => {
        const job = msg.payload as JobMessagePayload;
        const alert = personNeededAlert(job);
        services.events.emit(alert.channel, alert.body);
        node.warn(`engraving job ${job.jobId}: ${job.reason ?? job.status}`);
        node.status({ fill: 'yellow', shape: 'dot', text: `job ${job.jobId}: ${job.status}` });
        send(msg);
        done();
      });
    },
  );
};
