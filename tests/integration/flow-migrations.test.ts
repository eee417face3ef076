import assert from 'node:assert/strict';
import path from 'node:path';
import type { FlowNode } from '../../core/flow-files';
import { FlowVersions, loadFlowStorage } from '../../runtime/flow-runtime';
import { FlowKit, PROJECT_ROOT, startFlowKit } from '../support/flow-kit';

// A flow file saved by an older floorflow: its scan parser still has the v0 `pattern`.
const OLD_FLOWS = path.join(PROJECT_ROOT, 'tests', 'fixtures', 'flows-check', 'old-schema-version', 'flows');

describe('old node configurations on load', function () {
  this.timeout(30000);
  let kit: FlowKit | undefined;
  afterEach(async () => {
    await kit?.stop();
    kit = undefined;
  });

  it('the storage module hands Node-RED the v0 scan parser in its v1 shape, leaving the file as it is', async () => {
    const storage = loadFlowStorage({
      config: { flowsDir: OLD_FLOWS, dashboardsDir: path.join(OLD_FLOWS, '..', 'dashboards') },
      versions: new FlowVersions(),
      credentialSecret: 'test',
    }) as { getFlows(): Promise<FlowNode[]> };
    const flows = await storage.getFlows();
    const parser = flows.find((n) => n.id === 'scans-parser')!;
    assert.equal(parser.schemaVersion, 1);
    assert.equal(parser.jobPattern, '(?<job_id>\\d+_\\d+)_(?<version_tag>\\d+)');
    assert.equal('pattern' in parser, false);
  });

  it('an old flow file still parses job codes and, as before, rejects runlist ids', async () => {
    kit = await startFlowKit({
      flows: [path.join(OLD_FLOWS, 'scans.json')],
      broker: false,
      extraNodes: [
        { id: 'parsed', type: 'helper', z: 'scans-tab' },
        { id: 'rejected', type: 'helper', z: 'scans-tab' },
      ],
      extraWires: [
        { from: 'scans-parser', port: 0, to: 'parsed' },
        { from: 'scans-parser', port: 1, to: 'rejected' },
      ],
    });
    const parsed = kit.nextMessage('parsed');
    kit.receive('scans-parser', { payload: '4604_5889_3' });
    assert.deepEqual((await parsed).payload, {
      kind: 'job',
      job_id: '4604_5889',
      version_tag: '3',
      code: '4604_5889_3',
      operations: [],
    });
    const rejected = kit.nextMessage('rejected');
    kit.receive('scans-parser', { payload: 'RL-1' });
    assert.equal((await rejected).payload, 'RL-1');
  });
});
