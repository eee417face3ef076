// Node-RED glue for scan-parser: checks the patterns once at deploy, then classifies each scan
// with core/scan-code. Parsed scans leave on output 1, unparseable ones on output 2; the node
// never throws for a bad scan and never writes anywhere. The editor checks a pattern as it is
// typed by asking the runtime (GET floorflow/scan-patterns/problem), so there is one check.
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { checkScanPatterns, parseScan, scanPatternProblem, type ScanPatterns } from '../../core/scan-code';
import { defineNode } from '../common/define-node';
import type { DoneFn, SendFn } from '../common/node-kit';
import configSchema from './schema.json';

interface ScanParserConfig {
  name: string;
  runlistPattern: string;
  jobPattern: string;
  filePattern: string;
  schemaVersion: 1;
}

const ROLES: ReadonlyArray<keyof ScanPatterns> = ['runlist', 'job', 'file'];

export = function register(RED: NodeAPI): void {
  RED.httpAdmin.get(
    '/floorflow/scan-patterns/problem',
    RED.auth.needsPermission('floorflow-scan-parser.read'),
    (req, res) => {
      const role = req.query.role as keyof ScanPatterns;
      const pattern = req.query.pattern ?? '';
      if (!ROLES.includes(role)) {
        res.status(400).json({ success: false, error: 'role must be "runlist", "job" or "file"' });
        return;
      }
      res.json({ problem: scanPatternProblem(role, pattern) ?? null });
    },
  );

  defineNode<ScanParserConfig>(
    RED,
    { type: 'floorflow-scan-parser', schema: configSchema as JsonSchema, needs: 'nothing' },
    ({ node, config }) => {
      const patterns = { runlist: config.runlistPattern, job: config.jobPattern, file: config.filePattern };
      const problem = checkScanPatterns(patterns);
      // A misconfigured node must not pass scans as unparseable (they are fine, the node is not):
      // each one is reported to a Catch node instead.
      const misconfigured = problem
        ? new FloorflowError('FF_CONFIG_INVALID', `invalid configuration: ${problem}`)
        : undefined;
      if (misconfigured) {
        node.status({ fill: 'red', shape: 'ring', text: 'invalid pattern' });
        node.error(misconfigured);
      }
      let parsed = 0;
      let rejected = 0;
      // The status shows the counts once per turn of the event loop, not once per scan: a burst of
      // scans arrives together, and each status is an event to every editor connected.
      let statusDue = false;
      let lastRejected = false;
      const showCounts = (): void => {
        statusDue = false;
        node.status({
          fill: lastRejected ? 'yellow' : 'green',
          shape: 'dot',
          text: `${parsed} parsed, ${rejected} rejected`,
        });
      };

      // Synchronous on purpose: Node-RED catches a throw here and reports it with the message,
      // which an async handler would lose.
      node.on('input', (msg: NodeMessageInFlow, send: SendFn, done: DoneFn) => {
        if (misconfigured) {
          done(misconfigured);
          return;
        }
        const result = parseScan(msg.payload, patterns);
        lastRejected = result.kind === 'unparseable';
        if (lastRejected) rejected += 1;
        else parsed += 1;
        // Scheduled before the message is sent on, so the status is shown before it arrives.
        if (!statusDue) {
          statusDue = true;
          setImmediate(showCounts);
        }
        if (result.kind === 'unparseable') {
          send([null, Object.assign(msg, { reason: result.reason })]);
        } else {
          // msg.scan keeps the payload as received (for storing the code text verbatim); it is the
          // same reference, not a copy.
          send([Object.assign(msg, { scan: msg.payload, payload: result }), null]);
        }
        done();
      });
    },
  );
};
