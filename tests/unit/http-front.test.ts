import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import { hashSecret } from '../../core/secrets';
import { addFallbacks, createFrontApp, HttpState } from '../../runtime/http';

describe('HTTP front', () => {
  const token = 'a-long-enough-api-token';
  let state: HttpState;
  let app: express.Express;

  beforeEach(() => {
    state = { draining: false, inFlight: 0 };
    app = createFrontApp(state, hashSecret(token), [{ name: 'database', check: async () => undefined }]);
    app.post('/api/echo', express.json(), (req, res) => {
      res.json({ success: true, body: req.body });
    });
    app.post('/api/embossing-jobs/callback/:id', (_req, res) => {
      res.json({ success: true });
    });
    app.get('/api/boom', () => {
      throw new Error('secret internals');
    });
    addFallbacks(app);
  });

  it('refuses API calls without or with a wrong bearer token in the contract shape', async () => {
    const none = await request(app).post('/api/echo').send({});
    assert.equal(none.status, 401);
    assert.deepEqual(none.body, { success: false, error: 'missing bearer token' });
    const wrong = await request(app).post('/api/echo').set('Authorization', 'Bearer nope').send({});
    assert.equal(wrong.status, 401);
    const right = await request(app).post('/api/echo').set('Authorization', `Bearer ${token}`).send({ a: 1 });
    assert.equal(right.status, 200);
  });

  it('lets the machine callback through without the token (it is verified by signature)', async () => {
    const res = await request(app).post('/api/embossing-jobs/callback/42').send({});
    assert.equal(res.status, 200);
  });

  it('answers malformed JSON with 400 and no stack trace', async () => {
    const res = await request(app)
      .post('/api/echo')
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'application/json')
      .send('{"a":');
    assert.equal(res.status, 400);
    assert.deepEqual(res.body, { success: false, error: 'body is not valid JSON' });
  });

  it('answers an internal error with 500 "internal error", never the message or stack', async () => {
    const res = await request(app).get('/api/boom').set('Authorization', `Bearer ${token}`);
    assert.equal(res.status, 500);
    assert.deepEqual(res.body, { success: false, error: 'internal error' });
  });

  it('answers an unknown API route with a JSON 404', async () => {
    const res = await request(app).get('/v1/nothing').set('Authorization', `Bearer ${token}`);
    assert.equal(res.status, 404);
    assert.equal(res.body.success, false);
  });

  it('refuses new requests with 503 while draining, and says so on /healthz', async () => {
    state.draining = true;
    const res = await request(app).post('/api/echo').set('Authorization', `Bearer ${token}`).send({});
    assert.equal(res.status, 503);
    assert.deepEqual(res.body, { success: false, error: 'floorflow is stopping; retry shortly' });
    const health = await request(app).get('/healthz');
    assert.equal(health.status, 503);
    assert.equal(health.body.status, 'stopping');
  });

  it('answers /api and /v1 with 503 and Retry-After while the flows start, never 404, and /healthz says starting', async () => {
    state.starting = true;
    for (const url of ['/api/echo', '/api', '/v1/nothing']) {
      const res = await request(app).get(url).set('Authorization', `Bearer ${token}`);
      assert.equal(res.status, 503, url);
      assert.equal(res.headers['retry-after'], '1');
      assert.deepEqual(res.body, { success: false, error: 'floorflow is starting; retry shortly' });
    }
    const health = await request(app).get('/healthz');
    assert.equal(health.status, 503);
    assert.deepEqual(health.body, { status: 'starting', database: 'up', flows: 'starting' });
    // Paths that only begin like the API are not held back.
    assert.equal((await request(app).get('/apiary')).status, 404);
    state.starting = false;
    const ready = await request(app).get('/healthz');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ok', database: 'up', flows: 'up' });
  });

  it('reports a failing health check as 503 with the reason', async () => {
    const failing = createFrontApp(state, hashSecret(token), [
      {
        name: 'database',
        check: async () => {
          throw new Error('connection refused');
        },
      },
    ]);
    const res = await request(failing).get('/healthz');
    assert.equal(res.status, 503);
    assert.deepEqual(res.body, { status: 'degraded', database: 'down: connection refused' });
  });
});
