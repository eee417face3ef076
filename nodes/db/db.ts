// floorflow-db: the PostgreSQL connection the floorflow nodes share. In "runtime" mode it
// hands out the runtime's own pool (the embedded database or DATABASE_URL); in "url" mode
// it opens a pool to another server, with user and password kept as Node-RED credentials.
import type { Node, NodeAPI } from 'node-red';
import type { Pool } from 'pg';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { createPool } from '../../store/db';
import type { DbConfigNode } from '../common/db';
import { defineNode } from '../common/define-node';
import { onCloseAsync } from '../common/node-kit';
import configSchema from './schema.json';

interface DbConfig {
  name?: string;
  mode: 'runtime' | 'url';
  host?: string;
  port?: number;
  database?: string;
  ssl: boolean;
  poolSize?: number;
  schemaVersion: number;
}

interface DbCredentials {
  user?: string;
  password?: string;
}

type DbNode = DbConfigNode & Node<DbCredentials>;

export = function register(RED: NodeAPI): void {
  // A config node needs nothing at construction: in "runtime" mode the runtime's pool is looked
  // up when a node asks for it, so a database on another server works in plain Node-RED too.
  defineNode<DbConfig>(
    RED,
    {
      type: 'floorflow-db',
      schema: configSchema as JsonSchema,
      needs: 'nothing',
      credentials: { user: { type: 'text' }, password: { type: 'password' } },
    },
    ({ node, config, services }) => {
      const dbNode = node as DbNode;
      let ownPool: Pool | undefined;
      dbNode.getPool = () => {
        if (config.mode === 'runtime') {
          if (!services)
            throw new FloorflowError('FF_DB_UNAVAILABLE', 'no floorflow runtime database: use mode "url"');
          return services.pool;
        }
        if (!ownPool) {
          const url = new URL('postgresql://localhost');
          url.hostname = config.host ?? 'localhost';
          url.port = String(config.port || 5432);
          url.pathname = '/' + (config.database ?? '');
          if (dbNode.credentials?.user) url.username = dbNode.credentials.user;
          if (dbNode.credentials?.password) url.password = dbNode.credentials.password;
          ownPool = createPool(url.toString(), {
            max: config.poolSize || 5,
            ssl: config.ssl || undefined,
          });
        }
        return ownPool;
      };
      onCloseAsync(node, async () => {
        await ownPool?.end();
        ownPool = undefined;
      });
    },
  );
};
