// The lifecycle event a node sends on its output for a transition it applied. Announcing on the
// event bus and MQTT is the lifecycle relay's alone (runtime/lifecycle-relay.ts).
import type { LifecycleEvent } from '../../core/lifecycle';
import type { AppliedTransition } from '../../store/lifecycle';
import type { FloorflowServices } from './services';

export function lifecycleEventOf(transition: AppliedTransition): LifecycleEvent {
  const { at, auditId: _auditId, childId: _childId, ...record } = transition;
  return { ...record, at: at.toISOString() };
}

/**
 * @deprecated The lifecycle relay (runtime/lifecycle-relay.ts) announces every committed
 * transition; this returns the event a node sends on its output and announces nothing. Remove
 * the call.
 */
export async function announceTransition(
  _services: FloorflowServices | undefined,
  transition: AppliedTransition,
  _warn: (message: string) => void,
): Promise<LifecycleEvent> {
  return lifecycleEventOf(transition);
}
