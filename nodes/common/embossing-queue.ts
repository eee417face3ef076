// The embossing queue for the floorflow-queue-worker node: queued embossing jobs that are due,
// claimed with FOR UPDATE SKIP LOCKED and held while one worker's retry loop owns them.
import { claimJobs, releaseOrphanedClaims } from '../../store/embossing';
import type { QueueSource } from './queues';

export const embossingQueue: QueueSource = {
  name: 'embossing',
  description: 'embossing jobs waiting for their embosser (embossing.embossing_jobs)',
  claim: ({ pool, max, now }) => claimJobs(pool, { max, now }),
  recoverOrphans: ({ pool, now }) => releaseOrphanedClaims(pool, now),
};
