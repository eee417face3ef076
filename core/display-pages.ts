// What a floor display limited to some pages receives of Dashboard 2.0's configuration: only
// those pages, their groups and the widgets in them (plus site-wide widgets such as alerts),
// so its menu offers nothing else and no other page's data reaches it.

interface UiConfig {
  pages?: Record<string, { path?: string }>;
  groups?: Record<string, { page?: string }>;
  widgets?: Record<string, { props?: { group?: string; page?: string } }>;
  [key: string]: unknown;
}

/** The page path as floorflow names it: 'dispatch' for '/dispatch'. */
export function pageName(path: string | undefined): string {
  return (path ?? '').replace(/^\/+|\/+$/g, '');
}

/** Dashboard 2.0's ui-config limited to `pages` (page names); the ids of the widgets kept. */
export function limitUiConfig(config: unknown, pages: string[]): { config: unknown; widgets: Set<string> } {
  if (!config || typeof config !== 'object') return { config, widgets: new Set() };
  const full = config as UiConfig;
  const keptPages = Object.fromEntries(
    Object.entries(full.pages ?? {}).filter(([, p]) => pages.includes(pageName(p.path))),
  );
  const keptGroups = Object.fromEntries(
    Object.entries(full.groups ?? {}).filter(([, g]) => g.page !== undefined && g.page in keptPages),
  );
  const keptWidgets = Object.fromEntries(
    Object.entries(full.widgets ?? {}).filter(([, w]) => {
      const { group, page } = w.props ?? {};
      if (group) return group in keptGroups;
      if (page) return page in keptPages;
      return true;
    }),
  );
  return {
    config: { ...full, pages: keptPages, groups: keptGroups, widgets: keptWidgets },
    widgets: new Set(Object.keys(keptWidgets)),
  };
}

/**
 * Where the dashboard's own reload should land. Dashboard 2.0 reloads a page it cannot reach (its
 * setup request failed while the runtime restarted) by sending the browser to the dashboard's root
 * with a `reloadTime` parameter, which opens the first page: a floor display showing Dispatch came
 * back showing Machines. The page it left is in the Referer (same origin, Referrer-Policy
 * same-origin), so the root sends it back there. Only a reload of the root from a page of this
 * dashboard on this host is sent back; anything else is left as it is (undefined).
 */
export function dashboardReloadTarget(
  referer: string | undefined,
  host: string | undefined,
  query: string,
): string | undefined {
  if (!referer || !host || !/(^|&)reloadTime=/.test(query)) return undefined;
  let from: URL;
  try {
    from = new URL(referer);
  } catch {
    return undefined;
  }
  if (from.host !== host || (from.protocol !== 'http:' && from.protocol !== 'https:')) return undefined;
  const page = /^\/dashboard\/([A-Za-z0-9_-]+)\/?$/.exec(from.pathname)?.[1];
  return page ? `/dashboard/${page}?${query}` : undefined;
}
