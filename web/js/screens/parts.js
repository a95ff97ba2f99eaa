// parts.js: small pieces the screens of collections, workflows, runs, feeds, integrations and
// admin share (not a screen itself). Everything is built with dom.js's h(): text only.
import {h, fill, errorText} from '../dom.js';

// A message line for a form: ok(text) or fail(what, error) fill it; role=status, aria-live.
export function formMessage(id) {
  const el = h('p', {id, class: 'form-msg', role: 'status', 'aria-live': 'polite'});
  return {
    el,
    ok: (...text) => fill(el, ...text),
    fail: (what, e) => fill(el, h('span', {class: 'form-error'}, errorText(what, e))),
    clear: () => fill(el),
  };
}

// A button that runs an async action once at a time (disabled meanwhile).
export function actionButton(attrs, label, fn) {
  const b = h('button', Object.assign({type: 'button'}, attrs), label);
  b.addEventListener('click', async () => {
    if (b.disabled) return;
    b.disabled = true;
    try { await fn(b); } finally { if (b.isConnected) b.disabled = false; }
  });
  return b;
}

// uicoll: the criteria document of a saved search (a row of /api/search/query): its api_query
// ({"criteria", "filters"} as ThreatQ keeps it, or the criteria themselves); null when none.
export function criteriaOfRow(c) {
  let q = c && c.api_query;
  if (q && typeof q === 'object' && q.criteria && typeof q.criteria === 'object' &&
      Object.keys(q).every((k) => k === 'criteria' || k === 'filters')) q = q.criteria;
  return q && typeof q === 'object' ? q : null;
}

// The library's filters (#/library?...) for a saved search's criteria document, as the library
// screen makes them (library.js criteriaOf); null when the criteria use something the library's
// filters cannot show.
export function filtersOf(criteria) {
  if (!criteria || typeof criteria !== 'object') return null;
  const list = Array.isArray(criteria['+and']) ? criteria['+and']
    : Object.keys(criteria).length ? [criteria] : [];
  const f = {};
  for (const c of list) {
    if (!c || typeof c !== 'object' || Object.keys(c).length !== 1) return null;
    const [k] = Object.keys(c);
    const v = c[k];
    if (k === 'value' && typeof v === 'string') f.q = v;
    else if (k === 'value' && v && typeof v['+like'] === 'string') {
      f.q = v['+like'].replace(/^%/, '').replace(/%$/, '').replace(/\\%/g, '%');
    } else if (k === 'type_name' && typeof v === 'string') f.type = v;
    else if (k === 'status_name' && typeof v === 'string') f.status = v;
    else if (k === 'score' && v && typeof v === 'object') {
      if (v['+gte'] !== undefined) f.score_gte = v['+gte'];
      if (v['+lte'] !== undefined) f.score_lte = v['+lte'];
    } else if (k === 'source' && typeof v === 'string') f.source = v;
    else if (k === 'tag' && typeof v === 'string') f.tag = v;
    else if (k === 'attribute' && typeof v === 'string') f.attribute = v;
    else if (k === 'attribute' && v && typeof v.name === 'string') {
      f.attribute = v.name;
      if (v.value !== undefined) f.attribute_value = v.value;
    } else if (k === 'updated_at' && v && v['+gte'] !== undefined) f.updated_since = v['+gte'];
    else return null;
  }
  return f;
}

// A run's state as a badge.
export function stateBadge(state) {
  const cls = state === 'done' || state === 'ok' ? 'badge ok'
    : state === 'running' || state === 'polling' || state === 'cancelling' ? 'badge run'
    : state === 'failed' || (state || '').startsWith('interrupted') ? 'badge bad' : 'badge';
  return h('span', {class: cls}, state || '');
}

// Seconds as "1 h 2 min", "3 min 4 s", "5 s".
export function fmtDuration(s) {
  if (s === null || s === undefined || isNaN(Number(s))) return '';
  s = Math.max(0, Math.round(Number(s)));
  if (s >= 86400 && s % 86400 === 0) return `${s / 86400} d`;
  if (s >= 3600) {
    const m = Math.round((s % 3600) / 60);
    return `${Math.floor(s / 3600)} h` + (m ? ` ${m} min` : '');
  }
  if (s >= 60) return `${Math.floor(s / 60)} min` + (s % 60 ? ` ${s % 60} s` : '');
  return `${s} s`;
}

// A form control for a config field from a manifest ({name|key, label, type, required, options,
// default|value}). Password fields start empty and never show a stored value: placeholder says
// whether one is set. Returns {wrap, read()} where read() gives the value to send or undefined
// (left empty: unchanged).
export function configControl(f, idPrefix, current) {
  const key = f.key || f.name;
  const id = `${idPrefix}-${key}`.replace(/[^A-Za-z0-9_-]/g, '_');
  let control;
  const cur = current !== undefined ? current : (f.type === 'password' ? null : (f.value ?? f.default));
  if (f.type === 'boolean') {
    control = h('select', {id, name: key},
      h('option', {value: ''}, '(unchanged)'),
      h('option', {value: 'true', selected: String(cur) === 'true'}, 'yes'),
      h('option', {value: 'false', selected: String(cur) === 'false'}, 'no'));
  } else if (f.type === 'select' && Array.isArray(f.options)) {
    control = h('select', {id, name: key}, h('option', {value: ''}, '(unchanged)'),
      f.options.map((o) => h('option', {value: o, selected: String(cur) === String(o)}, o)));
  } else if (f.type === 'password') {
    const set = f.value === '********' || current === '********';
    control = h('input', {id, name: key, type: 'password', autocomplete: 'new-password',
                          value: '', placeholder: set ? 'set (write a new value to replace it)'
                                                        : 'not set'});
  } else {
    control = h('input', {id, name: key, type: f.type === 'integer' || f.type === 'number' ? 'number' : f.type === 'url' ? 'url' : 'text',
                          value: cur ?? ''});
  }
  const label = (f.label || key) + (f.required ? ' (required)' : '');
  const wrap = h('div', {class: 'field'}, h('label', {for: id}, label), control,
                 f.type === 'password' ? h('small', {class: 'hint'}, 'Write-only: never shown back.') : null);
  return {
    key, type: f.type, wrap, control,
    read() {
      const v = control.value;
      if (v === '' || v === undefined) return undefined;
      if (f.type === 'integer' || f.type === 'number') return Number(v);
      if (f.type === 'boolean') return v === 'true';
      return v;
    },
  };
}

// Appends children to el as h() takes them (arrays flattened; null, undefined and false left
// out; strings as text): Element.append would write "null" for a missing part.
export function add(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// Awaits what a page needs; when it fails (an unknown id: 404) the page still gets its heading
// and says what failed, as text (role=alert); resolves null then.
export async function loadOr(root, title, promise) {
  try {
    return await promise;
  } catch (e) {
    if (e && e.status === 401) throw e;  // the login screen takes over
    add(root, h('h1', {tabindex: -1}, title),
        h('p', {class: 'form-error', role: 'alert', id: 'load-error'}, errorText(`Loading ${title}`, e)));
    return null;
  }
}
