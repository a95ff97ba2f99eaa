// runs.js: action runs. #/runs lists the bulk runs (most recent first, paged); #/runs/:id shows
// one with its live progress while it runs: a progress bar fed by server-sent events
// (GET /api/runs/{id}/events with a single-use ticket from POST .../events/ticket, since an
// EventSource cannot send the bearer token), done/total, rate, ETA and failures; cancel and
// resume; its failures grouped by reason with "retry failed". leave() closes the stream.
import {api} from '../api.js';
import {h, fill, table, fmtTime, fmtCount, showError, errorText, link} from '../dom.js';
import {href} from '../router.js';
import {formMessage, actionButton, stateBadge, fmtDuration} from './parts.js';
import {failures} from './workflows.js';

const PAGE = 50;
let stream = null;    // the open EventSource
let pollTimer = null; // the fallback when the stream cannot be had

function stop() {
  if (stream) stream.close();
  stream = null;
  clearTimeout(pollTimer);
  pollTimer = null;
}

export function leave() { stop(); }

export async function render(root, params, query) {
  stop();
  if (params.id) return renderOne(root, params.id);
  const offset = Math.max(0, Number(query.offset) || 0);
  const r = await api.get('/api/runs', {limit: PAGE, offset});
  const cols = [
    {key: 'id', label: 'Run', render: (x) => link(`/runs/${x.id}`, `#${x.id}`)},
    {key: 'action', label: 'Action'},
    {key: 'input', label: 'Over'},
    {key: 'state', label: 'State', render: (x) => stateBadge(x.state)},
    {key: 'done', label: 'Done', numeric: true, render: (x) => `${fmtCount(x.done)} / ${fmtCount(x.total)}`},
    {key: 'failed', label: 'Failed', numeric: true, render: (x) => fmtCount(x.failed)},
    {key: 'origin', label: 'Started by', render: (x) => x.workflow_id
      ? link(`/workflows/${x.workflow_id}`, 'workflow') : x.origin},
    {key: 'started_at', label: 'Started', render: (x) => fmtTime(x.started_at)},
  ];
  root.append(h('h1', {tabindex: -1}, 'Action runs'),
    h('div', {id: 'runs'}, table(cols, r.data, {caption: `${fmtCount(r.total)} run(s)`, empty: 'No run yet.'})),
    h('nav', {class: 'pager', 'aria-label': 'Pages'},
      offset > 0 ? h('a', {href: href('/runs', {offset: Math.max(0, offset - PAGE) || null}), id: 'runs-prev'}, 'Previous') : null,
      offset + PAGE < r.total ? h('a', {href: href('/runs', {offset: offset + PAGE}), id: 'runs-next'}, 'Next') : null));
}

async function renderOne(root, id) {
  const r = await api.get(`/api/runs/${encodeURIComponent(id)}`);
  let run = r.data;
  const bar = h('progress', {id: 'run-progress', max: Math.max(1, run.total), value: run.done,
                             'aria-labelledby': 'run-progress-label'});
  const label = h('span', {id: 'run-progress-label'});
  const numbers = h('p', {id: 'run-numbers', 'aria-live': 'polite', role: 'status'});
  const stateEl = h('span', {id: 'run-state'});
  const live = h('span', {id: 'run-live', class: 'muted'});
  const msg = formMessage('run-action-result');
  const failWrap = h('div', {id: 'failures'});
  const buttons = h('div', {class: 'row', id: 'run-buttons'});
  const facts = h('dl', {class: 'facts', id: 'run-facts'});

  const show = (p) => {
    // p: a run (GET /api/runs/{id}) or an event's data (run_id, state, done, total, ...)
    const total = p.total ?? run.total;
    bar.max = Math.max(1, total);
    bar.value = Math.min(p.done, Math.max(1, total));
    fill(label, `${fmtCount(p.done)} of ${fmtCount(total)} done`);
    fill(stateEl, stateBadge(p.state));
    const parts = [`${fmtCount(p.ok ?? p.enriched ?? 0)} enriched`, `${fmtCount(p.not_found ?? 0)} not found`,
                   `${fmtCount(p.failed ?? 0)} failed`, `${fmtCount(p.skipped ?? 0)} skipped`];
    if (p.rate) parts.push(`${Number(p.rate).toFixed(1)} items/s`);
    if (p.state === 'running' && p.eta_s !== null && p.eta_s !== undefined) parts.push(`ETA ${fmtDuration(p.eta_s)}`);
    fill(numbers, parts.join(' \u00B7 '));
  };

  const drawFacts = () => fill(facts,
    h('dt', null, 'Action'), h('dd', null, run.action),
    h('dt', null, 'Over'), h('dd', null, run.input),
    h('dt', null, 'Started'), h('dd', null, fmtTime(run.started_at)),
    h('dt', null, 'Finished'), h('dd', {id: 'run-finished'}, fmtTime(run.finished_at) || '-'),
    h('dt', null, 'Time spent'), h('dd', null, fmtDuration(run.seconds)),
    run.workflow_id ? [h('dt', null, 'Workflow'), h('dd', null, link(`/workflows/${run.workflow_id}`, `#${run.workflow_id}`))] : null,
    run.retry_of ? [h('dt', null, 'Retries'), h('dd', null, link(`/runs/${run.retry_of}`, `the failed items of run #${run.retry_of}`))] : null,
    run.error ? [h('dt', null, 'Error'), h('dd', {class: 'form-error'}, run.error)] : null);

  const drawButtons = () => {
    if (!api.can('analyst')) return fill(buttons);
    const running = run.state === 'running';
    const resumable = !running && run.status !== 'done';
    fill(buttons,
      running ? actionButton({class: 'danger', id: 'run-cancel'}, 'Cancel', async () => {
        msg.clear();
        try {
          const c = await api.post(`/api/runs/${run.id}/cancel`);
          msg.ok(`Run #${run.id}: ${c.data.state}.`);
        } catch (e) { msg.fail(`Cancelling run #${run.id}`, e); }
      }) : null,
      resumable ? actionButton({class: 'primary', id: 'run-resume'}, 'Resume', async () => {
        msg.clear();
        try {
          await api.post(`/api/runs/${run.id}/resume`);
          msg.ok(`Run #${run.id} resumed.`);
          await refresh();
        } catch (e) { msg.fail(`Resuming run #${run.id}`, e); }
      }) : null);
  };

  const refresh = async () => {
    const g = await api.get(`/api/runs/${run.id}`);
    run = g.data;
    show(run);
    drawFacts();
    drawButtons();
    if (run.state === 'running') follow();
    else if (run.failed > 0) failures(failWrap, run.id);
    else fill(failWrap, h('p', {class: 'muted'}, 'No failure.'));
  };

  // Polls every 2 s while the live stream cannot be had.
  const poll = () => {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      if (!document.getElementById('run-progress')) return;
      try { await refresh(); } catch (e) { showError(errorText(`Loading run #${run.id}`, e)); }
    }, 2000);
  };

  let tries = 0;
  const follow = async () => {
    if (stream) return;
    let t;
    try {
      t = await api.post(`/api/runs/${run.id}/events/ticket`);
    } catch (e) {
      fill(live, 'live progress unavailable: refreshing every 2 s');
      return poll();
    }
    if (!document.getElementById('run-progress')) return;  // the page changed meanwhile
    const es = new EventSource(t.data.url);
    stream = es;
    fill(live, 'live');
    es.addEventListener('progress', (ev) => {
      tries = 0;
      show(JSON.parse(ev.data));
    });
    es.addEventListener('end', async (ev) => {
      es.close();
      if (stream === es) stream = null;
      show(JSON.parse(ev.data));
      fill(live, 'ended');
      try { await refresh(); } catch (e) { showError(errorText(`Loading run #${run.id}`, e)); }
    });
    es.onerror = () => {
      // The ticket is single-use: EventSource's own reconnect cannot succeed; a new ticket can.
      es.close();
      if (stream === es) stream = null;
      if (!document.getElementById('run-progress')) return;
      if (++tries <= 3) {
        fill(live, 'reconnecting\u2026');
        setTimeout(() => { refresh().catch(() => poll()); }, 1000 * tries);
      } else {
        fill(live, 'live progress unavailable: refreshing every 2 s');
        poll();
      }
    };
  };

  root.append(
    h('h1', {tabindex: -1}, `Action run #${run.id} `, stateEl),
    h('div', {class: 'panel'},
      h('div', {class: 'progress-line'}, label, ' ', live),
      bar, numbers),
    buttons, msg.el, facts,
    h('h2', null, 'Failures'), failWrap);
  show(run);
  drawFacts();
  drawButtons();
  if (run.state === 'running') follow();
  else if (run.failed > 0) failures(failWrap, run.id);
  else fill(failWrap, h('p', {class: 'muted'}, 'No failure.'));
}

