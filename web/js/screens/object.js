// object.js: one object's page (#/indicators/{id}, #/objects/{collection}/{id}). Value, type,
// status, score with its explanation (GET /api/indicators/{id}/score), expiration, sources with
// TLP, attributes grouped by source, tags, related objects as links. Analysts (and admins) edit
// status, manual score, tags and attributes, and run the Operations that accept the indicator
// (GET /api/indicators/{id}/operations): the result and the proposed changes are shown, and
// Apply writes exactly that run's changes (POST .../apply {"run_id"}); the page then shows
// them. A read-only user sees no edit control and no Apply (the API refuses anyway).
import {api} from '../api.js';
import {h, fill, table, field, select, fmt, fmtTime, fmtScore, showError, clearError,
        errorText} from '../dom.js';

let statuses = null;
let collections = null;

async function lookups(isIndicator) {
  const jobs = [];
  if (!collections) {
    jobs.push(api.get('/api/objects').then((r) => { collections = r.data; }));
  }
  if (isIndicator && !statuses && api.can('analyst')) {
    jobs.push(api.get('/api/indicator/statuses').then((r) => { statuses = r.data.map((s) => s.name); }));
  }
  await Promise.all(jobs);
}

function tlpBadge(s) {
  const name = s.tlp_name || s.tlp || null;
  if (!name) return h('span', {class: 'badge muted'}, 'no TLP');
  return h('span', {class: ['badge', 'tlp-' + String(name).toLowerCase().replace(/[^a-z]/g, '')]},
           'TLP:' + String(name).toUpperCase());
}

function scoreOf(o) {
  return o.score && typeof o.score === 'object' ? o.score : {score: o.score};
}

// A value of a plugin's result (attacker-controlled) as elements: text, lists, tables.
function showValue(v, depth = 0) {
  if (v === null || v === undefined) return h('span', {class: 'muted'}, '\u2014');
  if (typeof v !== 'object') return h('span', {class: 'value'}, String(v));
  if (depth > 4) return h('span', {class: 'value'}, JSON.stringify(v).slice(0, 500));
  if (Array.isArray(v)) {
    if (v.length === 0) return h('span', {class: 'muted'}, '(none)');
    if (v.every((x) => x === null || typeof x !== 'object')) {
      return h('span', {class: 'value'}, v.map((x) => String(x)).join(', '));
    }
    if (v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) {
      const keys = [...new Set(v.flatMap((x) => Object.keys(x)))].slice(0, 12);
      return table(keys.map((k) => ({key: k, label: k, render: (r) => showValue(r[k], depth + 1)})), v);
    }
    return h('ul', null, v.map((x) => h('li', null, showValue(x, depth + 1))));
  }
  const entries = Object.entries(v);
  if (entries.length === 0) return h('span', {class: 'muted'}, '(empty)');
  return h('dl', {class: 'facts'}, entries.flatMap(([k, x]) =>
    [h('dt', null, k), h('dd', null, showValue(x, depth + 1))]));
}

export async function render(root, params) {
  const isIndicator = !params.collection;
  const collection = isIndicator ? 'indicators' : params.collection;
  const id = params.id;
  if (!/^\d+$/.test(id)) throw new Error(`'${id}' is not an object id`);
  const base = `/api/${encodeURIComponent(collection)}/${id}`;
  const canEdit = isIndicator && api.can('analyst');

  const sec = {
    head: h('div', {id: 'object-head'}),
    facts: h('div', {id: 'facts', class: 'panel'}),
    edit: h('div', {id: 'edit'}),
    ops: h('section', {id: 'operations', 'aria-labelledby': 'ops-h'}),
    score: h('section', {id: 'score', 'aria-labelledby': 'score-h'}),
    sources: h('section', {id: 'sources', 'aria-labelledby': 'sources-h'}),
    attributes: h('section', {id: 'attributes', 'aria-labelledby': 'attributes-h'}),
    tags: h('section', {id: 'tags', 'aria-labelledby': 'tags-h'}),
    related: h('section', {id: 'related', 'aria-labelledby': 'related-h'}),
  };
  const notice = h('p', {id: 'object-notice', role: 'status', 'aria-live': 'polite'});
  root.append(sec.head, notice, sec.facts, sec.edit, sec.ops,
              h('div', {class: 'cols'}, h('div', null, sec.attributes),
                h('div', null, sec.score, sec.sources, sec.tags)),
              sec.related);

  let obj = null;
  const say = (text) => fill(notice, text || '');

  // Every write: the call, then the page's data again; errors shown as text naming the change.
  const write = async (what, fn) => {
    clearError();
    try {
      await fn();
      await load();
      say(`${what}: done.`);
    } catch (e) {
      showError(errorText(what, e));
    }
  };

  const load = async () => {
    const withParts = isIndicator ? 'attributes,sources,score,tags,type,status'
                                  : 'attributes,sources,tags';
    await lookups(isIndicator);
    const [o, explained, related] = await Promise.all([
      api.get(base, {with: withParts}),
      isIndicator ? api.get(`${base}/score`).catch(() => null) : null,
      Promise.all(collections.map((c) =>
        api.get(`${base}/${c.collection}`, {limit: 100})
          .then((r) => ({c, items: r.data, total: r.total}))
          .catch(() => ({c, items: [], total: 0})))),
    ]);
    obj = o.data;
    document.title = `${obj.value ?? obj.name ?? obj.title ?? '#' + obj.id} - tqhost`;
    renderHead(sec.head, obj, isIndicator, collection);
    renderFacts(sec.facts, obj, isIndicator);
    if (canEdit) renderEdit(sec.edit, obj, write, base, id);
    if (isIndicator) renderScore(sec.score, explained && explained.data);
    renderSources(sec.sources, obj);
    renderAttributes(sec.attributes, obj, canEdit, write, base);
    renderTags(sec.tags, obj, canEdit, write, base);
    renderRelated(sec.related, related);
  };

  await load();
  if (isIndicator) await renderOperations(sec.ops, id, base, load, say);
}

function renderHead(el, o, isIndicator, collection) {
  const kind = isIndicator ? (o.type ? o.type.name : 'Indicator')
                           : (collections.find((c) => c.collection === collection) || {}).display_name || collection;
  fill(el,
       h('p', {class: 'muted'}, h('a', {href: '#/library'}, 'Threat library'), ' / ', kind),
       h('h1', {class: 'value', id: 'object-value'}, o.value ?? o.name ?? o.title ?? `#${o.id}`));
}

function renderFacts(el, o, isIndicator) {
  const s = scoreOf(o);
  const rows = [];
  if (isIndicator) {
    rows.push(['Type', o.type ? o.type.name : ''], ['Status', o.status ? o.status.name : '']);
    rows.push(['Score', h('span', {class: 'score', id: 'score-value'}, fmtScore(s.score)),
               s.manual_score !== null && s.manual_score !== undefined
                 ? ` (manual; generated ${fmtScore(s.generated_score)})` : ' (generated)']);
  } else if (o.score !== undefined) {
    rows.push(['Score', fmtScore(s.score)]);
  }
  rows.push(['Expires', o.expires_at ? fmtTime(o.expires_at) : 'never'],
            ['Created', fmtTime(o.created_at)], ['Updated', fmtTime(o.updated_at)]);
  if (o.published_at) rows.push(['Published', fmtTime(o.published_at)]);
  if (o.description) rows.push(['Description', h('span', {class: 'value'}, o.description)]);
  fill(el, h('dl', {class: 'facts'}, rows.flatMap(([k, ...v]) => [h('dt', null, k), h('dd', null, ...v)])));
}

function renderEdit(el, o, write, base, id) {
  const s = scoreOf(o);
  const statusSel = select({id: 'edit-status'}, statuses || [], o.status ? o.status.name : '');
  const manual = h('input', {id: 'edit-score', type: 'number', min: 0, max: 10, step: 1,
                             value: s.manual_score ?? ''});
  const wasOpen = !!el.querySelector('details[open]');  // a write re-renders: stay open
  fill(el, h('details', {class: 'filters', id: 'edit-panel', open: wasOpen || null},
             h('summary', null, 'Edit'),
    h('form', {class: 'row', id: 'status-form', onsubmit: (ev) => {
      ev.preventDefault();
      write('Changing the status', () => api.put(base, {status: statusSel.value}));
    }}, field('Status', statusSel), h('button', {type: 'submit', id: 'status-save'}, 'Save status')),
    h('form', {class: 'row', id: 'score-form', onsubmit: (ev) => {
      ev.preventDefault();
      const v = manual.value.trim();
      write('Setting the manual score', () => api.put(`/api/indicator/${id}/scores`,
                                                       {manual_score: v === '' ? null : Number(v)}));
    }}, field('Manual score (0 to 10; empty: the generated score counts)', manual),
    h('button', {type: 'submit', id: 'score-save'}, 'Set score'))));
}

function renderScore(el, x) {
  if (!x) {
    fill(el, h('h2', {id: 'score-h'}, 'Score'), h('p', {class: 'muted'}, 'No explanation available.'));
    return;
  }
  const why = x.counts === 'manual'
    ? `The manual score ${fmtScore(x.manual_score)} counts (generated: ${fmtScore(x.generated_score)}).`
    : `Generated score ${fmtScore(x.generated_score)}${x.current === false ? ' (a recompute is due)' : ''}.`;
  fill(el, h('h2', {id: 'score-h'}, 'Score ', h('span', {class: 'score'}, fmtScore(x.score))),
       h('p', {id: 'score-why'}, why),
       table([
         {key: 'kind', label: 'From', render: (t) => ({source: 'source', attribute: 'attribute rule',
           attribute_value: 'attribute value rule', revoked: 'revoked decrease', clamp: 'clamp to 0..10'})[t.kind] || t.kind},
         {key: 'what', label: 'What', render: (t) => h('span', {class: 'value'},
           t.source ? `${t.source}${t.sensitivity !== undefined ? ` (sensitivity ${t.sensitivity})` : ''}`
                    : t.attribute ? `${t.attribute}${t.value !== undefined ? ' = ' + t.value : ''}` : '')},
         {key: 'delta', label: 'Adds', numeric: true,
          render: (t) => (t.counted === false ? 'not counted' : fmtScore(t.delta))},
       ], x.terms || [], {caption: 'How the generated score is made', empty: 'No terms.'}));
}

function renderSources(el, o) {
  fill(el, h('h2', {id: 'sources-h'}, 'Sources'),
       table([{key: 'name', label: 'Source', render: (s) => h('span', {class: 'value'}, s.name)},
              {key: 'tlp', label: 'TLP', render: tlpBadge}],
             o.sources || [], {empty: 'No source.'}));
}

function renderAttributes(el, o, canEdit, write, base) {
  const attrs = o.attributes || [];
  const groups = new Map();
  for (const a of attrs) {
    const names = (a.sources && a.sources.length) ? a.sources.map((s) => s.name) : ['(no source)'];
    for (const n of names) {
      if (!groups.has(n)) groups.set(n, []);
      groups.get(n).push(a);
    }
  }
  const cols = [
    {key: 'name', label: 'Name', render: (a) => h('span', {class: 'value'}, a.name)},
    {key: 'value', label: 'Value', render: (a) => h('span', {class: 'value attr-value'}, fmt(a.value))},
  ];
  if (canEdit) {
    cols.push({key: 'actions', label: 'Change', render: (a) => h('span', {class: 'row'},
      h('button', {type: 'button', class: 'attr-edit', 'aria-label': `Edit the value of ${a.name}`,
                   onclick: (ev) => editAttribute(ev.target, a, write, base)}, 'Edit'),
      h('button', {type: 'button', class: 'danger attr-delete', 'aria-label': `Delete ${a.name}`,
                   onclick: () => write(`Deleting the attribute ${a.name}`,
                                        () => api.del(`${base}/attributes/${a.id}`))}, 'Delete'))});
  }
  const parts = [h('h2', {id: 'attributes-h'}, `Attributes (${attrs.length})`)];
  if (!attrs.length) parts.push(h('p', {class: 'muted'}, 'No attribute.'));
  for (const [src, list] of [...groups.entries()].sort((x, y) => x[0].localeCompare(y[0]))) {
    parts.push(h('h3', null, src), table(cols, list.slice().sort((x, y) => x.name.localeCompare(y.name))));
  }
  if (canEdit) {
    const n = h('input', {id: 'attr-name', required: true, maxlength: 200});
    const v = h('input', {id: 'attr-value', required: true});
    parts.push(h('form', {class: 'row', id: 'attr-form', onsubmit: (ev) => {
      ev.preventDefault();
      write(`Adding the attribute ${n.value}`,
            () => api.post(`${base}/attributes`, {name: n.value.trim(), value: v.value}));
    }}, field('Attribute name', n), field('Value', v),
    h('button', {type: 'submit', id: 'attr-add'}, 'Add attribute')));
  }
  fill(el, ...parts);
}

function editAttribute(button, a, write, base) {
  const cell = button.closest('tr').querySelector('.attr-value');
  const input = h('input', {value: fmt(a.value), 'aria-label': `New value of ${a.name}`,
                            class: 'attr-input'});
  const form = h('form', {class: 'row', onsubmit: (ev) => {
    ev.preventDefault();
    write(`Changing the attribute ${a.name}`,
          () => api.put(`${base}/attributes/${a.id}`, {value: input.value}));
  }}, input, h('button', {type: 'submit'}, 'Save'));
  fill(cell, form);
  input.focus();
}

function renderTags(el, o, canEdit, write, base) {
  const tags = o.tags || [];
  const list = h('ul', {class: 'tags', id: 'tag-list'}, tags.map((t) => h('li', null,
    h('span', {class: 'badge value'}, t.name),
    canEdit ? h('button', {type: 'button', class: 'tag-remove', 'aria-label': `Remove the tag ${t.name}`,
                           onclick: () => write(`Removing the tag ${t.name}`,
                                                () => api.del(`${base}/tags/${t.id}`))}, '\u00D7') : null)));
  const parts = [h('h2', {id: 'tags-h'}, 'Tags'), tags.length ? list : h('p', {class: 'muted'}, 'No tag.')];
  if (canEdit) {
    const t = h('input', {id: 'tag-name', required: true, maxlength: 200});
    parts.push(h('form', {class: 'row', id: 'tag-form', onsubmit: (ev) => {
      ev.preventDefault();
      write(`Adding the tag ${t.value}`, () => api.post(`${base}/tags`, {name: t.value.trim()}));
    }}, field('New tag', t), h('button', {type: 'submit', id: 'tag-add'}, 'Add tag')));
  }
  fill(el, ...parts);
}

function renderRelated(el, related) {
  const found = related.filter((r) => r.items.length);
  const parts = [h('h2', {id: 'related-h'}, 'Related objects')];
  if (!found.length) parts.push(h('p', {class: 'muted'}, 'No related object.'));
  for (const {c, items, total} of found) {
    parts.push(h('h3', null, `${c.display_name_plural} (${total})`),
      h('ul', {class: 'related-list'}, items.map((x) => h('li', null,
        h('a', {href: c.collection === 'indicators' ? `#/indicators/${x.id}` : `#/objects/${c.collection}/${x.id}`,
                class: 'value related-link'}, x.value ?? x.name ?? x.title ?? `#${x.id}`),
        x.pivot && x.pivot.type ? h('span', {class: 'muted'}, ` (${x.pivot.type}${x.pivot.source ? ', ' + x.pivot.source : ''})`) : null))));
  }
  fill(el, ...parts);
}

// ---- operations ----------------------------------------------------------------------------

async function renderOperations(el, id, base, reload, say) {
  let ops = [];
  try {
    ops = (await api.get(`${base}/operations`)).data;
  } catch (e) {
    fill(el, h('p', {class: 'form-error'}, errorText('Loading the operations', e)));
    return;
  }
  const out = h('div', {id: 'op-result', 'aria-live': 'polite'});
  const canRun = api.can('analyst');
  const menu = ops.length === 0 ? h('p', {class: 'muted'}, 'No operation accepts this indicator.')
    : h('ul', {class: 'op-menu', id: 'op-menu'}, ops.map((op) => h('li', null,
        canRun ? h('button', {type: 'button', class: 'op-run', dataset: {plugin: op.plugin, op: op.name},
                              onclick: () => runOp(op, id, out, reload, say)}, op.label || op.name)
               : h('span', null, op.label || op.name),
        h('span', {class: 'muted'}, ` (${op.plugin})`))));
  fill(el, h('details', {class: 'filters', id: 'ops-panel', open: true},
             h('summary', {id: 'ops-h'}, `Operations (${ops.length})`), menu,
             canRun ? null : h('p', {class: 'muted', id: 'ops-readonly'},
                               'Running an operation needs the analyst role.')),
       out);
}

async function runOp(op, id, out, reload, say) {
  clearError();
  fill(out, h('p', {role: 'status'}, `Running ${op.label || op.name}\u2026`));
  let run;
  try {
    run = (await api.post(`/api/plugins/${encodeURIComponent(op.plugin)}/operations/${encodeURIComponent(op.name)}`,
                          {object_id: Number(id)})).data;
  } catch (e) {
    fill(out, h('p', {class: 'form-error', id: 'op-error'}, errorText(`Running ${op.label || op.name}`, e)));
    return;
  }
  const ch = run.changes || {};
  const parts = [h('h2', null, `${op.label || op.name}: ${run.status}`)];
  if (run.message) parts.push(h('p', {class: 'value'}, run.message));
  parts.push(h('h3', null, 'Result'), h('div', {id: 'op-show'}, showValue(run.result ?? run.show)));
  parts.push(h('h3', null, 'Proposed changes'));
  const changeParts = [];
  if ((ch.attributes || []).length) {
    changeParts.push(table([{key: 'name', label: 'Attribute', render: (a) => h('span', {class: 'value'}, a.name)},
                            {key: 'value', label: 'Value', render: (a) => h('span', {class: 'value'}, fmt(a.value))}],
                           ch.attributes, {caption: `Attributes to add (${ch.attributes.length})`}));
  }
  if ((ch.tags || []).length) {
    changeParts.push(h('p', null, 'Tags to add: ', h('span', {class: 'value'},
                                                      ch.tags.map((t) => (typeof t === 'string' ? t : t.name)).join(', '))));
  }
  if ((ch.links || []).length) {
    changeParts.push(table([{key: 'object_type', label: 'Object type'},
                            {key: 'value', label: 'Object', render: (l) => h('span', {class: 'value'}, fmt(l.value))},
                            {key: 'link_type', label: 'Link'}],
                           ch.links, {caption: `Links to add (${ch.links.length})`}));
  }
  if ((ch.indicators || []).length) {
    changeParts.push(table([{key: 'type', label: 'Type'},
                            {key: 'value', label: 'Indicator', render: (i) => h('span', {class: 'value'}, fmt(i.value))}],
                           ch.indicators, {caption: `Related indicators to add (${ch.indicators.length})`}));
  }
  if (ch.score !== null && ch.score !== undefined) changeParts.push(h('p', {id: 'change-score'}, `Score: ${fmtScore(ch.score)}`));
  if (ch.status) changeParts.push(h('p', null, `Status: ${typeof ch.status === 'string' ? ch.status : fmt(ch.status)}`));
  parts.push(h('div', {id: 'op-changes'}, changeParts.length ? changeParts : h('p', {class: 'muted'}, 'No change proposed.')));
  const applied = h('p', {id: 'apply-result', role: 'status', 'aria-live': 'polite'});
  if (api.can('analyst') && changeParts.length && !run.applied) {
    const button = h('button', {type: 'button', class: 'primary', id: 'op-apply', onclick: async () => {
      button.disabled = true;
      clearError();
      try {
        await api.post(`/api/plugins/${encodeURIComponent(op.plugin)}/operations/${encodeURIComponent(op.name)}/apply`,
                       {run_id: run.run_id});
        const n = (k) => (ch[k] || []).length;
        const summary = [`${n('attributes')} attribute(s)`, `${n('tags')} tag(s)`,
                         `${n('links')} link(s)`, `${n('indicators')} related indicator(s)`]
          .concat(ch.score !== null && ch.score !== undefined ? [`score ${fmtScore(ch.score)}`] : [])
          .concat(ch.status ? ['status'] : []);
        await reload();
        // The run is done with: its long result gives way to what the page now shows.
        fill(out, h('p', {id: 'apply-result', class: 'panel', role: 'status'},
                    `Applied ${op.label || op.name}: ${summary.join(', ')} written.`));
        say(`${op.label || op.name}: applied.`);
      } catch (e) {
        button.disabled = false;
        fill(applied, h('span', {class: 'form-error'}, errorText('Applying the changes', e)));
      }
    }}, 'Apply these changes');
    parts.push(button);
  }
  parts.push(applied);
  fill(out, h('div', {class: 'panel'}, parts));
  out.scrollIntoView({block: 'start'});
}
