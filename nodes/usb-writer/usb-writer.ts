// Node-RED glue for usb-writer: the default, simulated USB writer of the processing flow's
// stage 3. It marks the write as started and puts the write result on msg.usb, or fails by
// its failure switch (or the order's details.simulate), so the pipeline runs without hardware.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { poolFor } from '../common/db';
import { checkConfig, type DoneFn, onInputAsync, type SendFn } from '../common/node-kit';
import { type Carried, claimedJobOf, writeUsbSimulated } from '../common/processing-pipeline';
import { servicesOf, systemClock } from '../common/services';
import configSchema from './schema.json';

interface UsbWriterConfig {
  name: string;
  device: string;
  fail: boolean;
  db: string;
  schemaVersion: 1;
}

const schema = configSchema as JsonSchema;

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType(
    'floorflow-usb-writer',
    function UsbWriterNode(this: Node, def: NodeDef & Partial<UsbWriterConfig>) {
      RED.nodes.createNode(this, def);
      const config = checkConfig<UsbWriterConfig>(this, schema, {
        ...def,
        fail: def.fail === true || String(def.fail) === 'true',
      });
      if (!config) return;
      const services = servicesOf(RED);
      const clock = services?.clock ?? systemClock;
      this.status(
        config.fail
          ? { fill: 'red', shape: 'ring', text: 'failure switch on' }
          : { fill: 'grey', shape: 'dot', text: `simulated ${config.device}` },
      );

      onInputAsync(this, async (input: NodeMessageInFlow, send: SendFn, done: DoneFn) => {
        const msg = input as NodeMessageInFlow & Carried;
        const job = claimedJobOf(msg.payload);
        const pipeline = {
          pool: poolFor(RED, config.db || undefined),
          now: clock.now(),
          flowVersion: services?.flowVersion(this.z),
        };
        const carried = await writeUsbSimulated(pipeline, job, msg, {
          device: config.device,
          fail: config.fail,
        });
        send(Object.assign(msg, carried));
        done();
      });
    },
  );
};
