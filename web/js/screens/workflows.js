// workflows.js: workflows (a data collection, actions run over it in order, their settings, a
// schedule). #/workflows lists them (collection, actions, schedule, next and last run, enabled)
// with a form to create one; #/workflows/:id shows one: run now (then its live progress),
// enable/disable, edit (the same form), delete, and its activity: the runs with their counts,
// the failures grouped by reason with the failed values, and "retry failed".
import {api} from '../api.js';
import {h, fill, table, fmtTime, fmtCount, showError, errorText, field, select, link} from '../dom.js';
import {navigate} from '../router.js';
import {formMessage, actionButton, stateBadge, fmtDuration, configControl} from './parts.js';

const EVERY = ['1h', '6h', '24h', '2d', '14d', '30d'];
const DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

// The schedule as the form shows it: {kind, every, at, day} from "every 6h" / "daily 02:30" /
// "weekly monday 08:00" / null.
function parseSchedule(s) {
  const w = (s || '').split(/\s+/);
  if (w[0] === 'every') return {kind: 'every', every: w[1]};
  if (w[0] === 'daily') return {kind: 'daily', at: w[1]};
  if (w[0] === 'weekly') return {kind: 'weekly', day: w[1], at: w[2]};
  return {kind: 'none'};
}

// The create/edit form. w: the workflow to edit (null: a new one). Resolves nothing; on save
// calls done(workflow).
function workflowForm(w, colls, actions, preset, done) {
  const editing = !!w;
  const msg = formMessage('workflow-result');
  const name = h('input', {id: 'wf-name', name: 'name', required: true, maxlength: 128,
                           pattern: '[A-Za-z0-9_][A-Za-z0-9._\\-]*', value: w ? w.name : ''});
  const coll = select({id: 'wf-collection', name: 'collection', required: true},
                      [['', 'Choose a data collection'], ...colls.map((c) => c.name)],
                      w ? w.collection : preset || '');
  const chosen = new Set(w ? w.actions : []);
  const actBoxes = actions.map((a) => {
    const id = 'wf-act-' + a.name.replace(/[^A-Za-z0-9_-]/g, '_');
    const box = h('input', {type: 'checkbox', id, name: 'actions', value: a.name,
                            checked: chosen.has(a.name)});
    box.addEventListener('change', () => drawSettings());
    return {a, box, wrap: h('div', {class: 'check'}, box, ' ',
      h('label', {for: id}, a.label || a.name), ' ', h('small', {class: 'muted'}, a.description || ''))};
  });
  const sched = parseSchedule(w ? w.schedule : null);
  const kind = select({id: 'wf-schedule-kind', name: 'schedule_kind'},
                      [['none', 'Not scheduled (run now only)'], ['every', 'Every'],
                       ['daily', 'Daily at'], ['weekly', 'Weekly on']], sched.kind);
  const every = select({id: 'wf-every', name: 'every'}, EVERY, sched.every || '24h');
  const day = select({id: 'wf-day', name: 'day'}, DAYS, sched.day || 'monday');
  const at = h('input', {id: 'wf-at', name: 'at', value: sched.at || '02:00', pattern: '[0-2][0-9]:[0-5][0-9]',
                         size: 6, placeholder: 'HH:MM'});
  const schedWrap = h('div', {class: 'row'});
  const drawSched = () => fill(schedWrap, field('Schedule', kind),
    kind.value === 'every' ? field('Period', every) : null,
    kind.value === 'weekly' ? field('Day', day) : null,
    kind.value === 'daily' || kind.value === 'weekly' ? field('Time (UTC)', at) : null);
  kind.addEventListener('change', drawSched);
  drawSched();
  const enabled = h('input', {type: 'checkbox', id: 'wf-enabled', checked: w ? w.enabled : true});

  // Settings built from the chosen actions' config fields.
  const settingsWrap = h('div', {id: 'wf-settings'});
  let controls = [];
  const drawSettings = () => {
    const seen = new Set();
    controls = [];
    const groups = [];
    for (const {a, box} of actBoxes) {
      if (!box.checked) continue;
      const cs = (a.fields || []).filter((f) => !seen.has(f.name)).map((f) => {
        seen.add(f.name);
        const cur = w && w.settings && Object.hasOwn(w.settings, f.name) ? w.settings[f.name] : undefined;
        const c = configControl(f, 'wf-set', cur);
        c.initial = c.read();
        controls.push(c);
        return c.wrap;
      });
      if (cs.length) groups.push(h('fieldset', null, h('legend', null, `Settings of ${a.label || a.name}`), cs));
    }
    fill(settingsWrap, groups.length ? groups : h('p', {class: 'muted'}, 'The chosen actions have no settings.'));
  };
  drawSettings();

  const form = h('form', {id: 'workflow-form', class: 'panel', onsubmit: async (ev) => {
    ev.preventDefault();
    msg.clear();
    const body = {name: name.value.trim(), collection: coll.value,
                  actions: actBoxes.filter((x) => x.box.checked).map((x) => x.a.name),
                  enabled: enabled.checked};
    body.schedule = kind.value === 'none' ? null
      : kind.value === 'every' ? `every ${every.value}`
      : kind.value === 'daily' ? `daily ${at.value}` : `weekly ${day.value} ${at.value}`;
    // Only what was changed from the shown value (a default stays the action's, so that the
    // plugin's own configuration, e.g. its base URL, applies); an edit resends the stored ones
    // beside the changed ones (the API replaces the settings as a whole).
    const settings = {};
    let changed = false;
    for (const c of controls) {
      const v = c.read();
      const stored = w && w.settings ? w.settings[c.key] : undefined;
      if (v !== c.initial && v !== undefined) {
        settings[c.key] = v;
        changed = true;
      } else if (stored !== undefined && stored !== '********') {
        settings[c.key] = stored;
      }
    }
    if (changed) body.settings = settings;
    try {
      const r = editing ? await api.put(`/api/workflows/${w.id}`, body)
                        : await api.post('/api/workflows', body);
      done(r.data);
    } catch (e) {
      msg.fail(editing ? `Saving the workflow ${w.name}` : 'Creating the workflow', e);
    }
  }},
  h('h2', null, editing ? 'Edit the workflow' : 'New workflow'),
  h('div', {class: 'row'}, field('Name', name), field('Data collection', coll)),
  h('fieldset', {id: 'wf-actions'}, h('legend', null, 'Actions (run in this order)'), actBoxes.map((x) => x.wrap)),
  settingsWrap,
  schedWrap,
  h('div', {class: 'check'}, enabled, ' ', h('label', {for: 'wf-enabled'}, 'Enabled (runs on its schedule)')),
  editing ? h('p', {class: 'hint'}, 'A password setting left empty is kept only when no setting changes.') : null,
  h('button', {type: 'submit', class: 'primary', id: 'workflow-submit'}, editing ? 'Save' : 'Create the workflow'),
  msg.el);
  return form;
}

export async function render(root, params, query) {
  if (params.id) return renderOne(root, params.id);
  const [wfs, colls, acts] = await Promise.all([
    api.get('/api/workflows'), api.get('/api/search/query', {limit: 1000}), api.get('/api/actions')]);
  const cols = [
    {key: 'name', label: 'Name', render: (w) => link(`/workflows/${w.id}`, w.name)},
    {key: 'collection', label: 'Collection', render: (w) => w.collection},
    {key: 'actions', label: 'Actions', render: (w) => w.actions.join(', ')},
    {key: 'schedule', label: 'Schedule', render: (w) => w.schedule_text || w.schedule || 'not scheduled'},
    {key: 'next_run_at', label: 'Next run', render: (w) => (w.enabled ? fmtTime(w.next_run_at) : '')},
    {key: 'last_run_at', label: 'Last run', render: (w) => fmtTime(w.last_run_at)},
    {key: 'enabled', label: 'Enabled', render: (w) => (w.enabled ? 'yes' : 'no')},
  ];
  root.append(h('h1', {tabindex: -1}, 'Workflows'),
    h('div', {id: 'workflows'}, table(cols, wfs.data, {caption: `${wfs.total} workflow(s)`,
                                                       empty: 'No workflow yet.'})));
  if (api.can('analyst')) {
    root.append(workflowForm(null, colls.data, acts.data, query.collection,
                             (w) => navigate(`/workflows/${w.id}`)));
  }
}

async function renderOne(root, id) {
  const [r, colls, acts] = await Promise.all([
    api.get(`/api/workflows/${encodeURIComponent(id)}`), api.get('/api/search/query', {limit: 1000}),
    api.get('/api/actions')]);
  const w = r.data;
  const msg = formMessage('workflow-action-result');
  const analyst = api.can('analyst');
  const editWrap = h('details', {class: 'filters', id: 'workflow-edit'}, h('summary', null, 'Edit'),
    workflowForm(w, colls.data, acts.data, null, () => navigate(`/workflows/${w.id}`, null, true)));
  root.append(
    h('h1', {tabindex: -1}, 'Workflow ', h('span', {class: 'value', id: 'workflow-name'}, w.name)),
    h('dl', {class: 'facts', id: 'workflow-facts'},
      h('dt', null, 'Data collection'), h('dd', null, w.collection),
      h('dt', null, 'Actions'), h('dd', null, w.actions.join(', ')),
      h('dt', null, 'Settings'), h('dd', null, Object.keys(w.settings || {}).length
        ? Object.entries(w.settings).map(([k, v]) => h('div', null, h('code', null, k), ' = ', v))
        : 'the actions\u2019 defaults'),
      h('dt', null, 'Schedule'), h('dd', null, w.schedule_text || 'not scheduled'),
      h('dt', null, 'Next run'), h('dd', null, w.enabled ? fmtTime(w.next_run_at) || '-' : '- (disabled)'),
      h('dt', null, 'Last run'), h('dd', null, fmtTime(w.last_run_at) || 'never'),
      h('dt', null, 'Enabled'), h('dd', {id: 'workflow-enabled'}, w.enabled ? 'yes' : 'no')),
    analyst ? h('div', {class: 'row'},
      actionButton({class: 'primary', id: 'run-now'}, 'Run now', async () => {
        msg.clear();
        try {
          const s = await api.post(`/api/workflows/${w.id}/run`);
          if (s.data && s.data.id) navigate(`/runs/${s.data.id}`);
          else msg.ok('The workflow ran; no action started (see its activity).');
        } catch (e) { msg.fail(`Running the workflow ${w.name}`, e); }
      }),
      actionButton({id: 'toggle-enabled'}, w.enabled ? 'Disable' : 'Enable', async () => {
        try {
          await api.put(`/api/workflows/${w.id}`, {enabled: !w.enabled});
          navigate(`/workflows/${w.id}`, null, true);
        } catch (e) { msg.fail(`Changing the workflow ${w.name}`, e); }
      }),
      actionButton({class: 'danger', id: 'delete-workflow'}, 'Delete', async () => {
        try {
          await api.del(`/api/workflows/${w.id}`);
          navigate('/workflows');
        } catch (e) { msg.fail(`Deleting the workflow ${w.name}`, e); }
      })) : null,
    msg.el,
    analyst ? editWrap : null,
    h('h2', null, 'Activity'),
    activity(w));
}

// The workflow's runs with their counts; a run's failures on demand.
function activity(w) {
  const detail = h('div', {id: 'failures', 'aria-live': 'polite'});
  const rows = w.activity || [];
  const t = table([
    {key: 'run_id', label: 'Run', render: (a) => link(`/runs/${a.run_id}`, `#${a.run_id}`)},
    {key: 'started_at', label: 'Started', render: (a) => fmtTime(a.started_at)},
    {key: 'action', label: 'Action'},
    {key: 'status', label: 'Status', render: (a) => stateBadge(a.status)},
    {key: 'requested', label: 'Items', numeric: true, render: (a) => fmtCount(a.requested)},
    {key: 'enriched', label: 'Enriched', numeric: true, render: (a) => fmtCount(a.enriched)},
    {key: 'not_found', label: 'Not found', numeric: true, render: (a) => fmtCount(a.not_found)},
    {key: 'failed', label: 'Failed', numeric: true,
     render: (a) => (a.failed ? h('button', {type: 'button', class: 'linkish', 'data-run': a.run_id,
                                              onclick: () => failures(detail, a.run_id)},
                                   `${fmtCount(a.failed)} \u2013 show`) : '0')},
    {key: 'seconds', label: 'Took', render: (a) => fmtDuration(a.seconds)},
    {key: 'error', label: 'Error', render: (a) => a.error || ''},
  ], rows, {caption: `The last ${rows.length} run(s)`, empty: 'This workflow has not run yet.'});
  return h('div', {id: 'activity'}, t, detail);
}

// A run's failures grouped by reason, the failed values, and "retry failed".
export async function failures(into, runId) {
  fill(into, h('p', {class: 'muted'}, 'Loading the failures\u2026'));
  try {
    const r = await api.get(`/api/runs/${runId}/items`, {state: 'failed', limit: 200});
    const d = r.data;
    const msg = formMessage('retry-result');
    fill(into, h('section', {class: 'panel', id: `failures-${runId}`},
      h('h3', null, `Failures of run #${runId}`),
      table([{key: 'reason', label: 'Reason', render: (g) => g.reason || '(none given)'},
             {key: 'count', label: 'Items', numeric: true, render: (g) => fmtCount(g.count)}],
            d.reasons, {caption: 'Grouped by reason', empty: 'No failure.'}),
      table([{key: 'value', label: 'Value', render: (i) => (i.object_id
               ? h('a', {href: `#/indicators/${i.object_id}`, class: 'value'}, i.value) : i.value)},
             {key: 'type', label: 'Type'}, {key: 'reason', label: 'Reason'}],
            d.items, {caption: `Failed values (${fmtCount(d.total)})`, empty: 'None.'}),
      api.can('analyst') && d.total ? actionButton({class: 'primary', id: `retry-${runId}`}, 'Retry failed', async () => {
        try {
          const s = await api.post(`/api/runs/${runId}/retry`);
          navigate(`/runs/${s.data.id}`);
        } catch (e) { msg.fail(`Retrying the failed items of run #${runId}`, e); }
      }) : null, msg.el));
  } catch (e) {
    fill(into);
    showError(errorText(`Loading the failures of run #${runId}`, e));
  }
}
