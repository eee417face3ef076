// Node-RED glue for scan-parser: checks the configuration once at deploy, then classifies each
// scan with core/scan-code. Parsed scans leave on output 1, unparseable ones on output 2; the node
// never throws for a bad scan and never writes anywhere.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { checkScanPatterns, parseScan, type ScanPatterns } from '../../core/scan-code';
import { checkConfig, type DoneFn, type SendFn } from '../common/node-kit';
import configSchema from './schema.json';

interface ScanParserConfig {
  name: string;
  runlistPattern: string;
  jobPattern: string;
  filePattern: string;
  schemaVersion: 1;
}

type ScanParserDef = NodeDef & Partial<ScanParserConfig>;

const schema = configSchema as JsonSchema;

/** Reads the patterns from the configuration, or reports why the node cannot parse. */
function configure(node: Node, def: ScanParserDef): ScanPatterns | FloorflowError {
  // A copy: ajv fills schema defaults in place, and Node-RED keeps this definition to work out
  // which nodes a later deploy changed.
  const config = checkConfig<ScanParserConfig>(node, schema, { ...def });
  if (!config) {
    return new FloorflowError('FF_CONFIG_INVALID', 'invalid configuration; see the error logged at deploy');
  }
  const patterns = { runlist: config.runlistPattern, job: config.jobPattern, file: config.filePattern };
  const problem = checkScanPatterns(patterns);
  if (problem === undefined) return patterns;
  node.status({ fill: 'red', shape: 'ring', text: 'invalid pattern' });
  const error = new FloorflowError('FF_CONFIG_INVALID', `invalid configuration: ${problem}`);
  node.error(error);
  return error;
}

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType('floorflow-scan-parser', function ScanParserNode(this: Node, def: ScanParserDef) {
    RED.nodes.createNode(this, def);
    const patterns = configure(this, def);
    let parsed = 0;
    let rejected = 0;

    // Synchronous on purpose: Node-RED catches a throw here and reports it with the message,
    // which an async handler would lose.
    this.on('input', (msg: NodeMessageInFlow, send: SendFn, done: DoneFn) => {
      if (patterns instanceof FloorflowError) {
        // A misconfigured node must not pass scans as unparseable: they are fine, the node is not.
        done(patterns);
        return;
      }
      const result = parseScan(msg.payload, patterns);
      if (result.kind === 'unparseable') {
        rejected += 1;
        send([null, Object.assign(msg, { reason: result.reason })]);
      } else {
        parsed += 1;
        // msg.scan keeps the payload as received (for storing the code text verbatim); it is the
        // same reference, not a copy.
        send([Object.assign(msg, { scan: msg.payload, payload: result }), null]);
      }
      this.status({
        fill: result.kind === 'unparseable' ? 'yellow' : 'green',
        shape: 'dot',
        text: `${parsed} parsed, ${rejected} rejected`,
      });
      done();
    });
  });
};
