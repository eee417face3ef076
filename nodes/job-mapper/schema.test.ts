import assert from 'node:assert/strict';
import { validate } from '../../core/schema';
import schema from './schema.json';

// The editor keeps a typed number as text, and a flow saved before the batch spacing existed has
// none: both must load (the editor's own check of the field accepts them too, so a deploy of the
// shipped flows is not held up by a "not properly configured" dialog).
describe('job mapper configuration (schema.json)', () => {
  it('takes a batch spacing as a number, as text, empty or left out', () => {
    for (const batchSpacingMs of [0, 10, 1000, '', '5', ' 20 ', '1000', undefined]) {
      const config = { name: '', filePattern: '', schemaVersion: 1, batchSpacingMs };
      if (batchSpacingMs === undefined) delete config.batchSpacingMs;
      assert.equal(validate(schema, config).ok, true, `batchSpacingMs ${JSON.stringify(batchSpacingMs)}`);
    }
  });

  it('refuses a batch spacing that is negative, above a second or not a number', () => {
    for (const batchSpacingMs of [-1, 1001, '1001', 'soon', '2.5', 2.5]) {
      const result = validate(schema, { schemaVersion: 1, batchSpacingMs });
      assert.equal(result.ok, false, `batchSpacingMs ${JSON.stringify(batchSpacingMs)}`);
    }
  });
});
