// The runtime's watch on scans the inbox rejected or left out as sent twice: one log line each,
// the repeat kept for the floor page (store/scan-notices.ts), and the job-status page told at once.
// Scans skipped when applied (unknown job, unparseable code) are logged by the job mapper.
import type { EventEmitter } from 'node:events';
import type { Pool } from 'pg';
import { codeOfRawScan, DOUBLE_SEND_REASON, scanNoticeLine } from '../../core/scan-notice';
import { recordIgnoredScan } from '../../store/scan-notices';
import type { Clock, InboxAccess } from './services';

/** The event-bus channel the job-status floor page re-reads on. */
export const JOB_STATUS_EVENT = 'job-status';

export function watchScanNotices(deps: {
  inbox: Pick<InboxAccess, 'onCommitted'>;
  pool: Pool;
  events: EventEmitter;
  clock: Clock;
  log: (line: string) => void;
}): () => void {
  const { pool, events, clock, log } = deps;
  return deps.inbox.onCommitted((receipts) => {
    let rejected = 0;
    for (const receipt of receipts) {
      if (receipt.kind !== 'scan') continue;
      if (receipt.outcome === 'rejected') {
        rejected += 1;
        const { machine_id, payload, reason } = receipt.rejected;
        log(scanNoticeLine('rejected', machine_id, codeOfRawScan(payload), reason));
      } else if (receipt.outcome === 'duplicate' && receipt.duplicate === 'double_send') {
        const code = receipt.code ?? '';
        log(scanNoticeLine('ignored', receipt.machineId, code, DOUBLE_SEND_REASON));
        recordIgnoredScan(pool, {
          machineId: receipt.machineId,
          code,
          reason: DOUBLE_SEND_REASON,
          receivedAt: clock.now(),
        }).then(
          () => events.emit(JOB_STATUS_EVENT, { type: 'scan_ignored', machine_id: receipt.machineId }),
          (err: Error) =>
            log(`the ignored repeat of scan ${code} was not kept for the floor page: ${err.message}`),
        );
      }
    }
    if (rejected > 0) events.emit(JOB_STATUS_EVENT, { type: 'scan_rejected', count: rejected });
  });
}
