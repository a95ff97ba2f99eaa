// integrations.js: plugins and actions (#/integrations): each with its version and status (a
// plugin whose manifest does not load is listed with its file:line:col error, as text); and one
// plugin (#/integrations/:name): its operations and its configuration form built from the
// manifest's config fields (admin). Password fields are write-only: the API never sends a
// stored one back (only "********"), the form starts empty and sends only what was written.
import {api} from '../api.js';
import {h, table, link} from '../dom.js';
import {navigate} from '../router.js';
import {formMessage, configControl} from './parts.js';

function statusOf(p) {
  if (p.config_error) return h('span', {class: 'badge bad'}, 'config error');
  return p.configured ? h('span', {class: 'badge ok'}, 'ready')
                      : h('span', {class: 'badge warn'}, 'needs configuration');
}

export async function render(root, params) {
  if (params.name) return renderOne(root, params.name);
  const [plugins, actions] = await Promise.all([api.get('/api/plugins'), api.get('/api/actions')]);
  root.append(h('h1', {tabindex: -1}, 'Integrations'),
    h('h2', null, 'Plugins'),
    h('div', {id: 'plugins'}, table([
      {key: 'name', label: 'Plugin', render: (p) => link(`/integrations/${encodeURIComponent(p.name)}`, p.label || p.name)},
      {key: 'version', label: 'Version'},
      {key: 'operations', label: 'Operations', render: (p) => p.operations.map((o) => o.label || o.name).join(', ')},
      {key: 'status', label: 'Status', render: (p) => [statusOf(p),
        p.config_error ? h('div', {class: 'form-error'}, p.config_error) : null]},
    ], plugins.data, {caption: `${plugins.total} plugin(s)`, empty: 'No plugin installed.'})),
    (plugins.broken || []).length ? [
      h('h2', null, 'Plugins that do not load'),
      h('div', {id: 'broken-plugins'}, table([
        {key: 'name', label: 'Folder', render: (b) => h('span', {class: 'value'}, b.name)},
        {key: 'status', label: 'Status', render: () => h('span', {class: 'badge bad'}, 'broken')},
        {key: 'error', label: 'Error', render: (b) => h('code', {class: 'value broken-error'}, b.error)},
      ], plugins.broken))] : null,
    h('h2', null, 'Actions'),
    h('div', {id: 'actions'}, table([
      {key: 'name', label: 'Action', render: (a) => a.label || a.name},
      {key: 'version', label: 'Version'},
      {key: 'plugin', label: 'Runs', render: (a) => [link(`/integrations/${encodeURIComponent(a.plugin)}`, a.plugin), `: ${a.operation}`]},
      {key: 'types', label: 'Indicator types', render: (a) => (a.indicator_types || []).join(', ')},
      {key: 'fields', label: 'Settings', render: (a) => (a.fields || []).map((f) => f.name).join(', ')},
    ], actions.data, {caption: `${actions.total} action(s)`, empty: 'No action installed.'})));
}

async function renderOne(root, name) {
  const r = await api.get(`/api/plugins/${encodeURIComponent(name)}`);
  const p = r.data;
  root.append(
    h('h1', {tabindex: -1}, p.label || p.name, ' ', statusOf(p)),
    h('dl', {class: 'facts'},
      h('dt', null, 'Name'), h('dd', {class: 'value'}, p.name),
      h('dt', null, 'Version'), h('dd', null, p.version),
      p.author ? [h('dt', null, 'Author'), h('dd', null, p.author)] : null,
      p.description ? [h('dt', null, 'Description'), h('dd', null, p.description)] : null,
      p.config_error ? [h('dt', null, 'Config error'), h('dd', {class: 'form-error'}, p.config_error)] : null),
    h('h2', null, 'Operations'),
    table([{key: 'name', label: 'Operation', render: (o) => o.label || o.name},
           {key: 'object_types', label: 'On', render: (o) => (o.object_types || []).join(', ')},
           {key: 'indicator_types', label: 'Indicator types', render: (o) => (o.indicator_types || []).join(', ')}],
          p.operations, {empty: 'None.'}));
  if (!p.config.length) return;
  if (!api.can('admin')) {
    root.append(h('h2', null, 'Configuration'),
      table([{key: 'label', label: 'Field'}, {key: 'type', label: 'Type'},
             {key: 'value', label: 'Value', render: (f) => (f.value === null ? 'not set' : f.value)}], p.config));
    return;
  }
  const msg = formMessage('config-result');
  const controls = p.config.map((f) => configControl(f, 'cfg'));
  root.append(h('form', {id: 'config-form', class: 'panel', autocomplete: 'off', onsubmit: async (ev) => {
    ev.preventDefault();
    msg.clear();
    const body = {};
    for (const c of controls) {
      const v = c.read();
      const f = p.config.find((x) => x.key === c.key);
      if (v === undefined) continue;
      if (c.type !== 'password' && String(v) === String(f.value ?? '')) continue;
      body[c.key] = v;
    }
    if (!Object.keys(body).length) return msg.ok('Nothing changed.');
    try {
      await api.put(`/api/plugins/${encodeURIComponent(p.name)}/config`, body);
      for (const c of controls) if (c.type === 'password') c.control.value = '';
      navigate(`/integrations/${encodeURIComponent(p.name)}`, null, true);
    } catch (e) { msg.fail(`Configuring ${p.name}`, e); }
  }},
  h('h2', null, 'Configuration'),
  controls.map((c) => c.wrap),
  h('button', {type: 'submit', class: 'primary', id: 'config-submit'}, 'Save the configuration'), msg.el));
}
