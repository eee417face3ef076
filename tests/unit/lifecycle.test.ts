import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  allowedSteps,
  checkTransition,
  type LifecycleModel,
  outputLabelsOf,
  outputOf,
  validateModel,
} from '../../core/lifecycle';
import { SHIPPED_MODELS, requireShippedModel, shippedModel } from '../../core/lifecycle-models';

const product = requireShippedModel('trackopz-product');

function columnModel(overrides: Partial<LifecycleModel> = {}): Record<string, unknown> {
  return {
    name: 'door',
    entity: 'door',
    states: ['open', 'closed', 'locked'],
    initial: 'closed',
    transitions: [
      { action: 'open', from: ['closed'], to: 'open' },
      { action: 'close', from: ['open'], to: 'closed' },
      { action: 'lock', from: ['closed'], to: 'locked', requires: ['reason'] },
      { action: 'unlock', from: ['locked'], to: 'closed' },
    ],
    store: { kind: 'column', table: 'plant.doors', key: 'id', keyType: 'bigint', column: 'status' },
    ...overrides,
  };
}

/** Valid models: 1–6 states, transitions between them with single or listed targets. */
const arbitraryModel: fc.Arbitrary<LifecycleModel> = fc
  .uniqueArray(fc.stringMatching(/^[A-Z][a-z]{0,5}$/), { minLength: 1, maxLength: 6 })
  .chain((states) =>
    fc
      .array(
        fc.record({
          action: fc.constantFrom('go', 'stop', 'hold', 'retry', 'finish'),
          from: fc.uniqueArray(fc.constantFrom<string | null>(null, ...states), { minLength: 1 }),
          to: fc.oneof(
            fc.constantFrom(...states),
            fc.uniqueArray(fc.constantFrom(...states), { minLength: 1, maxLength: states.length }),
          ),
        }),
        { maxLength: 10 },
      )
      .map((candidates) => {
        // Keep the candidates validateModel accepts: no self-loop with a single target, one
        // transition per (action, from).
        const used = new Set<string>();
        const transitions = candidates.filter((t) => {
          if (!Array.isArray(t.to) && t.from.includes(t.to)) return false;
          const keys = t.from.map((f) => `${t.action}|${String(f)}`);
          if (keys.some((k) => used.has(k))) return false;
          keys.forEach((k) => used.add(k));
          return true;
        });
        return {
          name: 'random',
          entity: 'thing',
          states,
          initial: states[0],
          transitions,
          store: { kind: 'column', table: 'plant.things', key: 'id', keyType: 'bigint', column: 'status' },
        } as LifecycleModel;
      }),
  );

describe('core/lifecycle', () => {
  describe('validateModel', () => {
    it('accepts a well-formed custom model', () => {
      const result = validateModel(columnModel());
      assert.equal(result.ok, true);
    });

    it('names the transition and the unknown state when a transition leads to a state the model lacks', () => {
      const model = columnModel({
        transitions: [{ action: 'open', from: ['closed'], to: 'ajar' }],
      });
      const result = validateModel(model);
      assert.equal(result.ok, false);
      assert.deepEqual(!result.ok && result.errors, [
        'transition 1 ("open"): to state "ajar" is not one of the states',
      ]);
    });

    it('names an unknown from state, an unknown initial state and a state listed twice', () => {
      const result = validateModel(
        columnModel({
          states: ['open', 'closed', 'open'],
          initial: 'shut',
          transitions: [{ action: 'close', from: ['opne'], to: 'closed' }],
        }),
      );
      assert.equal(result.ok, false);
      const errors = !result.ok ? result.errors : [];
      assert.ok(errors.includes('state "open" is listed twice'));
      assert.ok(errors.includes('initial state "shut" is not one of the states'));
      assert.ok(errors.includes('transition 1 ("close"): from state "opne" is not one of the states'));
    });

    it('rejects a transition that leads from a state to itself, and an action defined twice for one state', () => {
      const result = validateModel(
        columnModel({
          transitions: [
            { action: 'close', from: ['closed'], to: 'closed' },
            { action: 'open', from: ['closed'], to: 'open' },
            { action: 'open', from: ['closed', 'locked'], to: 'open' },
          ],
        }),
      );
      assert.equal(result.ok, false);
      const errors = !result.ok ? result.errors : [];
      assert.ok(errors.some((e) => /"close"\): leads from "closed" to itself/.test(e)));
      assert.ok(errors.some((e) => /action "open" is defined twice for from state "closed"/.test(e)));
    });

    it('rejects shapes the schema forbids: a table name that is not schema.table, a missing store', () => {
      const bad = validateModel(
        columnModel({
          store: {
            kind: 'column',
            table: 'doors; DROP TABLE x',
            key: 'id',
            keyType: 'bigint',
            column: 'status',
          },
        }),
      );
      assert.equal(bad.ok, false);
      assert.match(!bad.ok ? bad.errors[0] : '', /store\.table must match pattern/);
      const missing = validateModel({ ...columnModel(), store: undefined });
      assert.match(!missing.ok ? missing.errors[0] : '', /store is required/);
    });

    it('property: rejects every model whose transitions name a state it does not have', () => {
      fc.assert(
        fc.property(
          arbitraryModel,
          fc.stringMatching(/^[a-z]{3,8}$/),
          fc.boolean(),
          (model, unknown, asTarget) => {
            fc.pre(!model.states.includes(unknown));
            const broken: LifecycleModel = {
              ...model,
              transitions: [
                ...model.transitions,
                asTarget
                  ? { action: 'wander', from: [model.states[0]], to: unknown }
                  : { action: 'wander', from: [unknown], to: model.states[0] },
              ],
            };
            const result = validateModel(broken);
            assert.equal(result.ok, false);
            assert.ok(
              !result.ok && result.errors.some((e) => e.includes(`"${unknown}" is not one of the states`)),
            );
          },
        ),
      );
    });

    it('property: accepts the generated valid models', () => {
      fc.assert(
        fc.property(arbitraryModel, (model) => {
          const result = validateModel(model);
          assert.deepEqual(result.ok ? [] : result.errors, []);
        }),
      );
    });
  });

  describe('checkTransition', () => {
    it('allows move_to_past from ON and names OFF as the target', () => {
      const check = checkTransition(product, 'ON', 'move_to_past');
      assert.deepEqual(check.ok && { from: check.from, to: check.to }, { from: 'ON', to: 'OFF' });
    });

    it('refuses move_to_past of a product that is already past, with the reason', () => {
      const check = checkTransition(product, 'OFF', 'move_to_past');
      assert.deepEqual(check, {
        ok: false,
        code: 'FF_TRANSITION_INVALID',
        reason: 'cannot move_to_past a product in state "OFF"; allowed from "ON"',
      });
    });

    it('reports an unknown action as bad input, listing the actions', () => {
      const check = checkTransition(product, 'ON', 'explode');
      assert.deepEqual(check, {
        ok: false,
        code: 'FF_INPUT_INVALID',
        reason: 'unknown action "explode"; use one of move_to_past, reactivate, update_state',
      });
    });

    it('update_state needs a target state among its targets and refuses the current state', () => {
      assert.equal(checkTransition(product, 'ON', 'update_state').ok, false);
      const wrong = checkTransition(product, 'ON', { action: 'update_state', targetState: 'MAYBE' });
      assert.equal(!wrong.ok && wrong.code, 'FF_TRANSITION_INVALID');
      const same = checkTransition(product, 'ON', { action: 'update_state', targetState: 'ON' });
      assert.equal(!same.ok && same.reason, 'product is already ON');
      const first = checkTransition(product, null, { action: 'update_state', targetState: 'ON' });
      assert.deepEqual(first.ok && [first.from, first.to], [null, 'ON']);
    });

    it('a required field must be present and not blank', () => {
      const model = validateModel(columnModel());
      assert.ok(model.ok);
      const missing = checkTransition(model.model, 'closed', { action: 'lock', fields: { reason: '  ' } });
      assert.deepEqual(missing, { ok: false, code: 'FF_INPUT_INVALID', reason: 'lock needs reason' });
      const given = checkTransition(model.model, 'closed', { action: 'lock', fields: { reason: 'night' } });
      assert.equal(given.ok, true);
    });

    it('property: no random sequence of actions reaches a state the model does not allow', () => {
      fc.assert(
        fc.property(
          arbitraryModel,
          fc.array(
            fc.record({
              action: fc.constantFrom('go', 'stop', 'hold', 'retry', 'finish', 'bogus'),
              target: fc.option(fc.stringMatching(/^[A-Z][a-z]{0,5}$/), { nil: undefined }),
            }),
            { maxLength: 40 },
          ),
          (model, requests) => {
            const steps = new Set(allowedSteps(model).map((s) => `${String(s.from)}|${s.action}|${s.to}`));
            let current: string | null = model.initial;
            for (const request of requests) {
              const check = checkTransition(model, current, {
                action: request.action,
                targetState: request.target,
              });
              if (!check.ok) continue;
              assert.ok(model.states.includes(check.to), `reached unknown state ${check.to}`);
              assert.ok(
                steps.has(`${String(current)}|${request.action}|${check.to}`),
                'took a step the model lacks',
              );
              assert.notEqual(check.to, current);
              current = check.to;
            }
          },
        ),
      );
    });
  });

  describe('outputs', () => {
    it('has one output per state, labelled with the state, and a final reject output', () => {
      assert.deepEqual(outputLabelsOf(product), ['ON', 'OFF', 'reject']);
      assert.equal(outputOf(product, 'OFF'), 1);
      assert.equal(outputOf(product, 'nowhere'), 2);
    });
  });

  describe('shipped models', () => {
    it('are picked by name and each validates', () => {
      for (const model of SHIPPED_MODELS) {
        assert.equal(shippedModel(model.name), model);
        assert.equal(validateModel(model).ok, true, model.name);
      }
      assert.equal(shippedModel('no-such-model'), undefined);
    });

    it('cover every status machine of the plant', () => {
      assert.deepEqual(
        SHIPPED_MODELS.map((m) => m.name),
        [
          'trackopz-product',
          'embossing-plate',
          'embossing-job',
          'processing-order',
          'processing-job',
          'engraving-job',
          'operation-status',
          'imposition-operation-status',
        ],
      );
    });
  });
});
