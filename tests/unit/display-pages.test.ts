import assert from 'node:assert/strict';
import { dashboardReloadTarget } from '../../core/display-pages';

describe('where a display lands after the dashboard reloads itself', () => {
  const host = '127.0.0.1:1880';

  it('goes back to the page it left, keeping the reload parameters', () => {
    assert.equal(
      dashboardReloadTarget(`http://${host}/dashboard/dispatch`, host, 'reloadTime=17.5'),
      '/dashboard/dispatch?reloadTime=17.5',
    );
    assert.equal(
      dashboardReloadTarget(`https://${host}/dashboard/job-status/?x=1`, host, 'reloadTime=1&edit-key=k'),
      '/dashboard/job-status?reloadTime=1&edit-key=k',
    );
  });

  it('leaves everything else as it is', () => {
    // Not the dashboard's reload.
    assert.equal(dashboardReloadTarget(`http://${host}/dashboard/dispatch`, host, ''), undefined);
    // Another host, another scheme, no page, a path that is not a dashboard page.
    assert.equal(
      dashboardReloadTarget('http://elsewhere:1880/dashboard/dispatch', host, 'reloadTime=1'),
      undefined,
    );
    assert.equal(dashboardReloadTarget(`javascript://${host}/dashboard/x`, host, 'reloadTime=1'), undefined);
    assert.equal(dashboardReloadTarget(`http://${host}/dashboard/`, host, 'reloadTime=1'), undefined);
    assert.equal(dashboardReloadTarget(`http://${host}/editor/`, host, 'reloadTime=1'), undefined);
    assert.equal(
      dashboardReloadTarget(`http://${host}/dashboard/a/../../x`, host, 'reloadTime=1'),
      undefined,
    );
    assert.equal(
      dashboardReloadTarget(`http://${host}/dashboard/%2F%2Fevil`, host, 'reloadTime=1'),
      undefined,
    );
    assert.equal(dashboardReloadTarget('not a url', host, 'reloadTime=1'), undefined);
    assert.equal(dashboardReloadTarget(undefined, host, 'reloadTime=1'), undefined);
  });
});
