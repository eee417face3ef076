// The actions a floor display offers (embossing retry/cancel/logs and "Send to Embosser",
// dispatch's move to past and the Workpanel's, approve/reject an engraving design, recover a
// failed processing job and read its logs, the QA station's pass, re-engrave and escalate),
// checked before anything runs:
// a page sends {topic: <action>, payload: {...}} and gets back what it may rely on.
import { FloorflowError } from './errors';
import { lineExcerpt } from './excerpt';
import { unstorableInText } from './inbox';

export type DashboardAction =
  | { action: 'emboss'; plateIds: string[]; machineId: string }
  | { action: 'retry_embossing' | 'cancel_embossing' | 'embossing_logs'; jobId: string }
  | { action: 'move_to_past'; productId: string; reason: string; source: 'dispatch' | 'workpanel' }
  | WorkpanelAction
  | { action: 'recover_processing' | 'processing_logs'; jobId: string }
  | { action: 'approve_design'; jobId: string }
  | { action: 'reject_design'; jobId: string; feedback: string | undefined }
  | QaAction;

/** The QA station's decisions (an engraving quality check): defect notes are required on a failure. */
export type QaAction =
  | { action: 'qa_pass'; jobId: string; notes: string | undefined }
  | { action: 'qa_reengrave' | 'qa_escalate'; jobId: string; notes: string };

/** The Workpanel's actions: a product's details, reactivate, record finished products. */
export type WorkpanelAction =
  | { action: 'product_details'; productId: string }
  | { action: 'reactivate_product'; productId: string; reason: string | undefined }
  | {
      action: 'record_finished';
      productId: string;
      machineId: string;
      quantity: number;
      notes: string | undefined;
    };

/** Most finished products one record may report (a typo guard, not a plant limit). */
export const MAX_FINISHED_QUANTITY = 100000;

const ID = /^[0-9]{1,18}$/;

function id(value: unknown, name: string): string {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !ID.test(text))
    throw new FloorflowError('FF_INPUT_INVALID', `${name} must be an id`);
  return text;
}

function text(value: unknown, name: string, required: boolean): string | undefined {
  if (value === undefined || value === null || value === '') {
    if (required) throw new FloorflowError('FF_INPUT_INVALID', `${name} is required`);
    return undefined;
  }
  if (typeof value !== 'string' || value.length > 500)
    throw new FloorflowError('FF_INPUT_INVALID', `${name} must be text of at most 500 characters`);
  const problem = unstorableInText(value);
  if (problem)
    throw new FloorflowError(
      'FF_INPUT_INVALID',
      `${name} holds ${problem}, which cannot be stored: remove it`,
    );
  return value.trim();
}

/** Reads an action message from a page; throws FF_INPUT_INVALID saying what is wrong. */
export function parseDashboardAction(topic: unknown, payload: unknown): DashboardAction {
  const p = (payload && typeof payload === 'object' ? payload : {}) as Record<string, unknown>;
  switch (topic) {
    case 'emboss': {
      if (!Array.isArray(p.plate_ids) || p.plate_ids.length === 0)
        throw new FloorflowError('FF_INPUT_INVALID', 'select at least one plate');
      const machineId = text(p.machine_id, 'machine', true)!;
      return { action: 'emboss', plateIds: p.plate_ids.map((v) => id(v, 'plate')), machineId };
    }
    case 'retry_embossing':
    case 'cancel_embossing':
    case 'embossing_logs':
      return { action: topic, jobId: id(p.job_id, 'job') };
    case 'move_to_past':
      return {
        action: 'move_to_past',
        productId: id(p.product_id, 'product'),
        reason: text(p.reason, 'reason', true)!,
        // The page it was pressed on, for the audit row's entry point.
        source: p.from === 'workpanel' ? 'workpanel' : 'dispatch',
      };
    case 'product_details':
      return { action: topic, productId: id(p.product_id, 'product') };
    case 'reactivate_product':
      return {
        action: topic,
        productId: id(p.product_id, 'product'),
        reason: text(p.reason, 'reason', false),
      };
    case 'record_finished': {
      const quantity =
        typeof p.quantity === 'string' && p.quantity.trim() !== '' ? Number(p.quantity) : p.quantity;
      if (
        typeof quantity !== 'number' ||
        !Number.isInteger(quantity) ||
        quantity < 1 ||
        quantity > MAX_FINISHED_QUANTITY
      )
        throw new FloorflowError(
          'FF_INPUT_INVALID',
          `quantity must be a whole number from 1 to ${MAX_FINISHED_QUANTITY}`,
        );
      return {
        action: topic,
        productId: id(p.product_id, 'product'),
        machineId: text(p.machine_id, 'machine', true)!,
        quantity,
        notes: text(p.notes, 'notes', false),
      };
    }
    case 'recover_processing':
    case 'processing_logs':
      return { action: topic, jobId: id(p.job_id, 'job') };
    case 'approve_design':
      return { action: 'approve_design', jobId: id(p.job_id, 'job') };
    case 'reject_design':
      return {
        action: 'reject_design',
        jobId: id(p.job_id, 'job'),
        feedback: text(p.feedback, 'feedback', false),
      };
    case 'qa_pass':
      return { action: topic, jobId: id(p.job_id, 'job'), notes: text(p.notes, 'notes', false) };
    case 'qa_reengrave':
    case 'qa_escalate':
      return { action: topic, jobId: id(p.job_id, 'job'), notes: text(p.notes, 'defect notes', true)! };
    default:
      throw new FloorflowError(
        'FF_INPUT_INVALID',
        `unknown dashboard action "${lineExcerpt(String(topic), 40)}"`,
      );
  }
}
