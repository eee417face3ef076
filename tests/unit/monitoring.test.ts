import assert from 'node:assert/strict';
import { ResponseWindow, percentile } from '../../core/monitoring';

describe('core/monitoring: response times over a recent window', () => {
  it('percentile takes the nearest rank: p50 of 1..10 is 5, p95 is 10, one value is every percentile', () => {
    const values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    assert.equal(percentile(values, 50), 5);
    assert.equal(percentile(values, 95), 10);
    assert.equal(percentile([7], 50), 7);
    assert.equal(percentile([7], 95), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it('summarises each route in the window, counts 5xx answers as errors and forgets what is older', () => {
    const window = new ResponseWindow({ windowMs: 1000, maxSamplesPerRoute: 100, maxRoutes: 10 });
    for (let i = 1; i <= 20; i++) window.record('GET /api/a', i, i === 20 ? 500 : 200, i);
    window.record('POST /api/b', 3, 404, 5);
    assert.deepEqual(window.summary(100), [
      { route: 'GET /api/a', count: 20, errors: 1, p50Ms: 10, p95Ms: 19, maxMs: 20 },
      { route: 'POST /api/b', count: 1, errors: 0, p50Ms: 3, p95Ms: 3, maxMs: 3 },
    ]);
    // At 1010 the window starts after 10: samples 11..20 remain, and route b is gone.
    assert.deepEqual(window.summary(1010), [
      { route: 'GET /api/a', count: 10, errors: 1, p50Ms: 15, p95Ms: 20, maxMs: 20 },
    ]);
    assert.deepEqual(window.summary(5000), []);
  });

  it('keeps at most maxSamplesPerRoute samples per route and maxRoutes routes', () => {
    const window = new ResponseWindow({ windowMs: 1e9, maxSamplesPerRoute: 3, maxRoutes: 2 });
    for (let i = 1; i <= 10; i++) window.record('GET /a', i, 200, i);
    window.record('GET /b', 1, 200, 1);
    window.record('GET /c', 1, 200, 1);
    const summary = window.summary(20);
    assert.deepEqual(
      summary.map((r) => [r.route, r.count, r.maxMs]),
      [
        ['GET /a', 3, 10],
        ['GET /b', 1, 1],
      ],
    );
  });
});
