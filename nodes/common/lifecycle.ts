// Announces an applied lifecycle transition after its transaction committed: on the runtime's
// event bus (SSE streams, dashboards) and on MQTT <prefix>/events/<lifecycle>/<entity>. The
// durable record is the event row written with the transition; these are notifications.
import { LIFECYCLE_EVENT, type LifecycleEvent, lifecycleEventTopic } from '../../core/lifecycle';
import type { AppliedTransition } from '../../store/lifecycle';
import type { FloorflowServices } from './services';

export function lifecycleEventOf(transition: AppliedTransition): LifecycleEvent {
  const { at, auditId: _auditId, childId: _childId, ...record } = transition;
  return { ...record, at: at.toISOString() };
}

/**
 * Emits the event in-process at once and publishes it on MQTT. Resolves when the publish is
 * done; a publish failure is reported to `warn` and does not reject: the transition stands.
 */
export async function announceTransition(
  services: FloorflowServices | undefined,
  transition: AppliedTransition,
  warn: (message: string) => void,
): Promise<LifecycleEvent> {
  const event = lifecycleEventOf(transition);
  if (!services) return event;
  services.events.emit(LIFECYCLE_EVENT, event);
  if (services.broker) {
    const topic = lifecycleEventTopic(services.topicPrefix, event.lifecycle, event.entityId);
    await services.broker.publish(topic, JSON.stringify(event), { qos: 1 }).catch((err: unknown) => {
      warn(`lifecycle event not published on ${topic}: ${err instanceof Error ? err.message : String(err)}`);
    });
  }
  return event;
}
