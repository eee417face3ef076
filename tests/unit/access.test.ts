import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  type Identity,
  actionRefusal,
  actorOf,
  apiRefusal,
  cookieValue,
  isSameOrigin,
  mayEdit,
  mayOpenPage,
  safeNextPath,
  whoFieldIn,
} from '../../core/access';
import { limitUiConfig } from '../../core/display-pages';
import { LoginThrottle } from '../../core/login-throttle';

const engineer: Identity = { kind: 'user', name: 'erik', role: 'engineer', session: 'a' };
const operator: Identity = { kind: 'user', name: 'olga', role: 'operator', session: 'b' };
const viewer: Identity = { kind: 'user', name: 'vera', role: 'viewer', session: 'c' };
const display: Identity = {
  kind: 'display',
  name: 'line-2',
  role: 'viewer',
  pages: ['dispatch'],
  session: 'd',
};
const token: Identity = { kind: 'token', name: 'api', role: 'engineer' };

describe('access rules', () => {
  it('names people by user name, displays and tokens with a prefix a user name cannot have', () => {
    assert.deepEqual([engineer, display, token].map(actorOf), ['erik', 'display:line-2', 'token:api']);
  });

  it('lets viewers and displays only read the API, operators act except on the admin routes, engineers and tokens do all', () => {
    assert.equal(apiRefusal(viewer, 'GET', '/api/plates'), undefined);
    assert.match(apiRefusal(viewer, 'POST', '/api/embossing-jobs') ?? '', /may only read/);
    assert.match(apiRefusal(display, 'POST', '/api/products/lifecycle') ?? '', /display may only read/);
    assert.equal(apiRefusal(operator, 'POST', '/api/embossing-jobs'), undefined);
    assert.match(apiRefusal(operator, 'POST', '/api/admin/orders/1/confirm') ?? '', /engineer/);
    assert.match(
      apiRefusal(operator, 'POST', '/API/Admin/x') ?? '',
      /engineer/,
      'routes match case-insensitively',
    );
    assert.equal(apiRefusal(engineer, 'POST', '/api/admin/orders/1/confirm'), undefined);
    assert.equal(apiRefusal(token, 'DELETE', '/api/anything'), undefined);
  });

  it('refuses dashboard actions to viewers, displays and unknown connections, but lets them read logs', () => {
    assert.match(actionRefusal(undefined, 'emboss') ?? '', /log in/);
    assert.match(actionRefusal(viewer, 'move_to_past') ?? '', /vera is a viewer/);
    assert.match(actionRefusal(display, 'approve_design') ?? '', /display only shows/);
    assert.equal(actionRefusal(viewer, 'embossing_logs'), undefined);
    assert.equal(actionRefusal(operator, 'emboss'), undefined);
  });

  it('opens the editor only to engineers who logged in as people, and limits displays to their pages', () => {
    assert.deepEqual([engineer, operator, token, undefined].map(mayEdit), [true, false, false, false]);
    assert.equal(mayOpenPage(display, 'dispatch'), true);
    assert.equal(mayOpenPage(display, 'embossing'), false);
    assert.equal(mayOpenPage({ ...display, pages: [] }, 'embossing'), true);
    assert.equal(mayOpenPage(viewer, 'embossing'), true);
  });

  it('finds a who-field in a body and nothing in other values', () => {
    assert.equal(whoFieldIn({ productId: 1, operatorId: 'x' }), 'operatorId');
    assert.equal(whoFieldIn({ plate_ids: [1] }), undefined);
    assert.equal(whoFieldIn(['actor']), undefined);
    assert.equal(whoFieldIn(null), undefined);
  });

  it('sends a login only to a path on this server', () => {
    assert.equal(safeNextPath('/editor/'), '/editor/');
    for (const bad of ['//evil.example/x', 'https://evil.example', '/\\evil', '/a\r\nSet-Cookie: x', 42]) {
      assert.equal(safeNextPath(bad), '/dashboard', String(bad));
    }
    fc.assert(
      fc.property(fc.string(), (s) => {
        const next = safeNextPath(s);
        return next.startsWith('/') && !next.startsWith('//') && new URL(next, 'http://h').host === 'h';
      }),
    );
  });

  it('reads one cookie among several and refuses requests from other sites', () => {
    assert.equal(cookieValue('a=1; floorflow_session=abc%3D; b=2', 'floorflow_session'), 'abc=');
    assert.equal(cookieValue('x_floorflow_session=1', 'floorflow_session'), undefined);
    assert.equal(isSameOrigin({ origin: 'http://floor:1880', host: 'floor:1880' }), true);
    assert.equal(isSameOrigin({ origin: 'http://floor:1881', host: 'floor:1880' }), false, 'another port');
    assert.equal(isSameOrigin({ origin: 'null', host: 'floor:1880' }), false);
    assert.equal(isSameOrigin({ origin: 'null', host: 'floor:1880', secFetchSite: 'cross-site' }), false);
    assert.equal(
      isSameOrigin({ origin: 'null', host: 'floor:1880', secFetchSite: 'same-origin' }),
      true,
      'a form on its own page under a strict referrer policy',
    );
    assert.equal(isSameOrigin({ host: 'floor:1880', secFetchSite: 'cross-site' }), false);
    assert.equal(isSameOrigin({ host: 'floor:1880', secFetchSite: 'same-origin' }), true);
    assert.equal(isSameOrigin({ host: 'floor:1880' }), true, 'not a browser: no cookie rides along unasked');
  });
});

describe('login throttle', () => {
  const limits = {
    windowMs: 60000,
    perAddress: 6,
    perAddressAndUser: 3,
    delayStepMs: 100,
    maxDelayMs: 250,
    maxEntries: 100,
  };

  it("refuses a stranger's address after its failures, never the same user from another address", () => {
    const t = new LoginThrottle(limits);
    for (let i = 0; i < 3; i++) {
      assert.equal(t.check('10.0.0.9', 'admin', 1000 + i).allowed, true);
      t.failed('10.0.0.9', 'admin', 1000 + i);
    }
    const refused = t.check('10.0.0.9', 'admin', 2000);
    assert.equal(refused.allowed, false);
    assert.equal(t.check('10.0.0.5', 'admin', 2000).allowed, true, 'the engineer at another address');
    assert.equal(t.check('10.0.0.9', 'olga', 2000).allowed, true, 'another name from that address, for now');
    for (let i = 0; i < 3; i++) t.failed('10.0.0.9', `name-${i}`, 2000 + i);
    const address = t.check('10.0.0.9', 'olga', 3000);
    assert.equal(address.allowed, false);
    assert.match(!address.allowed ? address.reason : '', /from this address/);
  });

  it('does not extend a refusal with refused tries: after the window the address may try again', () => {
    const t = new LoginThrottle(limits);
    for (let i = 0; i < 3; i++) t.failed('a', 'admin', i);
    for (let i = 0; i < 50; i++) assert.equal(t.check('a', 'admin', 10 + i * 100).allowed, false);
    const late = t.check('a', 'admin', 1000);
    assert.ok(!late.allowed && late.retryAfterMs <= 60000);
    assert.equal(t.check('a', 'admin', 60003).allowed, true);
  });

  it('slows each further failure from an address down, up to the cap, and forgets a pair after a right password', () => {
    const t = new LoginThrottle(limits);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => t.failed('a', `u${i}`, i)),
      [0, 100, 200, 250],
    );
    t.failed('b', 'admin', 0);
    t.failed('b', 'admin', 1);
    t.succeeded('b', 'admin');
    t.failed('b', 'admin', 2);
    assert.equal(t.check('b', 'admin', 3).allowed, true);
  });

  it('remembers a bounded number of addresses', () => {
    const t = new LoginThrottle({ ...limits, maxEntries: 10 });
    for (let i = 0; i < 1000; i++) t.failed(`10.0.${i >> 8}.${i & 255}`, 'admin', i);
    assert.equal(
      t.check('10.0.3.231', 'admin', 1001).allowed,
      true,
      'an old stranger was forgotten, not the map grown',
    );
  });
});

describe('display pages', () => {
  it("keeps only the display's pages, their groups and widgets, and site-wide widgets", () => {
    const config = {
      meta: { x: 1 },
      pages: { p1: { path: '/dispatch' }, p2: { path: '/embossing' } },
      groups: { g1: { page: 'p1' }, g2: { page: 'p2' } },
      widgets: {
        w1: { props: { group: 'g1' } },
        w2: { props: { group: 'g2' } },
        w3: { props: { page: 'p2' } },
        w4: { props: {} },
      },
    };
    const limited = limitUiConfig(config, ['dispatch']);
    assert.deepEqual(limited.config, {
      meta: { x: 1 },
      pages: { p1: { path: '/dispatch' } },
      groups: { g1: { page: 'p1' } },
      widgets: { w1: { props: { group: 'g1' } }, w4: { props: {} } },
    });
    assert.deepEqual([...limited.widgets], ['w1', 'w4']);
  });
});
