// Answers GET /api/dashboard/status: product counts, machines, the last day's statistics and
// this runtime's monitoring (API answer times, live stream connections).
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { dashboardStatus } from '../../store/products';
import { defineNode } from '../common/define-node';
import { respond } from '../common/http-api';
import { responseTimes, streamConnections } from '../common/monitoring';
import { onInputAsync } from '../common/node-kit';
import configSchema from './schema.json';

interface Config {
  name: string;
  db: string;
  schemaVersion: 1;
}

export = function register(RED: NodeAPI): void {
  defineNode<Config>(
    RED,
    { type: 'floorflow-dashboard-status', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, clock, pool }) => {
      onInputAsync(node, async (msg, send, done) => {
        const now = clock.now();
        const status = await dashboardStatus(pool, now);
        const monitoring = { responseTimes: responseTimes(), streams: streamConnections() };
        send(
          respond(msg, 200, {
            success: true,
            status: { ...status, monitoring },
            timestamp: now.toISOString(),
          }),
        );
        done();
      });
    },
  );
};
