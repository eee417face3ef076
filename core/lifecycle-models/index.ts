// The lifecycle models that ship with floorflow, one JSON file per status machine of the plant, each
// with the states of its table's CHECK constraint. Picked by name (or alias) in the
// lifecycle-switch node and by the other domains' store code.
import { type LifecycleModel, validateModel } from '../lifecycle';
import embossingJob from './embossing-job.json';
import embossingPlate from './embossing-plate.json';
import engravingJob from './engraving-job.json';
import impositionOperationStatus from './imposition-operation-status.json';
import operationStatus from './operation-status.json';
import processingJob from './processing-job.json';
import processingOrder from './processing-order.json';
import trackopzProduct from './trackopz-product.json';

function checked(candidate: unknown): LifecycleModel {
  const result = validateModel(candidate);
  // A shipped model that does not validate is a bug in this package: fail at load, loudly.
  if (!result.ok) throw new Error(`shipped lifecycle model is invalid: ${result.errors.join('; ')}`);
  return result.model;
}

export const SHIPPED_MODELS: readonly LifecycleModel[] = Object.freeze(
  [
    trackopzProduct,
    embossingPlate,
    embossingJob,
    processingOrder,
    processingJob,
    engravingJob,
    operationStatus,
    impositionOperationStatus,
  ].map(checked),
);

/** The shipped model with this name or alias, or undefined. */
export function shippedModel(name: string): LifecycleModel | undefined {
  return SHIPPED_MODELS.find((m) => m.name === name || (m.aliases ?? []).includes(name));
}

export function shippedModelNames(): string[] {
  return SHIPPED_MODELS.map((m) => m.name);
}

/** The shipped model with this name; throws when there is none (for code that names a shipped model). */
export function requireShippedModel(name: string): LifecycleModel {
  const model = shippedModel(name);
  if (!model)
    throw new Error(`no shipped lifecycle model "${name}"; known: ${shippedModelNames().join(', ')}`);
  return model;
}

/** The name the lifecycle-switch node uses for "the model in customModel". */
export const CUSTOM_MODEL = 'custom';

/**
 * The model a lifecycle-switch configuration picks: a shipped one by name, or the custom JSON
 * text validated against the model schema. The error is one line for the node's log.
 */
export function pickModel(
  name: string,
  customModel: string,
): { ok: true; model: LifecycleModel } | { ok: false; error: string } {
  if (name !== CUSTOM_MODEL) {
    const model = shippedModel(name);
    if (model) return { ok: true, model };
    return {
      ok: false,
      error: `no lifecycle model "${name}"; pick one of ${shippedModelNames().join(', ')} or custom`,
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(customModel);
  } catch (err) {
    return { ok: false, error: `custom model is not valid JSON: ${(err as Error).message}` };
  }
  const result = validateModel(parsed);
  return result.ok ? result : { ok: false, error: `custom model: ${result.errors.join('; ')}` };
}
