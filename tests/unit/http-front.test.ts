import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import { hashSecret } from '../../core/secrets';
import { registry } from '../../runtime/metrics';
import { addFallbacks, createFrontApp, HttpState } from '../../runtime/http';

/** What Node-RED's admin app does first (editor-api: cors({origin: "*"})), without its package. */
const wildcardCors: express.RequestHandler = (req, res, next) => {
  res.setHeader('Access-Control-Allow-Origin', '*');
  if (req.method !== 'OPTIONS') return next();
  res.setHeader('Access-Control-Allow-Methods', 'GET,PUT,POST,DELETE');
  res.status(204).end();
};

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
    app.post('/api/embossing-jobs/:id/retry', (req, res) => {
      res.json({ success: true, retried: req.params.id });
    });
    // Node-RED's admin app installs cors({origin: "*"}) itself.
    app.use('/editor', wildcardCors, (_req, res) => {
      res.json({ editor: true });
    });
    app.get('/api/boom', () => {
      throw new Error('secret internals');
    });
    addFallbacks(app);
  });

  it('refuses API calls without or with a wrong bearer token in the API error shape', async () => {
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

  it('exempts only a numeric job id: /callback/retry and /callback/cancel need the token', async () => {
    for (const path of [
      '/api/embossing-jobs/callback/retry',
      '/api/embossing-jobs/callback/cancel',
      '/api/embossing-jobs/callback/42/',
      '/api/embossing-jobs/callback/42/x',
      '/api/embossing-jobs/callback/%34%32',
    ]) {
      const res = await request(app).post(path).send({});
      assert.equal(res.status, 401, path);
      assert.deepEqual(res.body, { success: false, error: 'missing bearer token' }, path);
    }
  });

  it('sets security headers on every response: API, errors, pages', async () => {
    const answers = [
      await request(app).post('/api/echo').send({}),
      await request(app).get('/v1/nothing').set('Authorization', `Bearer ${token}`),
      await request(app).get('/healthz'),
      await request(app).get('/editor/settings'),
      await request(app).get('/dashboard/page1'),
    ];
    for (const res of answers) {
      const where = `answer ${answers.indexOf(res)} (${res.status})`;
      assert.equal(res.headers['x-content-type-options'], 'nosniff', where);
      assert.match(res.headers['x-frame-options'], /^(DENY|SAMEORIGIN)$/, where);
      assert.match(res.headers['content-security-policy'], /frame-ancestors/, where);
      assert.equal(res.headers['referrer-policy'], 'same-origin', where);
    }
    assert.match(answers[0].headers['content-security-policy'], /default-src 'none'/);
  });

  it('answers the admin API without a wildcard CORS origin, and to a configured origin only', async () => {
    const plain = await request(app).get('/editor/settings').set('Origin', 'http://evil.example');
    assert.equal(plain.headers['access-control-allow-origin'], undefined);
    const preflight = await request(app)
      .options('/editor/flows')
      .set('Origin', 'http://evil.example')
      .set('Access-Control-Request-Method', 'POST');
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
    assert.equal(preflight.headers['access-control-allow-methods'], undefined);

    const allowing = createFrontApp(state, hashSecret(token), [], {
      adminCorsOrigins: ['https://mes.plant.local'],
    });
    allowing.use('/editor', wildcardCors, (_req, res) => {
      res.json({ editor: true });
    });
    const allowed = await request(allowing).get('/editor/settings').set('Origin', 'https://mes.plant.local');
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://mes.plant.local');
    assert.match(allowed.headers.vary, /Origin/);
    const other = await request(allowing).get('/editor/settings').set('Origin', 'https://other.plant.local');
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  it('labels request metrics with route templates, so random paths add no series', async function () {
    this.timeout(30000);
    const series = async () =>
      (await registry.getSingleMetric('floorflow_http_requests_total')!.get()).values.map(
        (v) => `${v.labels.route} ${v.labels.status}`,
      );
    await request(app).post('/api/embossing-jobs/7/retry').set('Authorization', `Bearer ${token}`).send({});
    const before = new Set(await series());
    const randoms: string[] = [];
    for (let i = 0; i < 100; i++) {
      const random = `r${Math.random().toString(36).slice(2)}`;
      randoms.push(random);
      await request(app).get(`/${random}`);
      await request(app).get(`/api/${random}/${i}`).set('Authorization', `Bearer ${token}`);
      await request(app)
        .post(`/api/embossing-jobs/${i}/retry`)
        .set('Authorization', `Bearer ${token}`)
        .send({});
      await request(app).get(`/editor/${random}`);
    }
    const after = await series();
    const added = after.filter((s) => !before.has(s));
    assert.ok(added.length <= 5, `new series: ${added.join(', ')}`);
    assert.ok(after.includes('/api/embossing-jobs/:id/retry 200'), after.join(', '));
    assert.ok(
      after.every((label) => randoms.every((r) => !label.includes(r))),
      `a raw path became a label: ${after.join(', ')}`,
    );
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
