// collections.js: data collections (saved searches, /api/search/query). #/collections lists
// them with how many indicators each holds now (the list's own counts: GET ?with=count, counted
// by the server, capped at its count_cap) and the workflows that run over them;
// #/collections/:id shows one: its criteria, "open in the library" (#/library?collection=ID),
// its first indicators, edit in place (PUT: the id and the workflows over it stay; the API
// refuses renaming a workflow's collection, naming the workflow) and delete (the API's 409
// naming the workflow shown as it comes).
import {api} from '../api.js';
import {h, fill, table, fmtTime, fmtCount, showError, errorText, field, link} from '../dom.js';
import {navigate, href} from '../router.js';
import {formMessage, actionButton, add, loadOr, criteriaOfRow} from './parts.js';

// The library with the collection's criteria applied (its name shown, "save" updates it).
function libraryLink(c, id) {
  if (!criteriaOfRow(c)) {
    return h('span', {class: 'muted'}, 'no criteria document (made by tqhost collection add)');
  }
  return h('a', {href: href('/library', {collection: c.id}), id}, 'Open in the library');
}

// A count from the list (?with=count): "100,000+" past the server's cap; "not counted" when the
// server's time for counting the page ran out first.
function countText(c) {
  if (c.count_timed_out) return 'not counted (too long)';
  if (typeof c.count !== 'number') return 'n/a';
  return fmtCount(c.count) + (c.count_capped ? '+' : '');
}

export async function render(root, params) {
  if (params.id) return renderOne(root, params.id);
  const [list, wfs] = await Promise.all([api.get('/api/search/query', {limit: 1000, with: 'count'}),
                                         api.get('/api/workflows')]);
  const users = {};
  for (const w of wfs.data) (users[w.collection] = users[w.collection] || []).push(w);
  const cols = [
    {key: 'name', label: 'Name', render: (c) => link(`/collections/${c.id}`, c.name)},
    {key: 'count', label: 'Indicators now', numeric: true,
     render: (c) => h('span', {class: 'count', 'data-id': c.id,
                               title: c.count_capped ? `counted up to ${fmtCount(list.count_cap)}` : null},
                      countText(c))},
    {key: 'workflows', label: 'Used by',
     render: (c) => (users[c.name] || []).map((w, i) => [i ? ', ' : '', link(`/workflows/${w.id}`, w.name)])},
    {key: 'open', label: 'Library', render: (c) => libraryLink(c)},
    {key: 'updated_at', label: 'Updated', render: (c) => fmtTime(c.updated_at)},
  ];
  add(root, 
    h('h1', {tabindex: -1}, 'Data collections'),
    h('p', {class: 'muted'}, 'Saved searches of the threat library. Make one from the library\u2019s ',
      link('/library', 'filters'), ' with \u201CSave as data collection\u201D.'),
    h('div', {id: 'collections'}, table(cols, list.data, {caption: `${list.total} data collection(s)`,
                                                           empty: 'No data collection yet.'})));
}

async function renderOne(root, id) {
  const got = await loadOr(root, `Data collection #${id}`, Promise.all([
    api.get(`/api/search/query/${encodeURIComponent(id)}`), api.get('/api/workflows')]));
  if (!got) return;
  const [r, wfs] = got;
  const c = r.data;
  const criteria = criteriaOfRow(c);
  const using = wfs.data.filter((w) => w.collection === c.name);
  const results = h('div', {id: 'collection-results'});
  const delMsg = formMessage('delete-result');
  const editMsg = formMessage('edit-result');
  const nameIn = h('input', {id: 'edit-name', name: 'name', required: true, maxlength: 1024,
                             value: c.name});
  const text = h('textarea', {id: 'criteria-text', rows: 6, cols: 70, spellcheck: 'false'},
                 JSON.stringify(criteria || {}, null, 2));
  const editForm = h('form', {id: 'edit-form', onsubmit: async (ev) => {
    ev.preventDefault();
    editMsg.clear();
    let doc;
    try { doc = JSON.parse(text.value); } catch (e) {
      return editMsg.fail('The criteria are not JSON', e);
    }
    // In place (PUT): the id stays and so do the workflows over it; only what changed is sent
    // (renaming a workflow's collection is refused by the API, naming the workflow).
    const body = {};
    const name = nameIn.value.trim();
    if (name !== c.name) body.name = name;
    if (JSON.stringify(doc) !== JSON.stringify(criteria || {})) body.criteria = doc;
    if (!Object.keys(body).length) return editMsg.ok('Nothing changed.');
    try {
      const s = await api.put(`/api/search/query/${c.id}`, body);
      navigate(`/collections/${s.data.id}`);
    } catch (e) {
      editMsg.fail(`Saving the data collection ${c.name}`, e);
    }
  }},
  field('Name', nameIn),
  field('Criteria (the criteria language, docs/api.md)', text),
  h('button', {type: 'submit', id: 'edit-submit'}, 'Save the changes'), editMsg.el);

  add(root, 
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
      api.can('analyst') && actionButton({class: 'danger', id: 'delete-collection'}, 'Delete', async () => {
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
    // Analysts edit (the API refuses the others anyway).
    api.can('analyst') ? h('details', {class: 'filters'}, h('summary', null, 'Edit'), editForm) : null);
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
