import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import type { Node, NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import { errorsLoggedBy, statusesOf } from '../../tests/support/node-status';
import { DEFAULT_SCAN_PATTERNS, scanPatternProblem, type ScanPatterns } from '../../core/scan-code';
import scanParser from './scan-parser';

helper.init(require.resolve('node-red'));

type FlowNode = Parameters<typeof helper.load>[1][number] & Record<string, unknown>;

/**
 * The parser wired to two helper nodes, `parsed` and `rejected`, and a Catch node to `caught`.
 * No id equals a type name: Node-RED reads any property whose value is a config node's id as a
 * reference to it, so a Catch node with id `catch` would seem to depend on itself and never start.
 */
function flowWith(config: Record<string, unknown> = {}): FlowNode[] {
  return [
    { id: 'tab', type: 'tab' },
    {
      id: 'parser',
      type: 'floorflow-scan-parser',
      z: 'tab',
      name: 'scan parser',
      wires: [['parsed'], ['rejected']],
      ...config,
    },
    { id: 'parsed', type: 'helper', z: 'tab' },
    { id: 'rejected', type: 'helper', z: 'tab' },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

function nextMessage<T extends NodeMessage = NodeMessage & Record<string, unknown>>(node: Node): Promise<T> {
  return new Promise((resolve) => node.once('input', (msg: T) => resolve(msg)));
}

/** Fails if `node` receives anything within a short window, for "nothing is sent" checks. */
function nothingArrivesAt(node: Node): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (msg: unknown) => reject(new Error(`unexpected message ${JSON.stringify(msg)}`));
    node.once('input', fail);
    setTimeout(() => {
      node.removeListener('input', fail);
      resolve();
    }, 50);
  });
}

type Validator = ((this: unknown, value: unknown, opt: object) => unknown) & { length: number };

interface EditorDefinition {
  type: string;
  category: string;
  outputs: number;
  defaults: Record<string, { value: unknown; validate?: Validator }>;
}

/**
 * Runs the node's editor script against a stub RED. The editor asks the runtime about patterns
 * with $.getJSON: here each question waits in `pending` and is answered by the runtime's check.
 */
function loadEditor(): { html: string; definition: EditorDefinition; pending: Array<() => void> } {
  const html = fs.readFileSync(path.join(__dirname, '../../nodes/scan-parser/scan-parser.html'), 'utf8');
  const script = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html)![1];
  let definition: EditorDefinition | undefined;
  const pending: Array<() => void> = [];
  const element = { trigger: () => element, on: () => element, val: () => element };
  const $ = Object.assign(() => element, {
    getJSON: (
      _url: string,
      query: { role: keyof ScanPatterns; pattern: string },
      answer: (a: unknown) => void,
    ) => pending.push(() => answer({ problem: scanPatternProblem(query.role, query.pattern) ?? null })),
  });
  const RED = {
    nodes: {
      registerType: (type: string, registered: Omit<EditorDefinition, 'type'>) => {
        definition = { type, ...registered };
      },
      eachNode: () => undefined,
    },
    editor: { validateNode: () => undefined },
    view: { redraw: () => undefined },
  };
  vm.runInNewContext(script, { RED, $ });
  return { html, definition: definition!, pending };
}

describe('scan-parser node', () => {
  afterEach(async () => {
    await helper.unload();
  });

  it('registers as floorflow-scan-parser in the floorflow palette category with two outputs', async () => {
    await helper.load(scanParser, flowWith());
    assert.equal(helper.getNode('parser').type, 'floorflow-scan-parser');
    const { html, definition } = loadEditor();
    assert.equal(definition.type, 'floorflow-scan-parser');
    assert.equal(definition.category, 'floorflow');
    assert.equal(definition.outputs, 2);
    assert.match(html, /data-help-name="floorflow-scan-parser"/);
  });

  it('offers the standard patterns in the editor, the same as the runtime defaults', () => {
    const { defaults } = loadEditor().definition;
    assert.equal(defaults.runlistPattern.value, DEFAULT_SCAN_PATTERNS.runlist);
    assert.equal(defaults.jobPattern.value, DEFAULT_SCAN_PATTERNS.job);
    assert.equal(defaults.filePattern.value, DEFAULT_SCAN_PATTERNS.file);
  });

  it('sends a job scan to output 1 as a parsed object and keeps the original as msg.scan', async () => {
    await helper.load(scanParser, flowWith({ runlistPattern: 'RL-\\d+' }));
    const arrived = nextMessage(helper.getNode('parsed'));
    const scan = { code: ']C14604_5889_3\r\n', operations: { coating: true, print: false }, msg_id: 'm-7' };
    helper.getNode('parser').receive({ payload: scan, topic: 'floorflow/machines/s1/scan' } as NodeMessage);
    const msg = await arrived;
    assert.deepEqual(msg.payload, {
      kind: 'job',
      job_id: '4604_5889',
      version_tag: '3',
      code: '4604_5889_3',
      operations: ['coating'],
      msg_id: 'm-7',
    });
    assert.deepEqual(msg.scan, scan);
    assert.equal(msg.topic, 'floorflow/machines/s1/scan');
  });

  it('uses the standard patterns when the flow gives none, so a job code is ambiguous', async () => {
    await helper.load(scanParser, flowWith());
    const arrived = nextMessage(helper.getNode('parsed'));
    helper.getNode('parser').receive({ payload: '4604_5889_3\r\n' } as NodeMessage);
    const msg = await arrived;
    assert.deepEqual(msg.payload, {
      kind: 'ambiguous',
      runlist_id: '4604_5889_3',
      job_id: '4604_5889',
      version_tag: '3',
      code: '4604_5889_3',
      operations: [],
    });
  });

  it('sends garbage to output 2 unchanged with a reason, and nothing to output 1', async () => {
    await helper.load(scanParser, flowWith());
    const rejected = nextMessage(helper.getNode('rejected'));
    const quiet = nothingArrivesAt(helper.getNode('parsed'));
    helper.getNode('parser').receive({ payload: 'no code here!' } as NodeMessage);
    const msg = await rejected;
    assert.equal(msg.payload, 'no code here!');
    assert.match(String(msg.reason), /matches none of the runlist, job, file patterns/);
    await quiet;
  });

  it('counts parsed and rejected scans in its status', async () => {
    await helper.load(scanParser, flowWith());
    const parser = helper.getNode('parser');
    const parsed = helper.getNode('parsed');
    const rejected = helper.getNode('rejected');
    for (const payload of ['RL-1', 'RL-2']) {
      const arrived = nextMessage(parsed);
      parser.receive({ payload } as NodeMessage);
      await arrived;
    }
    const arrived = nextMessage(rejected);
    parser.receive({ payload: { code: 'RL-3', operations: 'coating' } } as NodeMessage);
    await arrived;
    assert.deepEqual(statusesOf(parser).at(-1), {
      fill: 'yellow',
      shape: 'dot',
      text: '2 parsed, 1 rejected',
    });
  });

  it('shows its counts once for a burst of scans that arrive together, before they are sent on', async () => {
    await helper.load(scanParser, flowWith());
    const parser = helper.getNode('parser');
    const parsed = helper.getNode('parsed');
    let arrived = 0;
    const all = new Promise<void>((resolve) =>
      parsed.on('input', () => {
        arrived += 1;
        if (arrived === 20) resolve();
      }),
    );
    for (let i = 0; i < 20; i += 1) parser.receive({ payload: `RL-${i}` } as NodeMessage);
    await all;
    assert.deepEqual(statusesOf(parser), [{ fill: 'green', shape: 'dot', text: '20 parsed, 0 rejected' }]);
  });

  it('shows a red status and logs one error for an invalid pattern, without crashing', async () => {
    await helper.load(scanParser, flowWith({ jobPattern: '(?<job_id>\\d+' }));
    const parser = helper.getNode('parser');
    assert.deepEqual(statusesOf(parser), [{ fill: 'red', shape: 'ring', text: 'invalid pattern' }]);
    const errors = errorsLoggedBy('parser');
    assert.equal(errors.length, 1);
    assert.match(errors[0], /job pattern is not a valid regular expression/);
  });

  it('shows a red status for a configuration the schema rejects', async () => {
    await helper.load(scanParser, flowWith({ schemaVersion: 2, filePattern: 42 }));
    assert.deepEqual(statusesOf(helper.getNode('parser')), [
      { fill: 'red', shape: 'ring', text: 'invalid configuration' },
    ]);
    assert.equal(errorsLoggedBy('parser').length, 1);
  });

  it('answers the editor with the runtime check of a pattern as it is typed', async () => {
    await helper.load(scanParser, flowWith());
    const missing = await helper
      .request()
      .get('/floorflow/scan-patterns/problem')
      .query({ role: 'job', pattern: '(?<job_id>\\d+)' })
      .expect(200);
    assert.match(String(missing.body.problem), /job pattern needs the named group \(\?<version_tag>…\)/);
    const broken = await helper
      .request()
      .get('/floorflow/scan-patterns/problem')
      .query({ role: 'runlist', pattern: '[' })
      .expect(200);
    assert.match(String(broken.body.problem), /runlist pattern is not a valid regular expression/);
    const fine = await helper
      .request()
      .get('/floorflow/scan-patterns/problem')
      .query({ role: 'file', pattern: DEFAULT_SCAN_PATTERNS.file })
      .expect(200);
    assert.deepEqual(fine.body, { problem: null });
    const off = await helper
      .request()
      .get('/floorflow/scan-patterns/problem')
      .query({ role: 'file', pattern: '' });
    assert.deepEqual(off.body, { problem: null });
    await helper
      .request()
      .get('/floorflow/scan-patterns/problem')
      .query({ role: 'fax', pattern: 'x' })
      .expect(400);
  });

  it('marks a pattern the runtime refuses as invalid in the editor, with the runtime reason', () => {
    const { definition, pending } = loadEditor();
    const { defaults } = definition;
    // As the editor's validateNodeProperty reads a validator's answer: text is the reason the value
    // is invalid only from a validator of two parameters (value, opt); otherwise any truthy answer is valid.
    const editorVerdict = (field: string, value: string): true | string => {
      const validate = defaults[field].validate!;
      const answer = validate.call({}, value, {});
      if (validate.length === 2 && typeof answer === 'string') return answer;
      return answer ? true : 'invalid';
    };
    const missingGroup = '(?<job_id>\\d+)';
    assert.equal(editorVerdict('jobPattern', missingGroup), true, 'valid until the runtime has answered');
    for (const answer of pending.splice(0)) answer();
    assert.equal(
      editorVerdict('jobPattern', missingGroup),
      'the job pattern needs the named group (?<version_tag>…)',
    );
    assert.equal(editorVerdict('runlistPattern', '['), true);
    for (const answer of pending.splice(0)) answer();
    assert.match(
      String(editorVerdict('runlistPattern', '[')),
      /runlist pattern is not a valid regular expression/,
    );
    assert.equal(editorVerdict('filePattern', DEFAULT_SCAN_PATTERNS.file), true);
    for (const answer of pending.splice(0)) answer();
    assert.equal(editorVerdict('filePattern', DEFAULT_SCAN_PATTERNS.file), true);
  });

  it('has no pattern check of its own in the editor: it asks the runtime', () => {
    const html = fs.readFileSync(path.join(__dirname, '../../nodes/scan-parser/scan-parser.html'), 'utf8');
    assert.match(html, /floorflow\/scan-patterns\/problem/);
    assert.doesNotMatch(html, /new RegExp/);
  });

  it('when misconfigured, reports each scan to a Catch node with FF_CONFIG_INVALID and sends nothing', async () => {
    await helper.load(scanParser, flowWith({ runlistPattern: '[' }));
    const caught = nextMessage(helper.getNode('caught'));
    const quietParsed = nothingArrivesAt(helper.getNode('parsed'));
    const quietRejected = nothingArrivesAt(helper.getNode('rejected'));
    helper.getNode('parser').receive({ payload: 'RL-1' } as NodeMessage);
    const msg = await caught;
    const error = msg.error as { code?: string; message?: string };
    assert.equal(error.code, 'FF_CONFIG_INVALID');
    assert.match(String(error.message), /runlist pattern/);
    assert.equal(msg.payload, 'RL-1');
    await Promise.all([quietParsed, quietRejected]);
  });
});
