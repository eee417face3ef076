// Node-RED glue for job-mapper: one source record in (a scan parsed by scan-parser, or a
// "print OS" record), its jobs resolved and updated by store/job-status in one transaction,
// the result out. A record applied before (by a poller or an earlier message) changes nothing.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { FloorflowError } from '../../core/errors';
import { targetOfParsedScan } from '../../core/job-status';
import type { JsonSchema } from '../../core/schema';
import { checkScanPatterns, DEFAULT_SCAN_PATTERNS } from '../../core/scan-code';
import { poolFor } from '../../kit/db';
import { checkConfig, onInputAsync } from '../../kit/node-kit';
import { servicesOf, systemClock } from '../../kit/services';
import { applyPrintOsRecord, applyScanRecord, type ApplyResult } from '../../store/job-status';
import configSchema from './schema.json';

interface JobMapperConfig {
  name: string;
  db: string;
  filePattern: string;
  schemaVersion: 1;
}

const schema = configSchema as JsonSchema;

type Payload = Record<string, unknown>;

function isPrintOsRecord(p: Payload): boolean {
  return (p.status === 'PRINTED' || p.status === 'ABORTED') && typeof p.name === 'string';
}

function wholeNumber(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType(
    'floorflow-job-mapper',
    function JobMapperNode(this: Node, def: NodeDef & Partial<JobMapperConfig>) {
      RED.nodes.createNode(this, def);
      const config = checkConfig<JobMapperConfig>(this, schema, { ...def });
      if (!config) return;
      const filePattern = config.filePattern || undefined;
      if (filePattern) {
        const problem = checkScanPatterns({ ...DEFAULT_SCAN_PATTERNS, file: filePattern });
        if (problem) {
          this.status({ fill: 'red', shape: 'ring', text: 'invalid file pattern' });
          this.error(new FloorflowError('FF_CONFIG_INVALID', `invalid configuration: ${problem}`));
          return;
        }
      }
      const services = servicesOf(RED);
      const clock = services?.clock ?? systemClock;
      let applied = 0;
      let skipped = 0;

      onInputAsync(this, async (msg: NodeMessageInFlow, send, done) => {
        const payload = msg.payload as Payload | undefined;
        if (typeof payload !== 'object' || payload === null) {
          throw new FloorflowError(
            'FF_INPUT_INVALID',
            'msg.payload must be a parsed scan or a "print OS" record',
          );
        }
        const ctx = { now: clock.now(), flowVersion: services?.flowVersion(this.z), filePattern };
        const pool = () => poolFor(RED, config.db || undefined);
        let result: ApplyResult;
        if (isPrintOsRecord(payload)) {
          const id = wholeNumber(payload.id);
          const marker = wholeNumber(payload.marker);
          if (id === undefined || marker === undefined) {
            throw new FloorflowError('FF_INPUT_INVALID', 'a "print OS" record needs its id and marker');
          }
          const completed =
            typeof payload.job_complete_time === 'string' || payload.job_complete_time instanceof Date
              ? new Date(payload.job_complete_time)
              : null;
          result = await applyPrintOsRecord(
            pool(),
            {
              id,
              marker,
              name: payload.name as string,
              status: payload.status as 'PRINTED' | 'ABORTED',
              job_complete_time: completed,
            },
            ctx,
          );
        } else {
          const scanId = wholeNumber((msg as { scan_id?: unknown }).scan_id);
          if (scanId === undefined) {
            throw new FloorflowError(
              'FF_INPUT_INVALID',
              'a scan needs msg.scan_id (the scanned_codes row scan-ingest stored)',
            );
          }
          const scannedAt = typeof payload.scanned_at === 'string' ? new Date(payload.scanned_at) : ctx.now;
          result = await applyScanRecord(
            pool(),
            {
              scan_id: scanId,
              code_text: String(payload.code ?? ''),
              operations: payload.operations,
              scanned_at: Number.isNaN(scannedAt.getTime()) ? ctx.now : scannedAt,
              target: targetOfParsedScan(payload as { kind: string }),
            },
            ctx,
          );
        }
        applied += result.applied;
        skipped += result.skipped;
        this.status({
          fill: result.skipped > 0 ? 'yellow' : 'green',
          shape: 'dot',
          text: `${applied} applied, ${skipped} skipped`,
        });
        send(Object.assign(msg, { source_record: payload, payload: result }));
        done();
      });
    },
  );
};
