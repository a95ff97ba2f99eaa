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
  {pattern: '/collections', screen: placeholder, title: 'Data collections', nav: 'Collections'},
  {pattern: '/collections/:id', screen: placeholder, title: 'Data collection'},
  {pattern: '/workflows', screen: placeholder, title: 'Workflows', nav: 'Workflows'},
  {pattern: '/workflows/:id', screen: placeholder, title: 'Workflow'},
  {pattern: '/runs', screen: placeholder, title: 'Action runs', nav: 'Runs'},
  {pattern: '/runs/:id', screen: placeholder, title: 'Action run'},
  {pattern: '/feeds', screen: placeholder, title: 'Feeds', nav: 'Feeds'},
  {pattern: '/integrations', screen: placeholder, title: 'Integrations', nav: 'Integrations'},
  {pattern: '/integrations/:name', screen: placeholder, title: 'Integration'},
  {pattern: '/admin/users', screen: placeholder, title: 'Users', nav: 'Users', role: 'admin'},
  {pattern: '/admin/clients', screen: placeholder, title: 'API clients', nav: 'Clients',
   role: 'admin'},
  {pattern: '/admin/audit', screen: placeholder, title: 'Audit log', nav: 'Audit', role: 'admin'},
];
