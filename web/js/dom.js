// dom.js: making elements without ever parsing HTML. Every value from the library (indicator
// values, attributes, plugin output) is attacker-controlled: it reaches the page as text nodes
// only. No HTML-parsing or code-evaluating sink is used anywhere in web/ (ui.login greps).

const SAFE_URL = /^(#|\/(?!\/)|https?:\/\/|mailto:)/i;

// h(tag, attrs, ...children): an element. attrs: {class, id, for, href, type, ...} set as
// attributes; on<event>: a listener; dataset: data-* values; hidden/disabled/checked/...:
// booleans (false leaves them out); value: the property. style is refused (CSP: classes only).
// children: strings and numbers become text nodes, Nodes are appended, arrays are flattened,
// null/undefined/false are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    } else if (k === 'class') {
      el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : String(v);
    } else if (k === 'value') {
      el.value = String(v);
    } else if (k === 'checked' || k === 'selected') {
      el[k] = !!v;
    } else if (k === 'style' || /html/i.test(k) || k.startsWith('on')) {
      throw new Error('h(): attribute ' + k + ' is not allowed');
    } else if ((k === 'href' || k === 'src' || k === 'action') && !SAFE_URL.test(String(v))) {
      el.setAttribute(k, '#');  // script URLs never become links
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// Removes every child of el; returns el.
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// Replaces el's children with children (as h() takes them).
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// A link to a route of the UI: link('/indicators/7', '1.2.3.4') -> <a href="#/indicators/7">.
export function link(path, ...children) {
  return h('a', {href: '#' + path}, ...children);
}

// table(columns, rows, opts): a <table>. columns: [{key, label, render(row) -> string|Node,
// sortable, numeric}]; rows: objects. opts: {caption, sort: key, dir: 'asc'|'desc',
// onSort(key), empty: text when there are no rows, rowAttrs(row) -> attrs of the <tr>}.
export function table(columns, rows, opts = {}) {
  const head = h('tr', null, columns.map((c) => {
    const sorted = opts.sort === c.key;
    const aria = sorted ? (opts.dir === 'desc' ? 'descending' : 'ascending') : null;
    const label = c.sortable && opts.onSort
      ? h('button', {type: 'button', class: 'sort', onclick: () => opts.onSort(c.key)},
          c.label, sorted ? (opts.dir === 'desc' ? ' \u25BC' : ' \u25B2') : '')
      : c.label;
    return h('th', {scope: 'col', 'aria-sort': aria, class: c.numeric ? 'num' : null}, label);
  }));
  const body = rows.length
    ? rows.map((r) => h('tr', opts.rowAttrs ? opts.rowAttrs(r) : null, columns.map((c) =>
        h('td', {class: c.numeric ? 'num' : null, 'data-label': c.label},
          c.render ? c.render(r) : fmt(r[c.key])))))
    : [h('tr', null, h('td', {colspan: columns.length, class: 'empty'}, opts.empty || 'Nothing.'))];
  return h('table', {class: 'grid'}, opts.caption ? h('caption', null, opts.caption) : null,
           h('thead', null, head), h('tbody', null, body));
}

// A value as text for a cell: null/undefined as an empty string, objects as JSON.
export function fmt(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// A time from the API ("2026-12-06 19:49:36", ISO 8601, or epoch seconds) as local text.
export function fmtTime(v) {
  if (v === null || v === undefined || v === '') return '';
  let d;
  if (typeof v === 'number') d = new Date(v * 1000);
  else if (/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(v)) d = new Date(v.replace(' ', 'T') + 'Z');
  else d = new Date(v);
  if (isNaN(d.getTime())) return String(v);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
         `${p(d.getHours())}:${p(d.getMinutes())}`;
}

// A score (0-10, may be fractional) as text.
export function fmtScore(v) {
  if (v === null || v === undefined || v === '') return '';
  const n = Number(v);
  return isNaN(n) ? String(v) : (Math.round(n * 10) / 10).toString();
}

// A count with thousands separators.
export function fmtCount(n) {
  return n === null || n === undefined ? '' : Number(n).toLocaleString('en');
}

// The page's live regions: an error (role=alert, text), a status line (role=status).
export function showError(msg) {
  const el = document.getElementById('errors');
  if (el) fill(el, msg ? h('p', null, msg) : null);
}
export function clearError() { showError(''); }
export function showStatus(msg) {
  const el = document.getElementById('status');
  if (el) fill(el, msg || '');
}

// An error (ApiError or any Error) as text naming what failed: "Loading the indicator: 404 ...".
export function errorText(what, e) {
  const msg = e && e.message ? e.message : String(e);
  return what ? `${what}: ${msg}` : msg;
}

// A <label for> + control pair in a wrapper: field('Status', h('select', {id: 's'}, ...)).
export function field(label, control, hint) {
  if (!control.id) control.id = 'f-' + Math.random().toString(36).slice(2, 9);
  return h('div', {class: 'field'}, h('label', {for: control.id}, label), control,
           hint ? h('small', {class: 'hint'}, hint) : null);
}

// A <select> from options [[value, label], ...] or [value, ...], with value selected.
export function select(attrs, options, value) {
  return h('select', attrs, options.map((o) => {
    const [v, l] = Array.isArray(o) ? o : [o, o];
    return h('option', {value: v, selected: String(v) === String(value ?? '')}, l);
  }));
}
