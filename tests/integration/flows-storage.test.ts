// The storage module's side of "a deploy that changes nothing changes no file": Node-RED's
// full deploy sends every tab, and a tab nobody edited must keep its file and its version,
// even when the editor writes it differently (a property its definition does not declare, an
// old node configuration served upgraded, a link out served without its empty wires).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { editorForm } from '../../core/editor-form';
import { FlowNode, stringifyFlowFile } from '../../core/flow-files';
import {
  FlowDirs,
  FlowVersions,
  loadFlowStorage,
  nextManifest,
  readFlowFiles,
  readManifest,
  writeManifest,
} from '../../runtime/flow-runtime';
import { editorDefinitions, loadNodeCatalog } from '../../runtime/node-catalog';

interface Storage {
  getFlows(): Promise<FlowNode[]>;
  saveFlows(flows: FlowNode[]): Promise<void>;
}

const LINE_TAB: FlowNode[] = [
  { id: 'line-tab', type: 'tab', label: 'Line', disabled: false, info: '', env: [] },
  // `outputs` is not among the change node's editor defaults: the editor never writes it.
  {
    id: 'line-mark',
    type: 'change',
    z: 'line-tab',
    name: 'mark',
    rules: [{ t: 'set', p: 'topic', pt: 'msg', to: 'line', tot: 'str' }],
    action: '',
    property: '',
    from: '',
    to: '',
    reg: false,
    outputs: 1,
    x: 200,
    y: 80,
    wires: [['line-return']],
  },
  {
    id: 'line-return',
    type: 'link out',
    z: 'line-tab',
    name: '',
    mode: 'return',
    links: [],
    x: 400,
    y: 80,
    wires: [],
  },
];

const SCANS_TAB: FlowNode[] = [
  { id: 'scans-tab', type: 'tab', label: 'Scans', disabled: false, info: '', env: [] },
  // Configuration version 0: served upgraded (jobPattern), kept in the file as it is.
  {
    id: 'scans-parser',
    type: 'floorflow-scan-parser',
    z: 'scans-tab',
    name: 'parse',
    pattern: '(?<job_id>\\d+_\\d+)_(?<version_tag>\\d+)',
    x: 200,
    y: 80,
    wires: [[], []],
  },
  {
    id: 'scans-note',
    type: 'comment',
    z: 'scans-tab',
    name: 'before the edit',
    info: '',
    x: 200,
    y: 160,
    wires: [],
  },
];

describe('the flow storage module', () => {
  let root: string;
  let dirs: FlowDirs;
  let storage: Storage;
  const definitions = editorDefinitions(loadNodeCatalog());

  const text = (file: string) => fs.readFileSync(path.join(dirs.flowsDir, file), 'utf8');
  /** What the editor sends for the flows it was served: every node in its form. */
  const asEditorSends = (flows: FlowNode[]) =>
    editorForm(flows, definitions, new Set(flows.map((n) => n.id)));

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-storage-'));
    dirs = { flowsDir: path.join(root, 'flows'), dashboardsDir: path.join(root, 'dashboards') };
    fs.mkdirSync(dirs.flowsDir, { recursive: true });
    fs.writeFileSync(path.join(dirs.flowsDir, 'line.json'), stringifyFlowFile(LINE_TAB));
    fs.writeFileSync(path.join(dirs.flowsDir, 'scans.json'), stringifyFlowFile(SCANS_TAB));
    fs.writeFileSync(path.join(dirs.flowsDir, 'config.json'), stringifyFlowFile([]));
    writeManifest(dirs, nextManifest(readManifest(dirs), readFlowFiles(dirs)));
    storage = loadFlowStorage({
      config: dirs,
      versions: new FlowVersions(),
      credentialSecret: 'test',
      editorDefinitions: () => definitions,
    }) as Storage;
  });

  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('a full deploy of the tabs as the editor sends them back unchanged keeps every file and version', async () => {
    const before = { line: text('line.json'), scans: text('scans.json'), manifest: text('manifest.json') };
    const served = await storage.getFlows();
    assert.equal(
      served.find((n) => n.id === 'scans-parser')?.jobPattern,
      SCANS_TAB[1].pattern,
      'served upgraded',
    );
    await storage.saveFlows(asEditorSends(served));
    assert.equal(text('line.json'), before.line);
    assert.equal(text('scans.json'), before.scans);
    assert.equal(text('manifest.json'), before.manifest);
    // And again: what a deploy kept is what the next one compares with.
    await storage.saveFlows(asEditorSends(served));
    assert.equal(text('manifest.json'), before.manifest);
  });

  it('a link out served without its empty wires (as the flow endpoint serves it) is no change', async () => {
    const before = text('line.json');
    const served = await storage.getFlows();
    await storage.saveFlows(
      served.map((n) => {
        if (n.type !== 'link out') return n;
        const { wires: _empty, ...rest } = n;
        return rest as FlowNode;
      }),
    );
    assert.equal(text('line.json'), before);
  });

  it("a group's box as the editor recomputes it is no change", async () => {
    const withGroup: FlowNode[] = [
      LINE_TAB[0],
      {
        id: 'line-group',
        type: 'group',
        z: 'line-tab',
        name: 'mark',
        style: { label: true },
        nodes: ['line-mark'],
        x: 94,
        y: 39,
        w: 212,
        h: 82,
      },
      { ...LINE_TAB[1], g: 'line-group' },
      LINE_TAB[2],
    ];
    fs.writeFileSync(path.join(dirs.flowsDir, 'line.json'), stringifyFlowFile(withGroup));
    writeManifest(dirs, nextManifest(readManifest(dirs), readFlowFiles(dirs)));
    const before = { line: text('line.json'), manifest: text('manifest.json') };
    const served = asEditorSends(await storage.getFlows());
    // The browser measured the label a few pixels wider than the file says.
    await storage.saveFlows(served.map((n) => (n.type === 'group' ? { ...n, x: 84, w: 232, h: 89.5 } : n)));
    assert.equal(text('line.json'), before.line);
    assert.equal(text('manifest.json'), before.manifest);
  });

  it('an edit of one tab rewrites that tab alone, in the editor form, and raises its version alone', async () => {
    const before = { line: text('line.json'), manifest: readManifest(dirs) };
    const served = asEditorSends(await storage.getFlows());
    await storage.saveFlows(
      served.map((n) => (n.id === 'scans-note' ? { ...n, name: 'after the edit' } : n)),
    );
    assert.equal(text('line.json'), before.line);
    const scans = JSON.parse(text('scans.json')) as FlowNode[];
    assert.equal(scans.find((n) => n.id === 'scans-note')?.name, 'after the edit');
    const after = readManifest(dirs);
    assert.equal(after.flows['flows/line.json'].version, before.manifest.flows['flows/line.json'].version);
    assert.equal(after.flows['flows/scans.json'].version, '1.0.1');
    assert.deepEqual(after.order, ['flows/line.json', 'flows/scans.json']);
  });

  describe('dashboard templates in files of their own', () => {
    const BOARD = '<template>\n  <div class="board">{{ msg.payload }}</div>\n</template>\n';
    const PAGE_TAB: FlowNode[] = [
      { id: 'page-tab', type: 'tab', label: 'Display: Line', disabled: false, info: '', env: [] },
      {
        id: 'page-board',
        type: 'ui-template',
        z: 'page-tab',
        name: 'Line board',
        templateScope: 'local',
        x: 200,
        y: 80,
        wires: [[]],
      },
    ];
    const board = () => path.join(dirs.dashboardsDir, 'templates', 'line', 'page-board.vue');

    beforeEach(() => {
      fs.mkdirSync(path.dirname(board()), { recursive: true });
      fs.writeFileSync(path.join(dirs.dashboardsDir, 'line.json'), stringifyFlowFile(PAGE_TAB));
      fs.writeFileSync(board(), BOARD);
      writeManifest(dirs, nextManifest(readManifest(dirs), readFlowFiles(dirs)));
    });

    it("the runtime serves a template from its file, and the file's edit counts as a change of the flow", async () => {
      const served = await storage.getFlows();
      assert.equal(served.find((n) => n.id === 'page-board')?.format, BOARD);
      const hash = readManifest(dirs).flows['dashboards/line.json'].hash;
      fs.writeFileSync(board(), BOARD.replace('board', 'board wide'));
      assert.notEqual(
        nextManifest(readManifest(dirs), readFlowFiles(dirs)).flows['dashboards/line.json'].hash,
        hash,
      );
    });

    it('a deploy of an edited template writes the template file, and the flow file stays without it', async () => {
      const json = fs.readFileSync(path.join(dirs.dashboardsDir, 'line.json'), 'utf8');
      const served = asEditorSends(await storage.getFlows());
      const edited = BOARD.replace('{{ msg.payload }}', '{{ msg.payload.count }} plates');
      await storage.saveFlows(served.map((n) => (n.id === 'page-board' ? { ...n, format: edited } : n)));
      assert.equal(fs.readFileSync(board(), 'utf8'), edited);
      assert.equal(fs.readFileSync(path.join(dirs.dashboardsDir, 'line.json'), 'utf8'), json);
      assert.equal(readManifest(dirs).flows['dashboards/line.json'].version, '1.0.1');
    });

    it('a deploy of the page unchanged writes neither file', async () => {
      const before = fs.statSync(board()).mtimeMs;
      await storage.saveFlows(asEditorSends(await storage.getFlows()));
      assert.equal(fs.readFileSync(board(), 'utf8'), BOARD);
      assert.equal(fs.statSync(board()).mtimeMs, before);
      assert.equal(readManifest(dirs).flows['dashboards/line.json'].version, '1.0.0');
    });
  });
});
