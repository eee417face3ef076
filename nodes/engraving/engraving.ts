// Node-RED glue for engraving: the seed 003 routes, the engraver command, machine events and
// the design-timeout monitor, by the node's action. Rules in core/engraving, SQL in
// store/engraving, the steps in nodes/engraving/engraving-steps.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { Pool } from 'pg';
import type { JsonSchema } from '../../core/schema';
import { poolFor } from '../common/db';
import {
  type EngravingRoute,
  type StepEvent,
  answerRoute,
  commandMessage,
  engraverCommandMessage,
  handleMachineEvent,
  metricsEvent,
  monitorRound,
} from './engraving-steps';
import { requestOf, respond, respondError } from '../common/http-api';
import { coalesced } from '../common/coalesce';
import { announceTransition } from '../common/lifecycle';
import { checkConfig, type DoneFn, onCloseAsync, onInputAsync, type SendFn } from '../common/node-kit';
import { type TimerHandle, servicesOf, systemClock } from '../common/services';
import type { ClaimedEngraving, EngraverCommand } from '../../store/engraving';
import { relayNotifications } from '../../store/engraving-notifications';
import { notificationSender } from './notification-sender';
import { ledgerEntryOfInbox } from '../../store/ledger';
import type { AppliedTransition } from '../../store/lifecycle';
import configSchema from './schema.json';

interface EngravingConfig {
  name: string;
  action: EngravingRoute | 'dispatch' | 'machine-event' | 'monitor';
  designTimeout: number;
  monitorInterval: number;
  db: string;
  schemaVersion: 1;
}

const schema = configSchema as JsonSchema;
const ROUTES: readonly string[] = [
  'create',
  'get',
  'approve',
  'reject',
  'revise',
  'qa',
  'queue',
  'stock',
  'cancel',
  'retry',
  'preview',
];

function numbersOf(def: NodeDef & Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...def };
  for (const key of ['designTimeout', 'monitorInterval']) {
    if (typeof copy[key] === 'string') copy[key] = copy[key] === '' ? undefined : Number(copy[key]);
  }
  return copy;
}

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType(
    'floorflow-engraving',
    function EngravingNode(this: Node, def: NodeDef & Record<string, unknown>) {
      RED.nodes.createNode(this, def);
      const config = checkConfig<EngravingConfig>(this, schema, numbersOf(def));
      if (!config) return;
      const services = servicesOf(RED);
      const clock = services?.clock ?? systemClock;
      const prefix = services?.topicPrefix ?? 'floorflow';
      // The pool as the node started with it: while the flows stop, Node-RED may have removed
      // the database config node before this node's close, and an event or round still running
      // then must not fail on a node that is gone (the pool itself closes after the flows).
      let startPool: Pool | undefined;
      try {
        startPool = poolFor(RED, config.db || undefined);
      } catch {
        startPool = undefined; // a configuration error: the first use reports it
      }
      const poolNow = (): Pool => {
        try {
          return poolFor(RED, config.db || undefined);
        } catch (err) {
          if (startPool) return startPool;
          throw err;
        }
      };
      const context = () => ({
        pool: poolNow(),
        now: clock.now(),
        flowVersion: services?.flowVersion(this.z),
        applied: [] as AppliedTransition[],
      });
      // Lifecycle transitions are announced (event bus, MQTT) after their transaction committed,
      // as the lifecycle-switch node does.
      const announce = (applied: AppliedTransition[]) => {
        for (const t of applied) void announceTransition(services, t, (m) => this.warn(m));
      };
      const emit = (events: StepEvent[]) => {
        for (const e of events) services?.events.emit(e.channel, e.body);
      };
      // Output 2: commands for engravers that are not jobs (cancel), after their change committed.
      const commandsOf = (commands: EngraverCommand[] | undefined) =>
        (commands ?? []).map((c) => engraverCommandMessage(prefix, c));
      // After a change the dashboards' gauges follow at once, not only at the next monitor round.
      const emitMetrics = () =>
        metricsEvent(context()).then(
          ({ event }) => emit([event]),
          (err: Error) => this.warn(`engraving metrics not computed: ${err.message}`),
        );

      let timer: TimerHandle | undefined;
      let closed = false;
      const rounds = coalesced(
        async () => {
          try {
            const ctx = context();
            const { autoApproved, requeued, metrics, events, commands } = await monitorRound(
              ctx,
              config.designTimeout * 3600 * 1000,
            );
            announce(ctx.applied);
            emit(events);
            // The customer notifications the round's and the routes' changes wrote, delivered.
            const relayed = await relayNotifications(
              ctx.pool,
              notificationSender((m) => this.log(m)),
              {
                now: ctx.now,
              },
            );
            for (const f of relayed.failed) this.warn(`customer notification ${f.id} not sent: ${f.error}`);
            for (const e of events)
              if (e.channel === 'alert')
                this.warn(`engraving job ${String(e.body.jobId)}: ${String(e.body.reason)}`);
            if (commands.length > 0 && !closed) this.send([null, commandsOf(commands)]);
            if (requeued.length > 0 && !closed)
              this.send({ payload: { requeued: requeued.map(Number) }, topic: 'engraving/requeued' });
            this.status({
              fill: 'green',
              shape: 'dot',
              text: `${metrics.jobs_in_queue} queued, ${metrics.jobs_completed_today} done today`,
            });
            if (autoApproved.length > 0 && !closed)
              this.send({
                payload: { autoApproved: autoApproved.map(Number) },
                topic: 'engraving/auto-approved',
              });
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            this.status({ fill: 'red', shape: 'ring', text: message });
            this.warn(`engraving monitor round failed: ${message}`);
          }
        },
        () => closed,
      );
      if (config.action === 'monitor') {
        const tick = () => {
          timer = clock.setTimeout(tick, config.monitorInterval * 1000);
          void rounds.run();
        };
        timer = clock.setTimeout(tick, config.monitorInterval * 1000);
      }

      onInputAsync(this, async (msg: NodeMessageInFlow, send: SendFn, done: DoneFn) => {
        if (ROUTES.includes(config.action)) {
          // A route always answers: errors become the contract's error body, not a Catch.
          try {
            const ctx = context();
            const answer = await answerRoute(config.action as EngravingRoute, ctx, requestOf(msg));
            announce(ctx.applied);
            emit(answer.events);
            if (answer.events.length > 0) void emitMetrics();
            const answered =
              answer.text !== undefined
                ? Object.assign(msg, {
                    statusCode: answer.statusCode,
                    payload: answer.text,
                    headers: { 'content-type': answer.contentType ?? 'text/plain; charset=utf-8' },
                  })
                : respond(msg, answer.statusCode, answer.body);
            send([answered, commandsOf(answer.commands)]);
          } catch (err) {
            send(respondError(msg, err, (m) => this.warn(m)));
          }
          return done();
        }
        if (config.action === 'dispatch') {
          const claimed = msg.payload as ClaimedEngraving;
          this.status({ fill: 'blue', shape: 'dot', text: `job ${claimed.id} → ${claimed.machine_id}` });
          emit([
            {
              channel: 'engraving',
              body: {
                type: 'job.status',
                jobId: Number(claimed.id),
                status: 'engraving',
                machineId: claimed.machine_id,
              },
            },
          ]);
          void emitMetrics();
          send(Object.assign(msg, commandMessage(prefix, claimed)));
          return done();
        }
        if (config.action === 'machine-event') {
          // An event handed over while the flows stop finds the database node already gone; it
          // stays unapplied in the machine inbox and is applied when the flow starts again.
          if (closed) {
            this.log('machine event left in the inbox: the flow is stopping');
            return done();
          }
          const ctx = context();
          const { result, events } = await handleMachineEvent(
            ctx,
            prefix,
            String(msg.topic ?? ''),
            msg.payload,
            ledgerEntryOfInbox((msg as { inbox?: unknown }).inbox),
          );
          announce(ctx.applied);
          emit(events);
          if (events.length > 0) void emitMetrics();
          // An event this domain does not know is never applied elsewhere; it is one log line
          // naming the machine, so a misrouted or stale machine is found without the editor.
          if (result.result === 'ignored') {
            this.status({ fill: 'yellow', shape: 'ring', text: result.reason });
            this.log(`machine event ignored: ${result.reason}`);
          } else if (result.result === 'attention')
            this.warn(`engraving job ${result.job.id}: ${result.job.attention_reason}`);
          else this.status({ fill: 'green', shape: 'dot', text: `job ${result.job.id}: ${result.result}` });
          send(Object.assign(msg, { result: result.result }));
          return done();
        }
        // monitor: an input asks for a round now; auto-approved jobs leave as in a timed round.
        await rounds.run();
        done();
      });

      onCloseAsync(this, async () => {
        closed = true;
        clock.clearTimeout(timer);
        await rounds.idle();
      });
    },
  );
};
