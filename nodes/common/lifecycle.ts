// The lifecycle event a node sends on its output for a transition it applied. Announcing on the
// event bus and MQTT is the lifecycle relay's alone (runtime/lifecycle-relay.ts).
import type { LifecycleEvent } from '../../core/lifecycle';
import type { AppliedTransition } from '../../store/lifecycle';

export function lifecycleEventOf(transition: AppliedTransition): LifecycleEvent {
  const { at, auditId: _auditId, childId: _childId, ...record } = transition;
  return { ...record, at: at.toISOString() };
}
