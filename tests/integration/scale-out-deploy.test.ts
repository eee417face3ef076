// Flows stay identical on every runtime (docs/scale-out.md): while another runtime runs the same
// flows on the database, a deploy from one runtime's editor is refused and changes nothing; alone,
// the runtime deploys as before.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { acquireLeases } from '../../store/leases';
import { createTestDatabase, type TestDatabase } from '../support/db';
import {
  adminLogin,
  REPO_ROOT,
  type RuntimeProcess,
  startRuntimeProcess,
  tempDir,
} from '../support/runtime-process';

const ADMIN_PASSWORD = 'scale-deploy-admin-1';

describe('editor deploys with several runtimes on one database', function () {
  this.timeout(120000);
  let db: TestDatabase;
  let runtime: RuntimeProcess | undefined;
  let flowsDir: string;

  before(async () => {
    db = await createTestDatabase();
    const dataDir = tempDir();
    flowsDir = path.join(dataDir, 'flows-job-status');
    fs.mkdirSync(flowsDir);
    for (const file of ['config.json', 'job-status.json'])
      fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(flowsDir, file));
    runtime = await startRuntimeProcess({
      dataDir,
      copyFlows: false,
      env: {
        DATABASE_URL: db.url,
        FLOORFLOW_ADMIN_PASSWORD: ADMIN_PASSWORD,
        FLOORFLOW_FLOWS_DIR: flowsDir,
        FLOORFLOW_DASHBOARDS_DIR: fs.mkdtempSync(path.join(dataDir, 'dashboards-')),
      },
    });
  });
  after(async () => {
    await runtime?.stop('SIGKILL');
    await db.drop();
  });

  async function deploy(label: string): Promise<Response> {
    const login = await adminLogin(runtime!.baseUrl, ADMIN_PASSWORD);
    const { access_token } = (await login.json()) as { access_token: string };
    const headers = { authorization: `Bearer ${access_token}`, 'Node-RED-API-Version': 'v2' };
    const current = (await (await fetch(`${runtime!.baseUrl}/editor/flows`, { headers })).json()) as {
      flows: Array<Record<string, unknown>>;
      rev: string;
    };
    return fetch(`${runtime!.baseUrl}/editor/flows`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify({
        flows: current.flows.map((n) => (n.type === 'tab' ? { ...n, info: label } : n)),
        rev: current.rev,
      }),
    });
  }

  it('refuses a deploy while another runtime is alive, leaving the flow files as they were; deploys once it is alone', async () => {
    const file = path.join(flowsDir, 'job-status.json');
    const before = fs.readFileSync(file, 'utf8');
    await acquireLeases(db.pool, ['runtime/other-runtime'], 'other-runtime', 60000);
    const refused = await deploy('changed in one editor only');
    assert.notEqual(refused.status, 200);
    assert.match(await refused.text(), /deploy refused: 1 other floorflow runtime/);
    assert.equal(fs.readFileSync(file, 'utf8'), before, 'the flow file is unchanged');

    await db.pool.query(`DELETE FROM floorflow.leases WHERE name = 'runtime/other-runtime'`);
    const accepted = await deploy('changed when alone');
    assert.equal(accepted.status, 200, await accepted.text());
    assert.match(fs.readFileSync(file, 'utf8'), /changed when alone/);
  });
});
