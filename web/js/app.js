// app.js: the entry module. Builds the navigation bar from routes.js, sends the user to the
// login screen when the session ends, and starts the router.
import {api} from './api.js';
import {routes} from './routes.js';
import {h, fill} from './dom.js';
import {start, navigate, location_} from './router.js';

function navBar(active) {
  const nav = document.getElementById('nav');
  const user = api.user();
  nav.hidden = !api.loggedIn();
  if (!api.loggedIn()) {
    fill(nav);
    return;
  }
  const items = routes.filter((r) => r.nav && (!r.role || api.can(r.role)));
  const activeBase = active ? '/' + active.pattern.split('/')[1] : '';
  fill(nav,
       h('ul', {class: 'nav-links'}, items.map((r) => {
         const here = activeBase && r.pattern === activeBase ||
                      active && active.pattern.startsWith(r.pattern + '/') ||
                      active && active.pattern === r.pattern ||
                      (r.pattern === '/library' && active &&
                       /^\/(indicators|objects)\//.test(active.pattern));
         return h('li', null, h('a', {href: '#' + r.pattern, 'aria-current': here ? 'page' : null},
                                r.nav));
       })),
       h('div', {class: 'nav-user'},
         user ? h('span', {class: 'who', id: 'who'}, `${user.name} (${user.role})`) : null,
         h('button', {type: 'button', id: 'logout', onclick: logout}, 'Log out')));
}

async function logout() {
  await api.logout();
  navigate('/login');
}

api.onUnauthorized(() => {
  const {path} = location_();
  if (path === '/login') return;
  const next = window.location.hash.replace(/^#/, '');
  navigate('/login', {next, expired: '1'}, true);
});

// A session restored from sessionStorage (a reload, a bookmark opened in this tab) is checked
// first: the role may have changed, or the session been revoked.
if (api.loggedIn()) {
  api.whoami().catch(() => {}).finally(() => start(navBar));
} else {
  start(navBar);
}
