// Work that must run on one runtime at a time when several share the database (alert rules,
// the pollers' timers, the queue monitors): a node asks for a named lease and does that work only
// while its runtime holds it. Outside the floorflow runtime (node tests) there is no other
// runtime, and the node always holds it.
import type { FloorflowServices, LeaseHandle } from './services';

export function runOnce(
  services: FloorflowServices | undefined,
  name: string,
  onChange?: (held: boolean) => void,
): LeaseHandle {
  if (services?.leases) return services.leases.want(name, onChange);
  return { held: () => true, release: async () => undefined };
}

/** Calls `listener` when another runtime dies (never outside the floorflow runtime); returns the unsubscribe. */
export function onRuntimeGone(
  services: FloorflowServices | undefined,
  listener: (runtimeId: string) => void,
): () => void {
  return services?.leases?.onRuntimeGone(listener) ?? (() => undefined);
}
