// Node-RED glue for embosser (the anti-corruption layer between floorflow and its embossing
// machines, docs/embossing.md): a job message (from the queue worker, through retry-backoff)
// becomes one attempt at the machine; MQTT status and event messages (from an mqtt in or
// machine events node) and verified callbacks (from embossing-callback) are the machine's
// answers. The protocol lives in the machine's profile, the work in ./embosser-machine.
import type { NodeAPI, NodeMessage } from 'node-red';
import { type EmbosserProfile, parseProfiles } from '../../core/embossing-profiles';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { errorAnswer, jobChanged } from '../common/embossing-routes';
import { onCloseAsync, onInputAsync } from '../common/node-kit';
import { ledgerEntryOfInbox } from '../../store/ledger';
import { EmbosserController, profilesWith } from './embosser-machine';
import configSchema from './schema.json';

interface EmbosserConfig {
  name?: string;
  db?: string;
  profile: string;
  profiles: string;
  /** Seconds a machine has to answer; empty: each profile's own timeout. */
  timeout?: number | '';
  whenOffline: 'fail' | 'wait';
  /** Seconds before a job for an offline machine is queued again (whenOffline "wait"). */
  offlineWait: number;
  plateDoneState: 'embossed' | 'in_storage';
  schemaVersion: number;
}

type Message = NodeMessage & Record<string, unknown>;

/** The shipped profiles and the node's own, or why the node's configuration cannot be used. */
function profilesOf(config: EmbosserConfig): Map<string, EmbosserProfile> | string {
  const extra = parseProfiles(config.profiles);
  if ('error' in extra) return `profiles: ${extra.error}`;
  const profiles = profilesWith(extra.profiles);
  return profiles.has(config.profile) ? profiles : `no profile "${config.profile}"`;
}

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
  defineNode<EmbosserConfig>(
    RED,
    {
      type: 'floorflow-embosser',
      schema: configSchema as JsonSchema,
      needs: 'database',
      check: (config) => {
        const profiles = profilesOf(config);
        return typeof profiles === 'string' ? profiles : undefined;
      },
    },
    ({ node, config, services, clock, pool, flowVersion }) => {
      const profiles = profilesOf(config) as Map<string, EmbosserProfile>;
      const controller: EmbosserController = new EmbosserController(
        {
          pool,
          clock,
          prefix: services.topicPrefix,
          flowVersion,
          publish: (topic, payload) => node.send([null, { topic, payload, qos: 1, retain: false }, null]),
          fetch: (input, init) => fetch(input, init),
          jobChanged: (job) => jobChanged(services, job),
          statusChanged: () => node.status(controller.status()),
          warn: (message) => node.warn(message),
        },
        {
          defaultProfile: config.profile,
          profiles,
          timeoutMs:
            config.timeout === undefined || config.timeout === '' ? undefined : config.timeout * 1000,
          whenOffline: config.whenOffline,
          offlineWaitMs: config.offlineWait * 1000,
          plateDoneState: config.plateDoneState,
        },
      );
      node.status(controller.status());
      controller.start();

      onInputAsync(node, async (input, send, done) => {
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
          node.log(`embossing job ${cancelled.jobId} cancelled: ${result}`);
          done();
          return;
        }
        if (typeof msg.topic === 'string' && msg.topic.includes('/machines/')) {
          // A machine's message never goes to the Catch node: that one retries jobs.
          const record = ledgerEntryOfInbox(msg.inbox);
          await controller.machineMessage(msg.topic, jsonOf(msg.payload), record).catch((err: Error) => {
            node.warn(`message on ${String(msg.topic)} not handled: ${err.message}`);
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

      onCloseAsync(node, async () => {
        await controller.close();
      });
    },
  );
};
