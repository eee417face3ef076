import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Node, NodeMessage, NodeStatus } from 'node-red';
import helper from 'node-red-node-test-helper';
import type { Pool } from 'pg';
import type { SinonSpy } from 'sinon';
import { ManualClock, type FloorflowServices } from '../../nodes/common/services';
import jobMapper from '../../nodes/job-mapper/job-mapper';
import jobStatus from '../../nodes/job-status/job-status';
import jobStatusGaps from '../../nodes/job-status-gaps/job-status-gaps';
import jobStatusReprocess from '../../nodes/job-status-reprocess/job-status-reprocess';
import printOsPoller from '../../nodes/print-os-poller/print-os-poller';
import processPrintOs from '../../nodes/process-print-os/process-print-os';
import processStatusUpdates from '../../nodes/process-status-updates/process-status-updates';
import scanIngest from '../../nodes/scan-ingest/scan-ingest';

helper.init(require.resolve('node-red'));

type FlowNode = Parameters<typeof helper.load>[1][number] & Record<string, unknown>;

function statusesOf(node: Node): NodeStatus[] {
  const spy = node.status as unknown as SinonSpy<[NodeStatus], void>;
  return spy
    .getCalls()
    .filter((call) => call.thisValue === node)
    .map((call) => call.args[0]);
}

function nextMessage(node: Node): Promise<NodeMessage & Record<string, unknown>> {
  return new Promise((resolve) =>
    node.once('input', (msg: NodeMessage & Record<string, unknown>) => resolve(msg)),
  );
}

function flow(under: FlowNode): FlowNode[] {
  return [
    { id: 'tab', type: 'tab' },
    { ...under, id: 'under', z: 'tab', wires: [['out']] },
    { id: 'out', type: 'helper', z: 'tab' },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

/** The floorflow runtime's services with a database that fails the test if a node touches it. */
function runtimeWithoutDatabase(): void {
  const untouched = {
    query: () => Promise.reject(new Error('the database was touched')),
    connect: () => Promise.reject(new Error('the database was touched')),
  } as unknown as Pool;
  const services: FloorflowServices = {
    pool: untouched,
    topicPrefix: 'floorflow',
    runtimeId: 'test',
    events: new EventEmitter(),
    flowVersion: () => '1.0.0',
    machineSecret: async () => undefined,
    clock: new ManualClock(),
  };
  helper.settings({ floorflow: services } as Parameters<typeof helper.settings>[0]);
}

const routeNodes: Array<[string, unknown, string]> = [
  ['process print OS', processPrintOs, 'floorflow-process-print-os'],
  ['process status updates', processStatusUpdates, 'floorflow-process-status-updates'],
  ['job status', jobStatus, 'floorflow-job-status'],
  ['reprocess', jobStatusReprocess, 'floorflow-job-status-reprocess'],
  ['gap report', jobStatusGaps, 'floorflow-job-status-gaps'],
];

describe('job-status nodes (test helper, no database)', () => {
  afterEach(async () => {
    await helper.unload();
    helper.settings({});
  });

  const invalid: Array<[string, unknown, FlowNode]> = [
    ['print OS poller', printOsPoller, { id: 'under', type: 'floorflow-print-os-poller', source: 'fax' }],
    [
      'scan ingest',
      scanIngest,
      { id: 'under', type: 'floorflow-scan-ingest', serialMachineId: 'no spaces allowed' },
    ],
    ['job mapper', jobMapper, { id: 'under', type: 'floorflow-job-mapper', filePattern: 'FILE_(?<job>x)' }],
    ...routeNodes.map(([name, module, type]): [string, unknown, FlowNode] => [
      `${name} route`,
      module,
      { id: 'under', type, schemaVersion: 2 },
    ]),
    [
      'process print OS route',
      processPrintOs,
      { id: 'under', type: 'floorflow-process-print-os', batchSize: 0 },
    ],
  ];
  for (const [name, module, config] of invalid) {
    it(`the ${name} shows a red status for a configuration it cannot run with`, async () => {
      await helper.load(module as Parameters<typeof helper.load>[0], flow(config));
      const node = helper.getNode('under');
      assert.ok(statusesOf(node).some((s) => s.fill === 'red'));
    });
  }

  for (const [name, module, type] of routeNodes) {
    it(`the ${name} route says in red that it needs the floorflow runtime, and answers nothing`, async () => {
      await helper.load(module as Parameters<typeof helper.load>[0], flow({ id: 'under', type }));
      const node = helper.getNode('under');
      assert.deepEqual(statusesOf(node), [
        { fill: 'red', shape: 'ring', text: 'needs the floorflow runtime' },
      ]);
    });
  }

  it('the job mapper reports a message that is neither a scan nor a print OS record to a Catch node with FF_INPUT_INVALID', async () => {
    runtimeWithoutDatabase();
    await helper.load(
      jobMapper as Parameters<typeof helper.load>[0],
      flow({ id: 'under', type: 'floorflow-job-mapper' }),
    );
    const caught = nextMessage(helper.getNode('caught'));
    helper.getNode('under').receive({ payload: 'RL-1' } as NodeMessage);
    const msg = (await caught) as NodeMessage & { error: { code?: string; message: string } };
    assert.equal(msg.error.code, 'FF_INPUT_INVALID');
    assert.match(msg.error.message, /parsed scan or a "print OS" record/);
  });

  it('the job mapper refuses a parsed scan without the scan_id of its stored row', async () => {
    runtimeWithoutDatabase();
    await helper.load(
      jobMapper as Parameters<typeof helper.load>[0],
      flow({ id: 'under', type: 'floorflow-job-mapper' }),
    );
    const caught = nextMessage(helper.getNode('caught'));
    helper.getNode('under').receive({
      payload: { kind: 'runlist', runlist_id: 'RL-1', code: 'RL-1', operations: ['coating'] },
    } as NodeMessage);
    const msg = (await caught) as NodeMessage & { error: { message: string } };
    assert.match(msg.error.message, /msg\.scan_id/);
  });

  it('the process status updates route answers a bad body with 400 and the reason, without touching the database', async () => {
    runtimeWithoutDatabase();
    await helper.load(
      processStatusUpdates as Parameters<typeof helper.load>[0],
      flow({ id: 'under', type: 'floorflow-process-status-updates' }),
    );
    const out = nextMessage(helper.getNode('out'));
    helper
      .getNode('under')
      .receive({ payload: {}, req: { body: { source: 'fax' } } } as unknown as NodeMessage);
    const msg = await out;
    assert.equal(msg.statusCode, 400);
    assert.deepEqual(msg.payload, {
      success: false,
      error: 'source must be "both", "print_os" or "scanner"',
    });
  });
});
