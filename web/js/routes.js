// routes.js: every screen of the UI, one entry each. pattern: a hash path with :name segments;
// screen: the module (loaded on first use) exporting render(root, params, query, route) and
// maybe leave(); title: the page's title; nav: the label in the navigation bar (entries without
// one are reached through links); role: the least role the navigation bar shows it to (the API
// refuses anyway); open: shown without signing in. Screens not built yet use placeholder.js.
const placeholder = () => import('./screens/placeholder.js');

export const routes = [
  {pattern: '/login', screen: () => import('./screens/login.js'), title: 'Sign in', open: true},
  {pattern: '/library', screen: () => import('./screens/library.js'), title: 'Threat library',
   nav: 'Threat library'},
  {pattern: '/indicators/:id', screen: () => import('./screens/object.js'), title: 'Indicator'},
  {pattern: '/objects/:collection/:id', screen: () => import('./screens/object.js'),
   title: 'Object'},
  {pattern: '/collections', screen: () => import('./screens/collections.js'), title: 'Data collections', nav: 'Collections'},
  {pattern: '/collections/:id', screen: () => import('./screens/collections.js'), title: 'Data collection'},
  {pattern: '/workflows', screen: () => import('./screens/workflows.js'), title: 'Workflows', nav: 'Workflows'},
  {pattern: '/workflows/:id', screen: () => import('./screens/workflows.js'), title: 'Workflow'},
  {pattern: '/runs', screen: () => import('./screens/runs.js'), title: 'Action runs', nav: 'Runs'},
  {pattern: '/runs/:id', screen: () => import('./screens/runs.js'), title: 'Action run'},
  {pattern: '/feeds', screen: () => import('./screens/feeds.js'), title: 'Feeds', nav: 'Feeds'},
  {pattern: '/integrations', screen: () => import('./screens/integrations.js'), title: 'Integrations', nav: 'Integrations'},
  {pattern: '/integrations/:name', screen: () => import('./screens/integrations.js'), title: 'Integration'},
  {pattern: '/admin/users', screen: () => import('./screens/admin.js'), title: 'Users', nav: 'Users', role: 'admin'},
  {pattern: '/admin/clients', screen: () => import('./screens/admin.js'), title: 'API clients', nav: 'Clients',
   role: 'admin'},
  {pattern: '/admin/audit', screen: () => import('./screens/admin.js'), title: 'Audit log', nav: 'Audit', role: 'admin'},
];
