// router.js: hash URLs ("#/library?type=IP%20Address", "#/indicators/7") to screens. Each
// navigation replaces <main> with a fresh empty one, calls the previous screen's leave(), loads
// the screen module of the matching route (routes.js) and awaits its
// render(root, params, query, route). params: the pattern's :names, decoded; query: the query
// string as an object of strings (a repeated key gives an array). Once render resolves the
// page is marked ready: main[data-state=ready], document.body[data-route] and the performance
// mark "tq:rendered" (the benchmark and the browser tests wait on them).
import {routes} from './routes.js';
import {api} from './api.js';
import {h, fill, showError, clearError, errorText} from './dom.js';

let current = null;   // {route, mod}
let generation = 0;
let onChange = () => {};

function compile(pattern) {
  const names = [];
  const re = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
                    .replace(/:(\w+)/g, (_, n) => { names.push(n); return '([^/]+)'; });
  return {re: new RegExp('^' + re + '$'), names};
}
const table = routes.map((r) => Object.assign({}, r, compile(r.pattern)));

// The current location as {path, query}.
export function location_() {
  const raw = window.location.hash.replace(/^#/, '') || '/';
  const i = raw.indexOf('?');
  const path = i < 0 ? raw : raw.slice(0, i);
  const query = {};
  for (const [k, v] of new URLSearchParams(i < 0 ? '' : raw.slice(i + 1))) {
    if (k in query) query[k] = [].concat(query[k], v);
    else query[k] = v;
  }
  return {path: path || '/', query};
}

// "#/path?query" for a path and a query object (empty values left out).
export function href(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v === null || v === undefined || v === '') continue;
    for (const x of [].concat(v)) q.append(k, String(x));
  }
  const qs = q.toString();
  return '#' + path + (qs ? '?' + qs : '');
}

// Goes to path (with query); replace: without a new history entry.
export function navigate(path, query, replace) {
  const target = href(path, query);
  if (replace) {
    history.replaceState(null, '', target);
    render();
  } else if (window.location.hash === target) {
    render();
  } else {
    window.location.hash = target;
  }
}

// Updates the query of the current URL without rendering again (filters typed in a screen).
export function setQuery(query) {
  const {path} = location_();
  history.replaceState(null, '', href(path, query));
}

export function match(path) {
  for (const r of table) {
    const m = r.re.exec(path);
    if (m) {
      const params = {};
      r.names.forEach((n, i) => {
        try { params[n] = decodeURIComponent(m[i + 1]); } catch (e) { params[n] = m[i + 1]; }
      });
      return {route: r, params};
    }
  }
  return null;
}

export function currentRoute() { return current && current.route; }

async function render() {
  const gen = ++generation;
  const {path, query} = location_();
  if (path === '/' || path === '') {
    navigate('/library', null, true);
    return;
  }
  const found = match(path);
  if (!api.loggedIn() && (!found || !found.route.open)) {
    const next = window.location.hash.replace(/^#/, '');
    navigate('/login', {next: next && next !== '/' ? next : null}, true);
    return;
  }
  if (current && current.mod && current.mod.leave) {
    try { current.mod.leave(); } catch (e) { /* a screen's cleanup must not stop navigation */ }
  }
  current = null;
  clearError();
  document.body.dataset.route = '';
  const old = document.getElementById('main');
  const main = h('main', {id: 'main', tabindex: '-1', dataset: {state: 'loading'}});
  old.replaceWith(main);
  onChange(found ? found.route : null);
  if (!found) {
    document.title = 'Not found - tqhost';
    fill(main, h('h1', null, 'Not found'), h('p', null, `No screen at ${path}.`),
         h('p', null, h('a', {href: '#/library'}, 'Go to the threat library')));
    main.dataset.state = 'ready';
    return;
  }
  const {route, params} = found;
  document.title = `${route.title} - tqhost`;
  let mod;
  try {
    mod = await route.screen();
  } catch (e) {
    if (gen === generation) showError(errorText(`Loading the screen ${route.title}`, e));
    return;
  }
  if (gen !== generation) return;
  current = {route, mod};
  try {
    await mod.render(main, params, query, route);
  } catch (e) {
    if (gen !== generation) return;
    if (e && e.status === 401) return;  // the login screen takes over
    showError(errorText(route.title, e));
    // A screen that failed before its heading still says where the user is and what failed.
    if (!main.querySelector('h1')) {
      main.prepend(h('h1', {tabindex: -1}, e && e.status === 404 ? `${route.title}: not found` : route.title),
                   h('p', {class: 'screen-error'}, errorText(route.title, e)));
    }
  }
  if (gen !== generation) return;
  main.dataset.state = 'ready';
  document.body.dataset.route = route.pattern;
  performance.mark('tq:rendered');
  const heading = main.querySelector('h1');
  if (heading && document.activeElement === document.body) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({preventScroll: true});
  }
}

// Starts routing; changed(route) is called at each navigation (the navigation bar).
export function start(changed) {
  onChange = changed || onChange;
  window.addEventListener('hashchange', () => render());
  render();
}
