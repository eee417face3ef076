// Node-RED glue for job-mapper: source records in (scans parsed by scan-parser, "print OS"
// records), one message each; they are applied in batches by store/job-status-scans and
// store/job-status-print (the verdicts computed inside PostgreSQL), and each message leaves, and is
// done, once its batch has committed. A record applied before (by a poller or an earlier message)
// changes nothing.
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import { FloorflowError } from '../../core/errors';
import { targetOfParsedScan } from '../../core/job-status';
import { scanNoticeLine } from '../../core/scan-notice';
import { JOB_STATUS_EVENT } from '../common/scan-notices';
import type { JsonSchema } from '../../core/schema';
import { checkScanPatterns, DEFAULT_SCAN_PATTERNS } from '../../core/scan-code';
import { coalescedBatches, type BatchItem } from './batches';
import { defineNode } from '../common/define-node';
import { onCloseAsync, onInputAsync } from '../common/node-kit';
import { isConnectionError } from '../../store/db';
import type { ApplyContext, ApplyResult, RecordResult } from '../../store/job-status-apply';
import { applyPrintOsRecords, type PrintOsRecordInput } from '../../store/job-status-print';
import { applyScanRecords, type ScanRecordInput } from '../../store/job-status-scans';
import { recordWithoutEffect } from '../../store/ledger';
import configSchema from './schema.json';

interface JobMapperConfig {
  name: string;
  db: string;
  filePattern: string;
  /**
   * Least time between the starts of two batches (ms, 0: none). An apply call costs the database
   * ~1.5 ms of CPU whatever its size, and the runtime a round trip: at a steady 1,000 scans/s,
   * batches applied as soon as the last one committed held ~2 scans each, and those fixed costs
   * were most of the CPU a scan cost (docs/benchmarks.md, scan ingest, wave 5). The editor keeps
   * what is typed as text, and a flow from before the setting has none.
   */
  batchSpacingMs?: number | string;
  schemaVersion: 1;
}

/** Most records applied in one transaction; more waiting form the next batch. */
const MAX_BATCH = 1000;

type Payload = Record<string, unknown>;

type Record_ = { kind: 'scan'; input: ScanRecordInput } | { kind: 'print'; input: PrintOsRecordInput };

function isPrintOsRecord(p: Payload): boolean {
  return (p.status === 'PRINTED' || p.status === 'ABORTED') && typeof p.name === 'string';
}

function wholeNumber(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** Reads a message into a record, or throws FF_INPUT_INVALID (the message is not queued). */
function recordOf(msg: NodeMessageInFlow, now: Date): Record_ {
  const payload = msg.payload as Payload | undefined;
  if (typeof payload !== 'object' || payload === null) {
    throw new FloorflowError('FF_INPUT_INVALID', 'msg.payload must be a parsed scan or a "print OS" record');
  }
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
    return {
      kind: 'print',
      input: {
        id,
        marker,
        name: payload.name as string,
        status: payload.status as 'PRINTED' | 'ABORTED',
        job_complete_time: completed,
      },
    };
  }
  const scanId = wholeNumber((msg as { scan_id?: unknown }).scan_id);
  if (scanId === undefined) {
    throw new FloorflowError(
      'FF_INPUT_INVALID',
      'a scan needs msg.scan_id (the scanned_codes row scan-ingest stored)',
    );
  }
  const scannedAt = typeof payload.scanned_at === 'string' ? new Date(payload.scanned_at) : now;
  return {
    kind: 'scan',
    input: {
      scan_id: scanId,
      code_text: String(payload.code ?? ''),
      operations: payload.operations,
      scanned_at: Number.isNaN(scannedAt.getTime()) ? now : scannedAt,
      // A scan scan-parser could not read comes with its reason, and is recorded as skipped with it.
      target:
        payload.kind === undefined && typeof (msg as { reason?: unknown }).reason === 'string'
          ? { kind: 'invalid', reason: (msg as { reason?: string }).reason! }
          : targetOfParsedScan(payload as { kind: string }),
    },
  };
}

function idOf(record: Record_): number {
  return record.kind === 'scan' ? record.input.scan_id : record.input.id;
}

/** A record that fails on its own is about the record (its data, a trigger refusing it), not the database being away. */
function failsOnItsOwn(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(22|23|P0)/.test(code) && !isConnectionError(err as Error);
}

/** The message's result: what became of its record, in the shape of one record's ApplyResult. */
function resultOf(record: RecordResult): Omit<ApplyResult, 'records'> & { outcome: RecordResult['outcome'] } {
  const processed = record.outcome === 'applied' || record.outcome === 'skipped';
  return {
    outcome: record.outcome,
    processed: processed ? 1 : 0,
    applied: record.outcome === 'applied' ? 1 : 0,
    skipped: record.outcome === 'skipped' ? 1 : 0,
    jobs_updated: record.jobs,
    skips: record.outcome === 'skipped' ? [{ source_id: record.source_id, reason: record.reason ?? '' }] : [],
  };
}

export = function register(RED: NodeAPI): void {
  defineNode<JobMapperConfig>(
    RED,
    {
      type: 'floorflow-job-mapper',
      schema: configSchema as JsonSchema,
      needs: 'database',
      check: (config) =>
        config.filePattern
          ? checkScanPatterns({ ...DEFAULT_SCAN_PATTERNS, file: config.filePattern })
          : undefined,
    },
    ({ node, config, services, clock, pool, flowVersion }) => {
      const filePattern = config.filePattern || undefined;
      let applied = 0;
      let skipped = 0;
      let failed = 0;

      const apply = async (records: Record_[], ctx: ApplyContext): Promise<Map<number, RecordResult>> => {
        const scans = records.flatMap((r) => (r.kind === 'scan' ? [r.input] : []));
        const prints = records.flatMap((r) => (r.kind === 'print' ? [r.input] : []));
        const results = new Map<number, RecordResult>();
        // Scan ids and "print OS" ids are separate sequences: keyed by kind and id.
        if (scans.length > 0)
          for (const r of (await applyScanRecords(pool, scans, ctx)).records) results.set(r.source_id, r);
        const printResults = new Map<number, RecordResult>();
        if (prints.length > 0)
          for (const r of (await applyPrintOsRecords(pool, prints, ctx)).records)
            printResults.set(r.source_id, r);
        return new Map(
          records.map((r, i) => [i, (r.kind === 'scan' ? results : printResults).get(idOf(r))!]),
        );
      };

      /** Records a record that failed on its own in the ledger, so no poller tries it forever. */
      const recordFailure = async (record: Record_, err: Error, ctx: ApplyContext): Promise<void> => {
        const entry =
          record.kind === 'scan'
            ? { source_type: 'scanner', source_id: record.input.scan_id, marker: record.input.scan_id }
            : { source_type: 'print_os', source_id: record.input.id, marker: record.input.marker };
        await recordWithoutEffect(pool, entry, 'failed', err.message, ctx).catch(() => undefined);
      };

      const batches = coalescedBatches<Record_, RecordResult>({
        maxBatch: MAX_BATCH,
        minSpacingMs: Number(config.batchSpacingMs) || 0,
        apply: async (records) => {
          const ctx = { now: clock.now(), flowVersion: flowVersion(), filePattern };
          node.status({ fill: 'blue', shape: 'dot', text: `applying ${records.length}` });
          try {
            const results = await apply(records, ctx);
            return records.map((_, i) => ({ ok: true as const, value: results.get(i)! }));
          } catch (err) {
            if (records.length === 1 || !failsOnItsOwn(err)) {
              if (records.length === 1 && failsOnItsOwn(err))
                await recordFailure(records[0], err as Error, ctx);
              return records.map(() => ({ ok: false as const, error: err as Error }));
            }
            // One record failed the batch: each alone, so the others apply and the failing one is
            // recorded with its reason.
            const outcomes = [];
            for (const record of records) {
              try {
                const results = await apply([record], ctx);
                outcomes.push({ ok: true as const, value: results.get(0)! });
              } catch (alone) {
                if (failsOnItsOwn(alone)) await recordFailure(record, alone as Error, ctx);
                outcomes.push({ ok: false as const, error: alone as Error });
              }
            }
            return outcomes;
          }
        },
        settled: (items: Array<BatchItem<Record_, RecordResult>>) => {
          for (const item of items) {
            if (item.outcome.ok) {
              const result = item.outcome.value;
              if (result.outcome === 'applied') applied += 1;
              if (result.outcome === 'skipped') {
                skipped += 1;
                node.warn(`${item.item.kind} record ${result.source_id} skipped: ${result.reason ?? ''}`);
              }
            } else failed += 1;
          }
          node.status({
            fill: failed > 0 ? 'red' : skipped > 0 ? 'yellow' : 'green',
            shape: 'dot',
            text: `${applied} applied, ${skipped} skipped${failed > 0 ? `, ${failed} failed` : ''}`,
          });
        },
      });

      onInputAsync(node, async (msg: NodeMessageInFlow, send, done) => {
        const record = recordOf(msg, clock.now());
        const outcome = await batches.add(record);
        if (!outcome.ok) throw outcome.error;
        const payload = msg.payload;
        if (record.kind === 'scan' && outcome.value.outcome === 'skipped') {
          // Every scan that did not change a job: one log line, and the floor page told at once.
          const machine = (msg as { machine_id?: unknown }).machine_id;
          node.warn(
            scanNoticeLine(
              'skipped',
              typeof machine === 'string' ? machine : '',
              record.input.code_text,
              outcome.value.reason ?? '',
            ),
          );
          services.events.emit(JOB_STATUS_EVENT, { type: 'scan_skipped', scan_id: record.input.scan_id });
        }
        send(Object.assign(msg, { source_record: payload, payload: resultOf(outcome.value) }));
        done();
      });

      onCloseAsync(node, async () => {
        await batches.idle();
      });
    },
  );
};
