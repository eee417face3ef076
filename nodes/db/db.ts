// floorflow-db: the PostgreSQL connection the floorflow nodes share. In "runtime" mode it
// hands out the runtime's own pool (the embedded database or DATABASE_URL); in "url" mode
// it opens a pool to another server, with user and password kept as Node-RED credentials.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { DbConfigNode } from '../common/db';
import type { Pool } from 'pg';
import { FloorflowError } from '../../core/errors';
import { checkConfig, onCloseAsync } from '../common/node-kit';
import { servicesOf } from '../common/services';
import { createPool } from '../../store/db';
import schema from './schema.json';

interface DbConfig {
  name?: string;
  mode: 'runtime' | 'url';
  host?: string;
  port?: number | string;
  database?: string;
  ssl?: boolean;
  poolSize?: number | string;
}

interface DbCredentials {
  user?: string;
  password?: string;
}

type DbNode = DbConfigNode & Node<DbCredentials>;

export = function register(RED: NodeAPI): void {
  function FloorflowDbNode(this: DbNode, def: NodeDef & DbConfig) {
    RED.nodes.createNode(this, def);
    const config = checkConfig<DbConfig>(this, schema, { ...def, mode: def.mode || 'runtime' });
    let ownPool: Pool | undefined;
    this.getPool = () => {
      if (!config) throw new FloorflowError('FF_CONFIG_INVALID', 'floorflow-db configuration is invalid');
      if (config.mode === 'runtime') {
        const services = servicesOf(RED);
        if (!services)
          throw new FloorflowError('FF_DB_UNAVAILABLE', 'no floorflow runtime database: use mode "url"');
        return services.pool;
      }
      if (!ownPool) {
        const url = new URL('postgresql://localhost');
        url.hostname = config.host ?? 'localhost';
        url.port = String(config.port || 5432);
        url.pathname = '/' + (config.database ?? '');
        if (this.credentials?.user) url.username = this.credentials.user;
        if (this.credentials?.password) url.password = this.credentials.password;
        ownPool = createPool(url.toString(), {
          max: Number(config.poolSize || 5),
          ssl: config.ssl || undefined,
        });
      }
      return ownPool;
    };
    onCloseAsync(this, async () => {
      await ownPool?.end();
      ownPool = undefined;
    });
  }
  RED.nodes.registerType(
    'floorflow-db',
    FloorflowDbNode as unknown as Parameters<NodeAPI['nodes']['registerType']>[1],
    {
      credentials: { user: { type: 'text' }, password: { type: 'password' } },
    },
  );
};
