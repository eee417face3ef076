// The product routes' HTTP shapes: what the product routes read from a request and the bodies they
// answer with. Pure; the products node calls these and store/products for the data.
import { whoFieldIn, whoFieldMessage } from './access';
import type { LifecycleEvent, SwitchRejection } from './lifecycle';

export const PRODUCT_ACTIONS = ['move_to_past', 'reactivate', 'update_state'] as const;
export type ProductAction = (typeof PRODUCT_ACTIONS)[number];

export interface HttpAnswer {
  statusCode: number;
  body: Record<string, unknown>;
}

export function failure(statusCode: number, error: string): HttpAnswer {
  return { statusCode, body: { success: false, error } };
}

function text(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  return undefined;
}

/** productId from a query string or body: required, a whole number. */
export function readProductId(
  source: Record<string, unknown> | undefined,
): { productId: string } | HttpAnswer {
  const raw = source?.productId;
  const productId = text(raw);
  if (productId === undefined) return failure(400, 'productId is required');
  if (!/^[0-9]{1,18}$/.test(productId)) return failure(400, 'productId must be a whole number');
  return { productId };
}

/** A product transition request as the lifecycle-switch node reads it, plus the job the client named. */
export interface ProductTransitionRequest {
  entityId: string;
  action: string;
  reason?: string;
  actor?: string;
  targetState?: string;
  /** The request's jobId: when given, it must be one of the product's jobs. */
  jobId?: string;
}

/**
 * Reads a POST body: { productId, action?, reason?, state? | targetState?, jobId? }. Who asks is
 * not the body's to say (the node takes it from the login), so a body naming someone is refused.
 * `fixedAction` is the route's action (the dispatch and legacy move-to-past routes); without it
 * the body must name one of move_to_past, reactivate, update_state.
 */
export function readTransitionBody(
  body: unknown,
  fixedAction: string | undefined,
): { request: ProductTransitionRequest } | HttpAnswer {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return failure(400, 'body must be a JSON object with productId');
  }
  const fields = body as Record<string, unknown>;
  const who = whoFieldIn(fields);
  if (who) return failure(400, whoFieldMessage(who, undefined));
  const id = readProductId(fields);
  if ('statusCode' in id) return id;
  let action = fixedAction;
  if (!action) {
    action = text(fields.action);
    if (action === undefined) return failure(400, `action is required: one of ${PRODUCT_ACTIONS.join(', ')}`);
    if (!(PRODUCT_ACTIONS as readonly string[]).includes(action)) {
      return failure(400, `action must be one of ${PRODUCT_ACTIONS.join(', ')}`);
    }
  }
  const request: ProductTransitionRequest = { entityId: id.productId, action };
  const reason = text(fields.reason);
  const targetState = text(fields.state) ?? text(fields.targetState);
  const jobId = text(fields.jobId);
  if (reason !== undefined) request.reason = reason;
  if (targetState !== undefined) request.targetState = targetState.toUpperCase();
  if (jobId !== undefined) {
    if (!/^[0-9]{1,18}$/.test(jobId)) return failure(400, 'jobId must be a whole number');
    request.jobId = jobId;
  }
  return { request };
}

const DONE: Record<string, string> = {
  move_to_past: 'moved to past',
  reactivate: 'reactivated',
  update_state: 'updated',
};

/** The 200 answer for an applied product transition. */
export function transitionAnswer(transition: LifecycleEvent & { childId?: string }): HttpAnswer {
  return {
    statusCode: 200,
    body: {
      success: true,
      message: `product ${transition.entityId} ${DONE[transition.action] ?? transition.action}: ${transition.from ?? 'none'} -> ${transition.to}`,
      data: {
        productId: transition.entityId,
        jobId: transition.childId ?? null,
        action: transition.action,
        previousState: transition.from,
        currentState: transition.to,
        isDispatchable: transition.to === 'ON',
        reason: transition.reason,
        actor: transition.actor,
        source: transition.source,
        timestamp: transition.at,
        eventId: transition.eventId,
      },
    },
  };
}

/** The API's error answer for a rejected transition (400, 404 or 409). */
export function rejectionAnswer(error: SwitchRejection): HttpAnswer {
  return failure(error.statusCode, error.reason);
}
