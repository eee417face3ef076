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
