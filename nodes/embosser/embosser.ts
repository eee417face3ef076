// Node-RED glue for embosser (seed 000 §7's anti-corruption layer): a job message (from the
// queue worker, through retry-backoff) becomes one attempt at the machine; MQTT status and
// event messages (from an mqtt in node) and verified callbacks (from embossing-callback) are
// the machine's answers. The protocol lives in the machine's profile, the work in nodes/embosser/embosser-machine.
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { parseProfiles } from '../../core/embossing-profiles';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { poolFor } from '../common/db';
import { EmbosserController, profilesWith } from './embosser-machine';
// Registers the embossing queue for floorflow-queue-worker before any flow starts.
import './embossing-queue';
import { announce, errorAnswer } from '../common/embossing-steps';
import { checkConfig, onCloseAsync, onInputAsync } from '../common/node-kit';
import { servicesOf, systemClock } from '../common/services';
import { ledgerEntryOfInbox } from '../../store/ledger';
import configSchema from './schema.json';

interface EmbosserConfig {
  name?: string;
  db?: string;
  profile: string;
  profiles: string;
  timeout?: number | string;
  whenOffline: 'fail' | 'wait';
  offlineWait: number | string;
  plateDoneState: 'embossed' | 'in_storage';
  schemaVersion: number;
}

type Message = NodeMessage & Record<string, unknown>;

function jsonOf(payload: unknown): unknown {
  const text = Buffer.isBuffer(payload) ? payload.toString('utf8') : payload;
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The job a message asks to send: msg.payload.id (queue worker) or msg.jobId. */
function jobIdOf(msg: Message): string | undefined {
  const payload = msg.payload as { id?: unknown } | undefined;
  const id = msg.jobId ?? (typeof payload === 'object' && payload !== null ? payload.id : undefined);
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType(
    'floorflow-embosser',
    function EmbosserNode(this: Node, def: NodeDef & EmbosserConfig) {
      RED.nodes.createNode(this, def);
      const config = checkConfig<EmbosserConfig>(this, configSchema as JsonSchema, { ...def });
      if (!config) return;
      const extra = parseProfiles(config.profiles);
      if ('error' in extra) {
        this.status({ fill: 'red', shape: 'ring', text: 'invalid profiles' });
        this.error(new FloorflowError('FF_CONFIG_INVALID', `invalid configuration: ${extra.error}`));
        return;
      }
      const profiles = profilesWith(extra.profiles);
      if (!profiles.has(config.profile)) {
        this.status({ fill: 'red', shape: 'ring', text: 'unknown profile' });
        this.error(
          new FloorflowError('FF_CONFIG_INVALID', `invalid configuration: no profile "${config.profile}"`),
        );
        return;
      }
      const services = servicesOf(RED);
      const clock = services?.clock ?? systemClock;
      const timeout =
        config.timeout === undefined || config.timeout === '' ? undefined : Number(config.timeout) * 1000;
      let controller: EmbosserController;
      try {
        controller = new EmbosserController(
          {
            pool: poolFor(RED, config.db || undefined),
            clock,
            prefix: services?.topicPrefix ?? 'floorflow',
            flowVersion: () => services?.flowVersion(this.z),
            publish: (topic, payload) => this.send([null, { topic, payload, qos: 1, retain: false }, null]),
            fetch: (input, init) => fetch(input, init),
            changed: (change) => announce(services, change),
            statusChanged: () => showStatus(),
            warn: (message) => this.warn(message),
          },
          {
            defaultProfile: config.profile,
            profiles,
            timeoutMs: timeout,
            whenOffline: config.whenOffline,
            offlineWaitMs: Number(config.offlineWait || 0) * 1000,
            plateDoneState: config.plateDoneState,
          },
        );
      } catch (err) {
        this.status({ fill: 'red', shape: 'ring', text: 'no database' });
        this.error(err);
        return;
      }

      const showStatus = () => this.status(controller.status());
      showStatus();
      controller.start();

      onInputAsync(this, async (input, send, done) => {
        const msg = input as Message;
        const callback = msg.callback as { machineId?: string; jobId?: string } | undefined;
        if (callback?.machineId && callback.jobId) {
          const { statusCode, body } = await controller
            .callbackAnswer(callback.machineId, callback.jobId, jsonOf(msg.payload))
            .catch((err: unknown) => errorAnswer(err));
          send([null, null, Object.assign(msg, { statusCode, payload: body })]);
          done();
          return;
        }
        const cancelled = msg.cancelled as { jobId?: string; from?: string } | undefined;
        if (cancelled?.jobId) {
          const result = await controller.cancelled(String(cancelled.jobId), cancelled.from);
          this.log(`embossing job ${cancelled.jobId} cancelled: ${result}`);
          done();
          return;
        }
        if (typeof msg.topic === 'string' && msg.topic.includes('/machines/')) {
          // A machine's message never goes to the Catch node: that one retries jobs.
          const record = ledgerEntryOfInbox(msg.inbox);
          await controller.machineMessage(msg.topic, jsonOf(msg.payload), record).catch((err: Error) => {
            this.warn(`message on ${String(msg.topic)} not handled: ${err.message}`);
          });
          done();
          return;
        }
        const jobId = jobIdOf(msg);
        if (!jobId)
          throw new FloorflowError('FF_INPUT_INVALID', 'no job: expected msg.payload.id or msg.jobId');
        const outcome = await controller.attempt(jobId);
        // A job with a person (failed by its machine, needs attention, cancelled) ends its retry loop here.
        if (outcome.kind === 'completed') send([Object.assign(msg, { payload: outcome.job }), null, null]);
        done();
      });

      onCloseAsync(this, async () => {
        await controller.close();
      });
    },
  );
};
