// Machine topics and their access rules (docs/machines.md), as pure functions the broker's
// authorisation hooks call: a machine publishes only under its own
// <prefix>/machines/<id>/ (never to cmd) and subscribes only to its own cmd.

export type MachineTopicKind = 'scan' | 'status' | 'cmd' | 'event' | 'other';

export interface MachineTopic {
  machineId: string;
  kind: MachineTopicKind;
  /** Everything after <prefix>/machines/<id>/, e.g. "scan" or "event/extra". */
  suffix: string;
}

export function machineTopic(
  prefix: string,
  machineId: string,
  kind: Exclude<MachineTopicKind, 'other'>,
): string {
  return `${prefix}/machines/${machineId}/${kind}`;
}

export function parseMachineTopic(prefix: string, topic: string): MachineTopic | undefined {
  const parts = topic.split('/');
  if (parts.length < 4 || parts[0] !== prefix || parts[1] !== 'machines' || !parts[2]) return undefined;
  const suffix = parts.slice(3).join('/');
  const first = parts[3];
  const kind: MachineTopicKind =
    first === 'scan' || first === 'status' || first === 'cmd' || first === 'event' ? first : 'other';
  return { machineId: parts[2], kind, suffix };
}

export function mayPublish(prefix: string, machineId: string, topic: string): boolean {
  if (/[+#\0]/.test(topic)) return false;
  const parsed = parseMachineTopic(prefix, topic);
  return parsed !== undefined && parsed.machineId === machineId && parsed.kind !== 'cmd';
}

export function maySubscribe(prefix: string, machineId: string, filter: string): boolean {
  const own = machineTopic(prefix, machineId, 'cmd');
  return filter === own || filter === `${own}/#`;
}

/** A suffix a machine may add to its client id: `<machine id>/<suffix>` (docs/machines.md). */
const CLIENT_ID_SUFFIX = /^[A-Za-z0-9._:@-]{1,64}$/;

/**
 * Whether a machine may connect with this client id: its own id, or `<id>/<suffix>` for a
 * second connection. Aedes keeps one session per client id and hands it (queued commands
 * included) to whoever connects with that id next, so no machine may use another's.
 */
export function clientIdAllowed(machineId: string, clientId: string): boolean {
  if (clientId === machineId) return true;
  if (!clientId.startsWith(`${machineId}/`)) return false;
  return CLIENT_ID_SUFFIX.test(clientId.slice(machineId.length + 1));
}
