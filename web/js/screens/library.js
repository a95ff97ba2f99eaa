// library.js: the threat library (#/library). A search box that asks the server what the text
// is (GET /api/ioc/parse: refanged, typed, canonical) and searches for exactly that, or for the
// text inside values when it is a keyword; filters (object type, indicator type, status, score
// range, source, tag, attribute, updated since) that live in the URL; a sortable, paged table
// (keyset paging over the search's hash with cursorMark in id order, offset paging for other
// sorts); "Save as data collection" (POST /api/search/query).
// uicoll: #/library?collection=ID opens a data collection: its criteria applied (its filters in
// the form when the library's filters can show them), its name shown, and "save" updates it in
// place (PUT /api/search/query/ID: the id and the workflows over it stay). Filters given in the
// URL beside collection= are the search instead, and "save" writes them to the collection.
import {api} from '../api.js';
import {h, fill, table, field, select, fmtTime, fmtScore, fmtCount, showError, errorText,
        clearError} from '../dom.js';
import {navigate} from '../router.js';
import {criteriaOfRow, filtersOf} from './parts.js';

const WITH = 'type,status,score,sources';
const SIZES = ['25', '50', '100', '200'];
const SORTS = {id: 'id', value: 'value', score: 'score', updated_at: 'updated_at',
               created_at: 'created_at', status: 'status_id', type: 'type_id'};
const FILTER_KEYS = ['collection', 'q', 'object', 'type', 'status', 'score_gte', 'score_lte', 'source', 'tag',
                     'attribute', 'attribute_value', 'updated_since'];

let lookups = null;  // types, statuses, objects: fetched once per page load
let sources = null;  // source names: their list counts objects, so it comes after the page

async function loadLookups() {
  if (lookups) return lookups;
  const [types, statuses, objects] = await Promise.all([
    api.get('/api/indicator/types', {limit: 1000}),
    api.get('/api/indicator/statuses'),
    api.get('/api/objects'),
  ]);
  lookups = {types: types.data.map((t) => t.name), statuses: statuses.data.map((s) => s.name),
             objects: objects.data};
  return lookups;
}

// Fills the source field's suggestions (a <datalist>) once the page shows.
async function fillSources(list) {
  try {
    if (!sources) sources = (await api.get('/api/sources', {limit: 1000})).data.map((s) => s.name);
    fill(list, sources.map((n) => h('option', {value: n})));
  } catch (e) { /* suggestions only: the field takes any name */ }
}

// The value filter for a keyword: contains it (a '%' in it is literal).
function containsPattern(text) {
  return '%' + text.replace(/%/g, '\\%') + '%';
}

// The criteria document of the filters (docs/api.md, "The criteria language").
export function criteriaOf(f, parsed) {
  const and = [];
  if (f.q) {
    if (parsed && parsed.type) and.push({value: parsed.canonical}, {type_name: parsed.type});
    else and.push({value: {'+like': containsPattern(f.q)}});
  }
  if (f.type) and.push({type_name: f.type});
  if (f.status) and.push({status_name: f.status});
  const score = {};
  if (f.score_gte !== undefined && f.score_gte !== '') score['+gte'] = Number(f.score_gte);
  if (f.score_lte !== undefined && f.score_lte !== '') score['+lte'] = Number(f.score_lte);
  if (Object.keys(score).length) and.push({score});
  if (f.source) and.push({source: f.source});
  if (f.tag) and.push({tag: f.tag});
  if (f.attribute) {
    and.push({attribute: f.attribute_value ? {name: f.attribute, value: f.attribute_value}
                                           : f.attribute});
  }
  if (f.updated_since) and.push({updated_at: {'+gte': f.updated_since}});
  return and.length ? {'+and': and} : {};
}

function str(v) { return Array.isArray(v) ? v[v.length - 1] : (v ?? ''); }

export async function render(root, params, query) {
  const f = {};
  for (const k of FILTER_KEYS) f[k] = str(query[k]);
  const limit = SIZES.includes(str(query.limit)) ? str(query.limit) : '50';
  const sortKey = Object.hasOwn(SORTS, str(query.sort)) ? str(query.sort) : 'id';
  const desc = str(query.dir) === 'desc';
  const object = f.object || 'indicators';

  // What the typed text is (in parallel with the lookups).
  const parsing = f.q ? api.get('/api/ioc/parse', {value: f.q}).then((r) => r.data)
                      : Promise.resolve(null);
  // The data collection opened, if any (its id in the URL).
  const opening = f.collection ? api.get(`/api/search/query/${encodeURIComponent(f.collection)}`)
                                   .then((r) => r.data) : Promise.resolve(null);
  const [lk, parsed, coll] = await Promise.all([loadLookups(), parsing, opening]);
  // Its criteria are the search unless the URL has filters of its own.
  const own = FILTER_KEYS.some((k) => k !== 'collection' && k !== 'object' && f[k]);
  const collCriteria = coll ? criteriaOfRow(coll) : null;
  if (coll && !own) Object.assign(f, filtersOf(collCriteria) || {});

  const status = h('p', {id: 'library-status', class: 'muted', role: 'status', 'aria-live': 'polite'});
  const results = h('div', {id: 'results'});
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages'});
  const detected = h('p', {id: 'detected', class: 'muted', 'aria-live': 'polite'});
  if (f.q && parsed) {
    fill(detected, parsed.type
      ? ['Detected ', h('strong', null, parsed.type), ': ', h('span', {class: 'value'}, parsed.canonical),
         parsed.defanged ? ' (refanged)' : '']
      : ['Searching values containing ', h('span', {class: 'value'}, `\u201C${f.q}\u201D`)]);
  }

  // ---- the search form and the filters ----
  const input = (name, attrs = {}) => h('input', Object.assign({id: 'f-' + name, name, value: f[name]}, attrs));
  const qBox = h('input', {id: 'search', name: 'q', type: 'search', value: f.q, autocomplete: 'off',
                           placeholder: 'IP, domain, URL, hash, email, CVE or words (defanged is fine)',
                           class: 'search'});
  const objSel = select({id: 'f-object', name: 'object'},
                        lk.objects.map((o) => [o.collection, o.display_name_plural]), object);
  const typeSel = select({id: 'f-type', name: 'type'}, [['', 'Any type'], ...lk.types], f.type);
  const statusSel = select({id: 'f-status', name: 'status'}, [['', 'Any status'], ...lk.statuses], f.status);
  const sourceList = h('datalist', {id: 'source-names'});
  const sourceSel = h('input', {id: 'f-source', name: 'source', value: f.source, list: 'source-names',
                                autocomplete: 'off', placeholder: 'Any source'});
  const limitSel = select({id: 'f-limit', name: 'limit'}, SIZES, limit);
  const form = h('form', {id: 'library-form', role: 'search', 'aria-label': 'Search the library',
                          onsubmit: (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const q = {};
    for (const k of [...FILTER_KEYS, 'limit']) {
      const v = (data.get(k) || '').toString().trim();
      if (v) q[k] = v;
    }
    if (q.object === 'indicators') delete q.object;
    if (q.limit === '50') delete q.limit;
    if (sortKey !== 'id') q.sort = sortKey;
    if (desc) q.dir = 'desc';
    navigate('/library', q);
  }},
  h('div', {class: 'row'},
    h('div', {class: 'field grow'}, h('label', {for: 'search'}, 'Search'), qBox),
    h('button', {type: 'submit', class: 'primary', id: 'search-submit'}, 'Search')),
  f.collection ? h('input', {type: 'hidden', name: 'collection', value: f.collection}) : null,
  h('details', {class: 'filters', open: FILTER_KEYS.slice(2).some((k) => f[k]) || null},
    h('summary', null, 'Filters'),
    h('div', {class: 'row'},
      field('Object type', objSel),
      field('Indicator type', typeSel),
      field('Status', statusSel),
      field('Score at least', input('score_gte', {type: 'number', min: 0, max: 10, step: 'any'})),
      field('Score at most', input('score_lte', {type: 'number', min: 0, max: 10, step: 'any'})),
      field('Source', sourceSel), sourceList,
      field('Tag', input('tag')),
      field('Attribute', input('attribute')),
      field('Attribute value', input('attribute_value')),
      field('Updated since', input('updated_since', {placeholder: 'YYYY-MM-DD or now-7 days'})),
      field('Per page', limitSel)),
    h('div', {class: 'row'},
      h('button', {type: 'submit', id: 'apply-filters'}, 'Apply filters'),
      h('a', {href: '#/library', id: 'clear-filters'}, 'Clear all'))));
  const collBox = coll ? h('p', {id: 'library-collection', role: 'status'},
                           'Data collection ', h('a', {href: `#/collections/${coll.id}`, class: 'value',
                                                       id: 'library-collection-name'}, coll.name),
                           h('span', {id: 'library-collection-note'},
                             own ? ' (the filters below are not saved in it yet)' : ''),
                           collCriteria && !own && !filtersOf(collCriteria)
                             ? ' (its criteria go beyond the filters below)' : '',
                           !collCriteria && !own
                             ? ' (it has no criteria document: the library shows its own filters)'
                             : '') : null;

  const saveBox = h('div', {id: 'save-collection'});
  root.append(h('h1', null, 'Threat library'), ...(collBox ? [collBox] : []), form, detected, saveBox,
              status, results, pager);

  if (object !== 'indicators') {
    await renderObjects(object, lk, f, Number(limit), str(query.offset), {status, results, pager});
    return;
  }

  const criteria = coll && !own && collCriteria ? collCriteria : criteriaOf(f, parsed);
  if (api.can('analyst')) {
    if (coll) saveBox.append(updateForm(coll, criteria, own));
    saveBox.append(saveForm(criteria));
  }
  const sortParam = (desc ? '-' : '') + SORTS[sortKey];
  const keyset = sortKey === 'id' && !desc;
  const state = {offset: 0, page: 0, marks: ['*'], nexts: [], hash: null};
  const n = Number(limit);

  const onSort = (key) => {
    const q = {};
    for (const k of [...FILTER_KEYS, 'limit']) if (query[k]) q[k] = str(query[k]);
    const nextDesc = key === sortKey ? !desc : key === 'score' || key === 'updated_at';
    if (key !== 'id' || nextDesc) q.sort = key;
    if (nextDesc) q.dir = 'desc';
    navigate('/library', q);
  };

  // total: null until the count (asked apart, count=true) arrives.
  let total = null;
  let shown = [];
  const statusText = () => {
    if (total === 0 || (shown.length === 0 && state.offset === 0)) return 'No indicator matches.';
    const range = `Indicators ${fmtCount(state.offset + 1)}\u2013${fmtCount(state.offset + shown.length)}`;
    return total === null ? `${range} of \u2026 (counting)` : `${range} of ${fmtCount(total)}`;
  };
  const show = (page) => {
    shown = page;
    fill(status, statusText());
    fill(results, table(columns(), page, {
      sort: sortKey, dir: desc ? 'desc' : 'asc', onSort, caption: 'Indicators',
      empty: 'No indicator matches these filters.',
    }));
    const more = total === null ? page.length === n : state.offset + page.length < total;
    const prev = h('button', {type: 'button', id: 'page-prev', disabled: state.offset === 0 || null,
                              onclick: () => go(-1)}, 'Previous');
    const next = h('button', {type: 'button', id: 'page-next', disabled: !more || null,
                              onclick: () => go(1)}, 'Next');
    fill(pager, prev, next, h('span', {class: 'muted'},
                              keyset ? 'keyset paging (id order)' : `sorted by ${sortKey}`));
  };

  // The page at once (count=false), the count apart: counting a wide query over a large
  // library costs far more than one page.
  const first = async () => {
    const r = await api.post('/api/indicators/query', {criteria},
                             {limit: n, offset: 0, sort: sortParam, with: WITH, count: 'false'});
    state.hash = r.hash;
    show(r.data);
    api.post('/api/indicators/query', {criteria}, {limit: 1})
      .then((c) => {
        total = c.total;
        if (status.isConnected) show(shown);
      })
      .catch((e) => { if (status.isConnected) fill(status, errorText('Counting the matches', e)); });
  };

  const go = async (dir) => {
    clearError();
    try {
      if (keyset) {
        // marks[i]: the cursorMark that gives page i ('*' the first); nexts[i]: the one after.
        const hashPage = (mark, w) => api.get(`/api/indicators/query/hash/${state.hash}`,
                                              {cursorMark: mark, limit: n, with: w, count: 'false'});
        if (dir > 0) {
          if (state.nexts[state.page] === undefined) {  // page 1 came from the query itself
            state.nexts[state.page] = (await hashPage(state.marks[state.page], 'type')).nextCursorMark;
          }
          const mark = state.nexts[state.page];
          const r = await hashPage(mark, WITH);
          state.page++;
          state.marks[state.page] = mark;
          state.nexts[state.page] = r.nextCursorMark;
          state.offset += n;
          show(r.data);
        } else {
          state.page = Math.max(0, state.page - 1);
          const r = await hashPage(state.marks[state.page], WITH);
          state.offset = Math.max(0, state.offset - n);
          show(r.data);
        }
      } else {
        state.offset = Math.max(0, state.offset + dir * n);
        const r = await api.post('/api/indicators/query', {criteria},
                                 {limit: n, offset: state.offset, sort: sortParam, with: WITH,
                                  count: 'false'});
        show(r.data);
      }
      const b = document.getElementById(dir > 0 ? 'page-next' : 'page-prev');
      if (b && !b.disabled) b.focus();
    } catch (e) {
      showError(errorText('Loading the page of indicators', e));
    }
  };

  await first();
  fillSources(sourceList);
}

function columns() {
  return [
    {key: 'value', label: 'Value', sortable: true,
     render: (r) => h('a', {href: `#/indicators/${r.id}`, class: 'value'}, r.value)},
    {key: 'type', label: 'Type', sortable: true, render: (r) => r.type ? r.type.name : ''},
    {key: 'status', label: 'Status', sortable: true, render: (r) => r.status ? r.status.name : ''},
    {key: 'score', label: 'Score', sortable: true, numeric: true,
     render: (r) => fmtScore(r.score && typeof r.score === 'object' ? r.score.score : r.score)},
    {key: 'sources', label: 'Sources',
     render: (r) => (r.sources || []).map((s) => s.name).join(', ')},
    {key: 'updated_at', label: 'Updated', sortable: true, render: (r) => fmtTime(r.updated_at)},
  ];
}

// "Save as data collection": the current filters as a saved search.
function saveForm(criteria) {
  const name = h('input', {id: 'collection-name', name: 'name', required: true, maxlength: 200});
  const msg = h('p', {id: 'save-result', role: 'status', 'aria-live': 'polite'});
  const form = h('form', {class: 'row', id: 'save-form', onsubmit: async (ev) => {
    ev.preventDefault();
    fill(msg);
    try {
      const r = await api.post('/api/search/query', {name: name.value.trim(), criteria});
      fill(msg, 'Saved as the data collection ',
           h('a', {href: `#/collections/${r.data.id}`, id: 'saved-link'}, r.data.name), '.');
      name.value = '';
    } catch (e) {
      fill(msg, h('span', {class: 'form-error'}, errorText('Saving the data collection', e)));
    }
  }},
  field('Save these results as a data collection named', name),
  h('button', {type: 'submit', id: 'save-submit'}, 'Save as data collection'), msg);
  return h('details', {class: 'filters'}, h('summary', null, 'Save as data collection'), form);
}

// uicoll: "Save to the data collection NAME": the search shown now as the collection's criteria,
// in place (PUT: the id and the workflows over it stay).
function updateForm(coll, criteria, changed) {
  const msg = h('p', {id: 'update-result', role: 'status', 'aria-live': 'polite'});
  const b = h('button', {type: 'button', id: 'update-collection', class: changed ? 'primary' : null,
                         onclick: async () => {
    fill(msg);
    b.disabled = true;
    try {
      const r = await api.put(`/api/search/query/${coll.id}`, {criteria});
      const note = document.getElementById('library-collection-note');
      if (note) fill(note);
      fill(msg, 'Saved to the data collection ',
           h('a', {href: `#/collections/${r.data.id}`, id: 'updated-link'}, r.data.name), '.');
    } catch (e) {
      fill(msg, h('span', {class: 'form-error'}, errorText(`Saving the data collection ${coll.name}`, e)));
    } finally {
      b.disabled = false;
    }
  }}, 'Save to the data collection \u201C', coll.name, '\u201D');
  return h('div', {class: 'row'}, b, msg);
}

// Other object types: their list (value/name contains the text), offset paging.
async function renderObjects(collection, lk, f, n, offsetArg, {status, results, pager}) {
  const info = lk.objects.find((o) => o.collection === collection);
  const offset = Math.max(0, Number(offsetArg) || 0);
  const r = await api.get(`/api/${encodeURIComponent(collection)}`,
                          {limit: n, offset, value: f.q ? containsPattern(f.q) : null});
  const label = info ? info.display_name_plural : collection;
  fill(status, r.total === 0 ? `No ${label.toLowerCase()} match.`
       : `${label} ${fmtCount(offset + 1)}\u2013${fmtCount(offset + r.data.length)} of ${fmtCount(r.total)}`);
  fill(results, table([
    {key: 'value', label: 'Name',
     render: (o) => h('a', {href: `#/objects/${collection}/${o.id}`, class: 'value'},
                      o.value ?? o.name ?? o.title ?? `#${o.id}`)},
    {key: 'description', label: 'Description', render: (o) => (o.description || '').slice(0, 200)},
    {key: 'updated_at', label: 'Updated', render: (o) => fmtTime(o.updated_at)},
  ], r.data, {caption: label, empty: `No ${label.toLowerCase()}.`}));
  const to = (off) => {
    const q = {};
    for (const k of FILTER_KEYS) if (f[k]) q[k] = f[k];
    if (off) q.offset = off;
    if (n !== 50) q.limit = n;
    navigate('/library', q);
  };
  fill(pager,
       h('button', {type: 'button', id: 'page-prev', disabled: offset === 0 || null,
                    onclick: () => to(Math.max(0, offset - n))}, 'Previous'),
       h('button', {type: 'button', id: 'page-next', disabled: offset + r.data.length >= r.total || null,
                    onclick: () => to(offset + n)}, 'Next'));
}
