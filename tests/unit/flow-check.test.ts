import assert from 'node:assert/strict';
import { NodeCatalog, checkFlows, resolveRefs, typesFromHtml } from '../../core/flow-check';
import { contentHash, stringifyFlowFile } from '../../core/flow-files';
import type { FlowNode } from '../../core/flow-files';

const EDITOR_HTML = `
<script type="text/html" data-template-name="acme-sensor"></script>
<script type="text/javascript">
  RED.nodes.registerType('acme-sensor', {
    category: 'acme',
    defaults: {
      name: { value: '' },
      link: { type: "acme-link", required: true },
      tls: { type: 'tls-config', required: false, validate: function (v) { return true; } },
    },
    credentials: { password: { type: 'password' } },
  });
  RED.nodes.registerType("acme-link", { category: "config", defaults: { host: { value: "" } } });
</script>`;

function catalog(): NodeCatalog {
  const types = new Map(
    [
      ...typesFromHtml(EDITOR_HTML, 'acme'),
      ...typesFromHtml(`RED.nodes.registerType('tab-less', {})`, 'x'),
    ].map((t) => [t.type, t]),
  );
  types.set('tls-config', { type: 'tls-config', source: 'node-red', config: true, refs: {} });
  types.set('http in', { type: 'http in', source: 'node-red', config: false, refs: {} });
  const result = { types, schemas: new Map() };
  resolveRefs(result);
  return result;
}

/** The findings of the rules these tests are about; the layout rules have tests of their own. */
function check(nodes: FlowNode[]) {
  const file = 'flows/line.json';
  const manifest = JSON.stringify({ flows: { [file]: { version: '1.0.0', hash: contentHash(nodes) } } });
  return checkFlows({
    files: [{ file, text: stringifyFlowFile(nodes) }],
    manifest,
    catalog: catalog(),
  }).filter((f) => !f.rule.startsWith('layout-'));
}

describe('flow check rules', () => {
  it('reads node types, config categories and config-node properties from editor html', () => {
    const [sensor, link] = typesFromHtml(EDITOR_HTML, 'acme');
    assert.equal(sensor.type, 'acme-sensor');
    assert.equal(sensor.config, false);
    assert.deepEqual(sensor.refs.link, { type: 'acme-link', required: true });
    assert.deepEqual(link, { type: 'acme-link', source: 'acme', config: true, refs: {} });
  });

  it('drops credential declarations and other non-node types from the config references', () => {
    const sensor = catalog().types.get('acme-sensor')!;
    assert.deepEqual(Object.keys(sensor.refs).sort(), ['link', 'tls']);
  });

  it('requires a required config reference but not an optional one', () => {
    const findings = check([
      { id: 't', type: 'tab' },
      { id: 's', type: 'acme-sensor', z: 't', link: '', tls: '' },
    ]);
    assert.deepEqual(
      findings.map((f) => [f.rule, f.nodeId]),
      [['missing-config', 's']],
    );
  });

  it('reports a node whose tab does not exist and a subflow instance without its subflow', () => {
    const findings = check([
      { id: 't', type: 'tab' },
      { id: 'lost', type: 'acme-link', z: 'gone' },
      { id: 'sub', type: 'subflow:nowhere', z: 't' },
    ]);
    assert.deepEqual(
      findings.map((f) => [f.rule, f.nodeId]),
      [
        ['missing-container', 'lost'],
        ['unknown-type', 'sub'],
      ],
    );
  });

  it('reports one id used twice', () => {
    const findings = check([
      { id: 't', type: 'tab' },
      { id: 'a', type: 'acme-link' },
      { id: 'a', type: 'acme-link' },
    ]);
    assert.deepEqual(
      findings.map((f) => f.rule),
      ['duplicate-id'],
    );
  });

  it('ignores a duplicate route on a disabled node, and matches routes by method', () => {
    const route = (id: string, extra: Partial<FlowNode> = {}): FlowNode => ({
      id,
      type: 'http in',
      z: 't',
      url: '/api/x',
      method: 'get',
      ...extra,
    });
    assert.deepEqual(
      check([{ id: 't', type: 'tab' }, route('a'), route('b', { d: true }), route('c', { method: 'post' })]),
      [],
    );
    assert.deepEqual(
      check([{ id: 't', type: 'tab' }, route('a'), route('b', { url: 'api/x/' })]).map((f) => [
        f.rule,
        f.nodeId,
      ]),
      [['duplicate-route', 'b']],
    );
  });
});
