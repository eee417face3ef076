// What a floorflow-dashboard-feed node sends to its page: the page's board read from the
// database, with the open alerts every page shows. A feed re-reads on page open, on a socket
// (re)connect, on domain events and on its refresh timer.
import type { Pool } from 'pg';
import {
  DashboardPage,
  OpenAlertView,
  dispatchBoard,
  embossingBoard,
  jobStatusBoard,
  machinesBoard,
  openAlertViews,
  processingBoard,
} from '../../store/dashboards';
import { workpanelBoard } from '../../store/workpanel';
import { qaBoard } from '../../store/qa-station';

/** Event-bus channels whose events change what a page shows. */
export const BOARD_EVENT_CHANNELS = [
  'lifecycle',
  'embossing',
  'processing',
  'engraving',
  'job-status',
  'machine-status',
  'alert',
  'dashboard',
] as const;

export interface BoardMessagePayload {
  page: DashboardPage;
  /** When the board was read (the runtime's clock), ISO. */
  read_at: string;
  board: unknown;
  alerts: OpenAlertView[];
}

export async function readBoard(page: DashboardPage, pool: Pool, now: Date): Promise<BoardMessagePayload> {
  const board = await (async (): Promise<unknown> => {
    switch (page) {
      case 'machines':
        return machinesBoard(pool);
      case 'embossing':
        return embossingBoard(pool);
      case 'job-status':
        return jobStatusBoard(pool);
      case 'dispatch':
        return dispatchBoard(pool);
      case 'processing':
        return processingBoard(pool, now);
      case 'workpanel':
        return workpanelBoard(pool);
      case 'qa':
        return qaBoard(pool, now);
    }
  })();
  return { page, read_at: now.toISOString(), board, alerts: await openAlertViews(pool) };
}
