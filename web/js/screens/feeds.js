// feeds.js: TAXII feeds (#/feeds). The list with each feed's last poll, what it brought (the
// counts of the last poll), its checkpoint and state (an error as text); "poll now" (analyst);
// "add from a preset" (admin: GET /api/feeds/presets, POST /api/feeds).
import {api} from '../api.js';
import {h, fill, table, fmtTime, field, select} from '../dom.js';
import {navigate} from '../router.js';
import {formMessage, actionButton, stateBadge, fmtDuration} from './parts.js';

function countsText(c) {
  if (!c || typeof c !== 'object') return '';
  const skip = new Set(['feed', 'checkpoint', 'pages', 'duration_ms', 'restarts']);
  return Object.entries(c).filter(([k, v]) => !skip.has(k) && typeof v === 'number' && v !== 0)
    .map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v}`).join(', ') || 'nothing new';
}

export async function render(root) {
  const r = await api.get('/api/feeds');
  const msg = formMessage('feed-action-result');
  const cols = [
    {key: 'name', label: 'Feed', render: (f) => h('span', {class: 'value'}, f.name)},
    {key: 'source', label: 'Source', render: (f) => f.source},
    {key: 'collection', label: 'Collection', render: (f) => h('span', {class: 'value'}, f.collection)},
    {key: 'every_s', label: 'Every', render: (f) => (f.enabled ? fmtDuration(f.every_s) : 'disabled')},
    {key: 'last_poll_at', label: 'Last poll', render: (f) => fmtTime(f.last_poll_at) || 'never'},
    {key: 'state', label: 'State', render: (f) => [stateBadge(f.state),
      f.last_error ? h('div', {class: 'form-error feed-error'}, f.last_error) : null]},
    {key: 'counts', label: 'Last poll brought', render: (f) => countsText(f.counts)},
    {key: 'checkpoint', label: 'Checkpoint', render: (f) => h('span', {class: 'value'}, f.checkpoint || '')},
    {key: 'poll', label: 'Poll', render: (f) => (api.can('analyst')
      ? actionButton({class: 'poll', 'data-feed': f.name, 'aria-label': `Poll ${f.name} now`}, 'Poll now', async () => {
        msg.clear();
        try {
          await api.post(`/api/feeds/${encodeURIComponent(f.name)}/poll`);
          msg.ok(`Polling ${f.name}\u2026 the list refreshes in a few seconds.`);
          setTimeout(() => { if (document.getElementById('feeds')) navigate('/feeds', null, true); }, 3000);
        } catch (e) { msg.fail(`Polling ${f.name}`, e); }
      }) : '')},
  ];
  root.append(h('h1', {tabindex: -1}, 'Feeds'),
    h('div', {id: 'feeds'}, table(cols, r.data, {caption: `${r.total} feed(s)`, empty: 'No feed yet.'})),
    msg.el);
  if (api.can('admin')) root.append(await presetForm());
}

async function presetForm() {
  const p = await api.get('/api/feeds/presets');
  const msg = formMessage('feed-add-result');
  const preset = select({id: 'feed-preset', name: 'preset', required: true},
                        p.data.map((x) => [x.name, `${x.name} \u2013 ${x.description}`]));
  const name = h('input', {id: 'feed-name', name: 'name', required: true, maxlength: 127,
                           pattern: '[A-Za-z0-9_][A-Za-z0-9._\\-]*'});
  const url = h('input', {id: 'feed-url', name: 'url', type: 'url', size: 50,
                          placeholder: 'the TAXII discovery URL your subscription gives'});
  const every = select({id: 'feed-every', name: 'every_s'},
                       [['3600', 'every hour'], ['21600', 'every 6 hours'], ['86400', 'every day']], '3600');
  const info = h('p', {id: 'preset-info', class: 'hint'});
  const describe = () => {
    const x = p.data.find((d) => d.name === preset.value);
    if (!x) return fill(info);
    fill(info, `Collection ${x.collection}, source ${x.source}, score ${x.score}, expires after ${x.expire_days} day(s).`);
    if (!name.value) name.value = x.name;
  };
  preset.addEventListener('change', describe);
  describe();
  return h('form', {id: 'feed-form', class: 'panel', onsubmit: async (ev) => {
    ev.preventDefault();
    msg.clear();
    const body = {name: name.value.trim(), preset: preset.value, every_s: Number(every.value)};
    if (url.value.trim()) body.url = url.value.trim();
    try {
      await api.post('/api/feeds', body);
      navigate('/feeds', null, true);
    } catch (e) { msg.fail('Adding the feed', e); }
  }},
  h('h2', null, 'Add a feed from a preset'),
  h('div', {class: 'row'}, field('Preset', preset), field('Name', name), field('Poll', every)),
  info,
  field('Discovery URL (optional: the preset\u2019s otherwise)', url),
  h('button', {type: 'submit', class: 'primary', id: 'feed-submit'}, 'Add the feed'), msg.el);
}
