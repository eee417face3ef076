import assert from 'node:assert/strict';
import type { Node, NodeMessage, NodeStatus } from 'node-red';
import helper from 'node-red-node-test-helper';
import type { SinonSpy } from 'sinon';
import jobMapper from '../../nodes/job-mapper/job-mapper';
import jobStatusApi from '../../nodes/job-status-api/job-status-api';
import printOsPoller from '../../nodes/print-os-poller/print-os-poller';
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

describe('job-status nodes (test helper, no database)', () => {
  afterEach(async () => {
    await helper.unload();
  });

  const invalid: Array<[string, unknown, FlowNode]> = [
    ['print OS poller', printOsPoller, { id: 'under', type: 'floorflow-print-os-poller', source: 'fax' }],
    [
      'scan ingest',
      scanIngest,
      { id: 'under', type: 'floorflow-scan-ingest', serialMachineId: 'no spaces allowed' },
    ],
    ['job mapper', jobMapper, { id: 'under', type: 'floorflow-job-mapper', filePattern: 'FILE_(?<job>x)' }],
    [
      'job status API',
      jobStatusApi,
      { id: 'under', type: 'floorflow-job-status-api', action: 'drop-tables' },
    ],
  ];
  for (const [name, module, config] of invalid) {
    it(`the ${name} shows a red status for a configuration it cannot run with`, async () => {
      await helper.load(module as Parameters<typeof helper.load>[0], flow(config));
      const node = helper.getNode('under');
      assert.ok(statusesOf(node).some((s) => s.fill === 'red'));
    });
  }

  it('the job mapper reports a message that is neither a scan nor a print OS record to a Catch node with FF_INPUT_INVALID', async () => {
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

  it('the job status API answers a bad body with 400 and the reason, without touching the database', async () => {
    await helper.load(
      jobStatusApi as Parameters<typeof helper.load>[0],
      flow({ id: 'under', type: 'floorflow-job-status-api', action: 'process-status-updates' }),
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
