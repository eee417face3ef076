// What the engraving nodes share (the nodes of flows/engraving.json, one per step): the step's
// context, what follows a committed change (its events on the bus, the dashboards' gauges
// brought up to date; its lifecycle transitions are announced by the lifecycle relay), the
// HTTP route node shape, and the periodic round of the nodes that watch the clock.
import type { NodeAPI, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { coalesced } from './coalesce';
import { type DatabaseNode, defineNode } from './define-node';
import { type RouteAnswer, type StepContext, type StepEvent, metricsEvent } from './engraving-steps';
import { type HttpRequestPart, requestOf, respond, respondError } from './http-api';
import { type DoneFn, type SendFn, onCloseAsync, onInputAsync } from './node-kit';
import type { TimerHandle } from './services';

export interface EngravingGlue {
  /** A fresh context for one step: the pool, the time now, the flow version. */
  context(): StepContext;
  /** After the step's transaction committed: its events, then the metrics. */
  committed(events: StepEvent[]): void;
  emit(events: StepEvent[]): void;
  topicPrefix: string;
}

export function engravingGlue<C>({
  node,
  services,
  clock,
  pool,
  flowVersion,
}: DatabaseNode<C>): EngravingGlue {
  const context = (): StepContext => ({ pool, now: clock.now(), flowVersion: flowVersion() });
  const emit = (events: StepEvent[]) => {
    for (const e of events) services.events.emit(e.channel, e.body);
  };
  return {
    context,
    emit,
    topicPrefix: services.topicPrefix,
    committed(events) {
      emit(events);
      // After a change the dashboards' gauges follow at once, not only at the metrics node's round.
      if (events.length > 0)
        metricsEvent(context()).then(
          ({ event }) => emit([event]),
          (err: Error) => node.warn(`engraving metrics not computed: ${err.message}`),
        );
    },
  };
}

export interface RouteConfig {
  name?: string;
  db?: string;
  schemaVersion: number;
}

/**
 * An engraving node behind an `http in` node. It always answers on output 1 (errors become
 * {"success": false, "error"} with their status, not a Catch), and sends the step's follow-on
 * messages on outputs 2 and on.
 */
export function defineEngravingRoute(
  RED: NodeAPI,
  type: string,
  schema: JsonSchema,
  step: (
    ctx: StepContext,
    request: HttpRequestPart,
    msg: NodeMessageInFlow,
    glue: EngravingGlue,
  ) => Promise<RouteAnswer>,
): void {
  defineNode<RouteConfig>(RED, { type, schema, needs: 'database' }, (deps) => {
    const { node } = deps;
    const glue = engravingGlue(deps);
    onInputAsync(node, async (msg: NodeMessageInFlow, send: SendFn, done: DoneFn) => {
      try {
        const ctx = glue.context();
        const answer = await step(ctx, requestOf(msg), msg, glue);
        glue.committed(answer.events);
        const answered: NodeMessage =
          answer.text !== undefined
            ? Object.assign(msg, {
                statusCode: answer.statusCode,
                payload: answer.text,
                headers: { 'content-type': answer.contentType ?? 'text/plain; charset=utf-8' },
              })
            : respond(msg, answer.statusCode, answer.body);
        send([answered, ...(answer.next ?? [])]);
      } catch (err) {
        send(respondError(msg, err, (m) => node.warn(m)));
      }
      done();
    });
  });
}

/**
 * A round every `intervalMs` on the runtime's clock, and one on every input: one at a time, a
 * round asked for meanwhile runs once right after (a ManualClock advancing an hour is one
 * catch-up, not a pile). The round's failure shows as a red status and one warning; the next
 * round tries again.
 */
export function everyInterval<C>(
  { node, clock }: DatabaseNode<C>,
  intervalMs: number,
  what: string,
  round: (stopped: () => boolean) => Promise<void>,
): void {
  let timer: TimerHandle | undefined;
  let closed = false;
  const rounds = coalesced(
    async () => {
      try {
        await round(() => closed);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        node.status({ fill: 'red', shape: 'ring', text: message });
        node.warn(`${what} failed: ${message}`);
      }
    },
    () => closed,
  );
  const tick = () => {
    timer = clock.setTimeout(tick, intervalMs);
    void rounds.run();
  };
  timer = clock.setTimeout(tick, intervalMs);
  node.on('input', (_msg: NodeMessageInFlow, _send: SendFn, done: DoneFn) => {
    rounds.run().then(() => done(), done);
  });
  onCloseAsync(node, async () => {
    closed = true;
    clock.clearTimeout(timer);
    await rounds.idle();
  });
}
