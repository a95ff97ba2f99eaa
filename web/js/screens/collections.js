// collections.js: data collections (saved searches, /api/search/query). #/collections lists
// them with how many indicators each holds now (one POST /api/indicators/query?limit=1 each,
// for the first 50) and the workflows that run over them; #/collections/:id shows one: its
// criteria, "open in the library" (the library's filters in the URL), its first indicators,
// edit (the same name with new criteria: delete then save, refused while a workflow uses it)
// and delete (the API's 409 naming the workflow shown as it comes).
import {api} from '../api.js';
import {h, fill, table, fmtTime, fmtCount, showError, errorText, field, link} from '../dom.js';
import {navigate, href} from '../router.js';
import {formMessage, actionButton, filtersOf} from './parts.js';

const COUNT_MAX = 50;

// The criteria document of a saved search: its api_query ({"criteria", "filters"} as ThreatQ
// keeps it, or the criteria themselves).
function criteriaOfRow(c) {
  let q = c.api_query;
  if (q && typeof q === 'object' && q.criteria && typeof q.criteria === 'object' &&
      Object.keys(q).every((k) => k === 'criteria' || k === 'filters')) q = q.criteria;
  return q && typeof q === 'object' ? q : null;
}

async function countOf(criteria) {
  if (!criteria) return null;
  const r = await api.post('/api/indicators/query', {criteria}, {limit: 1});
  return r.total;
}

function libraryLink(c, id) {
  const f = filtersOf(criteriaOfRow(c));
  if (!f) return h('span', {class: 'muted'}, 'criteria beyond the library\u2019s filters');
  return h('a', {href: href('/library', f), id}, 'Open in the library');
}

export async function render(root, params) {
  if (params.id) return renderOne(root, params.id);
  const [list, wfs] = await Promise.all([api.get('/api/search/query', {limit: 1000}),
                                         api.get('/api/workflows')]);
  const users = {};
  for (const w of wfs.data) (users[w.collection] = users[w.collection] || []).push(w);
  const counts = {};
  const cols = [
    {key: 'name', label: 'Name', render: (c) => link(`/collections/${c.id}`, c.name)},
    {key: 'count', label: 'Indicators now', numeric: true,
     render: (c) => (counts[c.id] = h('span', {class: 'count', 'data-id': c.id}, '\u2026'))},
    {key: 'workflows', label: 'Used by',
     render: (c) => (users[c.name] || []).map((w, i) => [i ? ', ' : '', link(`/workflows/${w.id}`, w.name)])},
    {key: 'open', label: 'Library', render: (c) => libraryLink(c)},
    {key: 'updated_at', label: 'Updated', render: (c) => fmtTime(c.updated_at)},
  ];
  root.append(
    h('h1', {tabindex: -1}, 'Data collections'),
    h('p', {class: 'muted'}, 'Saved searches of the threat library. Make one from the library\u2019s ',
      link('/library', 'filters'), ' with \u201CSave as data collection\u201D.'),
    h('div', {id: 'collections'}, table(cols, list.data, {caption: `${list.total} data collection(s)`,
                                                           empty: 'No data collection yet.'})));
  // The counts, a few at a time, without holding up the page.
  const todo = list.data.slice(0, COUNT_MAX);
  (async () => {
    for (let i = 0; i < todo.length; i += 4) {
      await Promise.all(todo.slice(i, i + 4).map(async (c) => {
        const el = counts[c.id];
        try {
          const n = await countOf(criteriaOfRow(c));
          if (el) fill(el, n === null ? 'n/a' : fmtCount(n));
        } catch (e) {
          if (el) fill(el, 'error');
        }
      }));
    }
  })();
}

async function renderOne(root, id) {
  const [r, wfs] = await Promise.all([api.get(`/api/search/query/${encodeURIComponent(id)}`),
                                      api.get('/api/workflows')]);
  const c = r.data;
  const criteria = criteriaOfRow(c);
  const using = wfs.data.filter((w) => w.collection === c.name);
  const results = h('div', {id: 'collection-results'});
  const delMsg = formMessage('delete-result');
  const editMsg = formMessage('edit-result');
  const text = h('textarea', {id: 'criteria-text', rows: 6, cols: 70, spellcheck: 'false'},
                 JSON.stringify(criteria || {}, null, 2));
  const editForm = h('form', {id: 'edit-form', onsubmit: async (ev) => {
    ev.preventDefault();
    editMsg.clear();
    let doc;
    try { doc = JSON.parse(text.value); } catch (e) {
      return editMsg.fail('The criteria are not JSON', e);
    }
    try {
      // There is no update of a saved search: the name is saved again with the new criteria
      // (the delete is refused while a workflow runs over it, and nothing changes then).
      await api.post('/api/indicators/query', {criteria: doc}, {limit: 1});  // valid first
      await api.del(`/api/search/query/${c.id}`);
      const s = await api.post('/api/search/query', {name: c.name, criteria: doc});
      navigate(`/collections/${s.data.id}`);
    } catch (e) {
      editMsg.fail(`Saving the data collection ${c.name}`, e);
    }
  }},
  field('Criteria (the criteria language, docs/api.md)', text),
  h('button', {type: 'submit', id: 'edit-submit'}, 'Save the criteria'), editMsg.el);

  root.append(
    h('h1', {tabindex: -1}, 'Data collection ', h('span', {class: 'value', id: 'collection-name'}, c.name)),
    h('dl', {class: 'facts'},
      h('dt', null, 'Indicators now'), h('dd', {id: 'collection-count'}, '\u2026'),
      h('dt', null, 'Used by workflows'),
      h('dd', {id: 'collection-workflows'}, using.length
        ? using.map((w, i) => [i ? ', ' : '', link(`/workflows/${w.id}`, w.name)]) : 'none'),
      h('dt', null, 'Library'), h('dd', null, libraryLink(c, 'open-library')),
      h('dt', null, 'Updated'), h('dd', null, fmtTime(c.updated_at))),
    h('div', {class: 'row'},
      h('a', {href: `#/workflows?collection=${encodeURIComponent(c.name)}`, id: 'new-workflow'},
        'New workflow over it'),
      actionButton({class: 'danger', id: 'delete-collection'}, 'Delete', async () => {
        delMsg.clear();
        try {
          await api.del(`/api/search/query/${c.id}`);
          navigate('/collections');
        } catch (e) {
          delMsg.fail(`Deleting the data collection ${c.name}`, e);
        }
      })),
    delMsg.el,
    h('h2', null, 'First indicators'), results,
    h('details', {class: 'filters'}, h('summary', null, 'Edit the criteria'), editForm));
  if (!criteria) {
    fill(results, h('p', {class: 'muted'}, 'This collection has no criteria document to show.'));
    return;
  }
  try {
    const q = await api.post('/api/indicators/query', {criteria},
                             {limit: 25, with: 'type,status,score'});
    fill(document.getElementById('collection-count') || h('span'), fmtCount(q.total));
    fill(results, table([
      {key: 'value', label: 'Value', render: (o) => h('a', {href: `#/indicators/${o.id}`, class: 'value'}, o.value)},
      {key: 'type', label: 'Type', render: (o) => (o.type ? o.type.name : '')},
      {key: 'status', label: 'Status', render: (o) => (o.status ? o.status.name : '')},
      {key: 'score', label: 'Score', numeric: true,
       render: (o) => String(o.score && typeof o.score === 'object' ? o.score.score : (o.score ?? ''))},
    ], q.data, {caption: `${fmtCount(q.total)} indicator(s); the first ${q.data.length}`,
                empty: 'No indicator matches now.'}));
  } catch (e) {
    showError(errorText(`Running the data collection ${c.name}`, e));
  }
}
