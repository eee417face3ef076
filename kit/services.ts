// What the runtime shares with the floorflow nodes: the database pool, the broker's hooks,
// an in-process event bus and the deployed flow versions. The runtime puts this object in
// the Node-RED settings as `floorflow`; nodes read it through RED.settings. Node tests put
// their own in with helper.settings().
import type { EventEmitter } from 'node:events';
import type { NodeAPI } from 'node-red';
import type { Pool } from 'pg';
import type { MachineTopicKind } from '../core/topics';

export interface BrokerAccess {
  onDurable(kind: MachineTopicKind, handler: (machineId: string, payload: Buffer) => Promise<void>): void;
  offDurable(kind: MachineTopicKind, handler: (machineId: string, payload: Buffer) => Promise<void>): void;
  onlineMachines(): string[];
  publish(topic: string, payload: string | Buffer, options?: { qos?: 0 | 1; retain?: boolean }): Promise<void>;
}

export interface FloorflowServices {
  pool: Pool;
  topicPrefix: string;
  runtimeId: string;
  /** The embedded broker, when the runtime runs one (not with MQTT_URL). */
  broker?: BrokerAccess;
  /** In-process events: lifecycle transitions, alerts, machine status. */
  events: EventEmitter;
  /** Version of the deployed flow (tab) with this id, from flows/manifest.json. */
  flowVersion(flowId: string | undefined): string | undefined;
  /** The machine secret, for verifying callback signatures. */
  machineSecret(machineId: string): Promise<string | undefined>;
  now(): Date;
}

export function servicesOf(RED: NodeAPI): FloorflowServices | undefined {
  const settings = RED.settings as unknown as { floorflow?: FloorflowServices };
  return settings.floorflow;
}
