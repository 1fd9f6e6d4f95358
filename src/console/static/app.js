// wfp-deployer console: the page's behaviour, hand-written, no dependencies.
//
// It loads the state once (/api/state), then keeps it current from the
// server-sent event stream (/api/stream): each `job` event replaces that
// job's row, `throughput` redraws the chart, `queues` the depths, `dlq`
// reloads the parked jobs. Every value from the broker is set as text,
// never as markup. State-changing calls carry the page's CSRF token.
'use strict';

(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (selector) => document.querySelector(selector);
  const SVG = 'http://www.w3.org/2000/svg';
  const MAX_RECENT = 200;

  const state = {
    inFlight: new Map(),
    recent: [],
    filters: { namespace: '', script: '', code: '' },
    about: null,
    view: 'live',
    openJob: null,
    dlqDepth: null,
    loading: false,
    pending: [],
  };

  // ---- building blocks ---------------------------------------------------

  function build(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.setAttribute('class', value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const el = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG, tag), attrs, children);

  async function api(path, body) {
    const init = { credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.headers['X-CSRF-Token'] = csrf;
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) throw new Error((data && data.error) || text || response.statusText);
    return data;
  }

  function ago(iso) {
    if (!iso) return '–';
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.floor(s / 60)}m ago`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
    return `${Math.floor(s / 86400)}d ago`;
  }
  const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–');
  function duration(ms) {
    if (ms === null || ms === undefined) return '–';
    if (ms < 1000) return `${ms} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    return `${Math.floor(ms / 60000)}m ${Math.round((ms % 60000) / 1000)}s`;
  }
  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
  }
  const site = (job) => (job.namespace && job.script_name ? `${job.namespace}/${job.script_name}` : job.job_id);
  const badge = (status) => el('span', { class: `badge ${status}` }, status.replace('_', ' '));
  const timeCell = (iso) => el('td', { title: iso || '' }, ago(iso));

  function toast(message, bad) {
    const node = $('#toast');
    node.textContent = message;
    node.className = bad ? 'bad' : 'ok';
    node.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { node.hidden = true; }, 6000);
  }

  // ---- live view ---------------------------------------------------------

  function progressCell(job) {
    const p = job.progress;
    if (!p) return el('td', { class: 'muted' }, '–');
    const parts = [];
    let value = null;
    let max = null;
    if (p.files_total) {
      parts.push(`${p.files_done || 0}/${p.files_total} files`);
      [value, max] = [p.files_done || 0, p.files_total];
    }
    if (p.bytes_total) {
      parts.push(`${bytes(p.bytes_done || 0)}/${bytes(p.bytes_total)}`);
      [value, max] = [p.bytes_done || 0, p.bytes_total];
    }
    return el('td', { class: 'progress' },
      max ? el('progress', { max, value }) : null,
      el('span', { class: 'muted' }, parts.join(' · ')));
  }

  function jobRow(job, cells) {
    return el('tr', { 'data-job': job.job_id, class: 'clickable', onclick: () => openJob(job.job_id) }, cells);
  }

  function renderInFlight() {
    const jobs = [...state.inFlight.values()].sort((a, b) => (a.started_at || '').localeCompare(b.started_at || ''));
    $('#inflight tbody').replaceChildren(...jobs.map((job) => jobRow(job, [
      el('td', {}, site(job)),
      el('td', {}, el('code', {}, job.job_id)),
      el('td', { class: 'status' }, badge(job.status)),
      el('td', { class: 'step' }, job.step || (job.status === 'retrying' && job.error ? job.error.code : 'started')),
      progressCell(job),
      el('td', { class: 'num' }, job.attempt ?? '–'),
      timeCell(job.started_at),
    ])));
    $('#inflight-empty').hidden = jobs.length > 0;
    $('#card-inflight').textContent = String(jobs.length);
  }

  function renderOutcomes() {
    $('#outcomes tbody').replaceChildren(...state.recent.map((job) => jobRow(job, [
      timeCell(job.finished_at),
      el('td', { class: 'status' }, badge(job.status)),
      el('td', {}, site(job)),
      el('td', {}, el('code', {}, job.job_id)),
      el('td', { class: 'code', title: job.error ? job.error.message : '' }, job.error ? job.error.code : ''),
      el('td', { class: 'num' }, duration(job.duration_ms)),
      el('td', { class: 'num' }, job.attempt ?? '–'),
    ])));
    $('#outcomes-empty').hidden = state.recent.length > 0;
  }

  function matchesFilters(job) {
    const f = state.filters;
    if (f.namespace && job.namespace !== f.namespace) return false;
    if (f.script && job.script_name !== f.script) return false;
    if (f.code === 'ok') return job.status === 'succeeded';
    if (f.code) return Boolean(job.error) && job.error.code === f.code;
    return true;
  }

  function upsert(job) {
    if (state.loading) state.pending.push(job);
    state.recent = state.recent.filter((j) => j.job_id !== job.job_id);
    if (job.status === 'in_flight' || job.status === 'retrying') {
      state.inFlight.set(job.job_id, job);
    } else {
      state.inFlight.delete(job.job_id);
      if (matchesFilters(job)) state.recent.unshift(job);
      state.recent.length = Math.min(state.recent.length, MAX_RECENT);
    }
    renderInFlight();
    renderOutcomes();
    if (state.openJob === job.job_id) openJob(job.job_id);
  }

  function renderChart(t) {
    const chart = $('#chart');
    const [left, top, width, height] = [34, 8, 596, 136];
    const most = Math.max(1, ...t.buckets.map((b) => b.succeeded + b.failed));
    const step = width / t.buckets.length;
    const y = (n) => top + height - (n / most) * height;
    const bars = t.buckets.flatMap((b, i) => {
      const x = left + i * step + 1;
      const label = `${clock(b.start)}: ${b.succeeded} succeeded, ${b.failed} failed`;
      return [
        svg('rect', { x, y: y(b.succeeded), width: step - 2, height: y(0) - y(b.succeeded), class: 'bar ok' }, svg('title', {}, label)),
        svg('rect', { x, y: y(b.succeeded + b.failed), width: step - 2, height: y(0) - y(b.failed), class: 'bar bad' }, svg('title', {}, label)),
      ];
    });
    chart.replaceChildren(
      svg('line', { x1: left, y1: y(0), x2: left + width, y2: y(0), class: 'axis' }),
      svg('line', { x1: left, y1: top, x2: left + width, y2: top, class: 'grid' }),
      svg('text', { x: left - 6, y: top + 4, class: 'tick', 'text-anchor': 'end' }, String(most)),
      svg('text', { x: left - 6, y: y(0) + 4, class: 'tick', 'text-anchor': 'end' }, '0'),
      svg('text', { x: left, y: y(0) + 18, class: 'tick' }, '60 min ago'),
      svg('text', { x: left + width / 2, y: y(0) + 18, class: 'tick', 'text-anchor': 'middle' }, '30 min ago'),
      svg('text', { x: left + width, y: y(0) + 18, class: 'tick', 'text-anchor': 'end' }, 'now'),
      ...bars,
    );
    $('#card-succeeded').textContent = String(t.succeeded);
    $('#card-failed').textContent = String(t.failed);
    const finished = t.succeeded + t.failed;
    $('#card-rate').textContent = finished ? `${(t.failure_rate * 100).toFixed(1)}%` : '–';
    $('#chart-note').textContent = `· ${finished} finished, per minute`;
  }

  function renderQueues(q) {
    if (!q) return;
    const cell = (n) => el('td', { class: 'num' }, n ?? '–');
    $('#queues tbody').replaceChildren(...q.queues.map((queue) => el('tr', { 'data-queue': queue.role },
      el('td', {}, el('code', {}, queue.name), ' ', el('span', { class: 'muted' }, queue.role.replace('_', ' '))),
      cell(queue.ready), cell(queue.unacked), cell(queue.consumers))));
    const note = $('#queues-note');
    note.hidden = !q.error;
    note.textContent = q.error || '';
    const dlq = q.queues.find((queue) => queue.role === 'dead_letter');
    const depth = dlq ? (dlq.messages ?? dlq.ready) : null;
    const pill = $('#dlq-count');
    pill.hidden = !depth;
    pill.textContent = depth ? String(depth) : '';
    if (depth !== state.dlqDepth && state.view === 'dlq') loadDlq();
    state.dlqDepth = depth;
  }

  function renderAbout(about) {
    state.about = about;
    setStatus(about.connected ? 'live' : 'broker unreachable');
    $('#dlq-queue').textContent = about.dead_letter_queue;
    $('#about').textContent = `events from ${about.events_exchange} · the last ${about.window_capacity} kept in memory`;
  }

  async function loadState() {
    state.loading = true;
    state.pending = [];
    try {
      const query = new URLSearchParams(Object.entries(state.filters).filter(([, v]) => v));
      const s = await api(`/api/state?${query}`);
      state.inFlight = new Map(s.in_flight.map((job) => [job.job_id, job]));
      state.recent = s.recent;
      state.loading = false;
      // What the stream delivered while the state was on its way is newer.
      state.pending.splice(0).forEach(upsert);
      renderInFlight();
      renderOutcomes();
      renderChart(s.throughput);
      renderQueues(s.queues);
      renderAbout(s.about);
    } catch (error) {
      toast(`Cannot load the state: ${error.message}`, true);
    } finally {
      state.loading = false;
    }
  }

  // ---- one job's timeline ------------------------------------------------

  function eventDetail(event) {
    const data = event.data || {};
    if (data.error) return `${data.error.code} at ${data.error.step}: ${data.error.message}`;
    if (event.type === 'wfp.deploy.progress') {
      const parts = [data.step];
      if (data.files_total) parts.push(`${data.files_done || 0}/${data.files_total} files`);
      if (data.bytes_total) parts.push(`${bytes(data.bytes_done || 0)}/${bytes(data.bytes_total)}`);
      return parts.filter(Boolean).join(' · ');
    }
    if (data.manifest) return `${data.manifest.files} files, ${bytes(data.manifest.bytes)}; uploaded ${data.upload ? data.upload.files : 0}; ${duration(data.duration_ms)}`;
    return data.attempt ? `attempt ${data.attempt}` : '';
  }

  function facts(list, pairs) {
    list.replaceChildren(...pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
      .flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }

  async function openJob(id) {
    state.openJob = id;
    let data;
    try {
      data = await api(`/api/jobs/${encodeURIComponent(id)}`);
    } catch (error) {
      toast(error.message, true);
      return;
    }
    if (state.openJob !== id) return;
    const job = data.job;
    $('#drawer-title').replaceChildren(badge(job.status), ' ', site(job));
    facts($('#drawer-facts'), [
      ['job', job.job_id], ['attempt', job.attempt], ['step', job.step],
      ['error', job.error ? `${job.error.code}: ${job.error.message}` : null],
      ['started', job.started_at], ['finished', job.finished_at], ['duration', job.duration_ms != null ? duration(job.duration_ms) : null],
      ['labels', Object.entries(job.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ')],
    ]);
    $('#timeline').replaceChildren(...data.events.map((event) => {
      const kind = (event.type || '').replace('wfp.deploy.', '');
      return el('li', { class: `event ${kind}` },
        el('span', { class: 'when', title: event.time }, clock(event.time)), ' ',
        el('span', { class: `badge ${kind}` }, kind), ' ',
        el('span', {}, eventDetail(event)),
        el('details', {}, el('summary', {}, event.id), el('pre', {}, JSON.stringify(event, null, 2))));
    }));
    $('#drawer').hidden = false;
  }

  // ---- dead letters --------------------------------------------------------

  function reasonText(reason) {
    if (reason.kind === 'parked') return `${reason.code}${reason.step ? ` at ${reason.step}` : ''}: ${reason.message}`;
    if (reason.kind === 'dead_lettered') return `${reason.reason} (dead-lettered${reason.queue ? ` from ${reason.queue}` : ''})`;
    return 'no reason recorded';
  }
  const parkedSite = (job) => (job.namespace && job.script_name ? `${job.namespace}/${job.script_name}` : '–');

  function confirmAction(text, label) {
    const dialog = $('#confirm');
    $('#confirm-text').textContent = text;
    $('#confirm-ok').textContent = label;
    return new Promise((resolve) => {
      const done = (answer) => {
        $('#confirm-ok').onclick = null;
        $('#confirm-cancel').onclick = null;
        dialog.close();
        resolve(answer);
      };
      $('#confirm-ok').onclick = () => done(true);
      $('#confirm-cancel').onclick = () => done(false);
      dialog.showModal();
    });
  }

  async function act(job, verb, path, text) {
    if (!await confirmAction(text, verb)) return;
    try {
      const result = await api(path, { ids: [job.id] });
      toast(`${verb === 'Requeue' ? 'Requeued' : 'Deleted'} ${result.done.join(', ') || 'nothing'}`);
    } catch (error) {
      toast(`${verb} failed: ${error.message}`, true);
    }
    $('#dlq-detail').hidden = true;
    loadDlq();
  }

  function showParked(job) {
    $('#dlq-detail-id').textContent = job.id;
    facts($('#dlq-detail-facts'), [
      ['site', parkedSite(job)], ['reason', reasonText(job.reason)], ['attempts', job.attempts],
      ['parked', job.parked_at ? `${job.parked_at} (${ago(job.parked_at)})` : null],
      ['first failure', job.first_failure], ['size', bytes(job.body_bytes)],
    ]);
    $('#dlq-detail-properties').textContent = JSON.stringify(job.properties, null, 2);
    let body = job.body;
    try { body = JSON.stringify(JSON.parse(job.body), null, 2); } catch (_) { /* shown as it is */ }
    $('#dlq-detail-body').textContent = body;
    $('#dlq-detail').hidden = false;
  }

  async function loadDlq() {
    const note = $('#dlq-note');
    let data;
    try {
      data = await api('/api/dlq');
    } catch (error) {
      note.textContent = `Cannot read the dead-letter queue: ${error.message}`;
      note.hidden = false;
      return;
    }
    const exchange = state.about ? state.about.jobs_exchange : 'the jobs exchange';
    $('#dlq tbody').replaceChildren(...data.jobs.map((job) => el('tr', { 'data-parked': job.id, class: 'clickable', onclick: () => showParked(job) },
      el('td', {}, el('code', {}, job.id)),
      el('td', {}, parkedSite(job)),
      el('td', { class: 'reason' }, reasonText(job.reason)),
      el('td', { class: 'num' }, job.attempts ?? '–'),
      el('td', { title: job.parked_at || '' }, ago(job.parked_at)),
      el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'requeue', onclick: (e) => { e.stopPropagation(); act(job, 'Requeue', '/api/dlq/requeue', `Requeue ${job.id}? Its message is published to ${exchange} again, and removed from the dead-letter queue once the broker confirmed it.`); } }, 'Requeue'),
        el('button', { type: 'button', class: 'purge danger', onclick: (e) => { e.stopPropagation(); act(job, 'Delete', '/api/dlq/purge', `Delete ${job.id} for good? It will not be deployed.`); } }, 'Delete')))));
    $('#dlq-empty').hidden = data.jobs.length > 0;
    note.hidden = !data.more;
    note.textContent = data.more ? 'More jobs are parked than this page lists: use wfp-deployer dlq list.' : '';
  }

  // ---- wiring ------------------------------------------------------------------

  function show(view) {
    state.view = view;
    for (const name of ['live', 'dlq']) {
      $(`#view-${name}`).hidden = name !== view;
      $(`#tab-${name}`).classList.toggle('active', name === view);
    }
    if (view === 'dlq') loadDlq();
  }

  function setStatus(text) {
    const node = $('#status');
    node.textContent = text;
    node.className = text === 'live' ? 'live' : 'reconnecting';
  }

  function connect() {
    const source = new EventSource('/api/stream');
    source.addEventListener('open', () => { setStatus('live'); loadState(); });
    source.addEventListener('error', () => setStatus('reconnecting'));
    source.addEventListener('job', (e) => upsert(JSON.parse(e.data)));
    source.addEventListener('throughput', (e) => renderChart(JSON.parse(e.data)));
    source.addEventListener('queues', (e) => renderQueues(JSON.parse(e.data)));
    source.addEventListener('dlq', () => { if (state.view === 'dlq') loadDlq(); });
    source.addEventListener('resync', () => loadState());
    source.addEventListener('broker', (e) => setStatus(JSON.parse(e.data).connected ? 'live' : 'broker unreachable'));
  }

  let filterTimer = null;
  for (const name of ['namespace', 'script', 'code']) {
    $(`#filter-${name}`).addEventListener('input', (e) => {
      state.filters[name] = e.target.value.trim();
      clearTimeout(filterTimer);
      filterTimer = setTimeout(loadState, 250);
    });
  }
  $('#filter-clear').addEventListener('click', () => {
    for (const name of ['namespace', 'script', 'code']) {
      $(`#filter-${name}`).value = '';
      state.filters[name] = '';
    }
    loadState();
  });
  document.querySelectorAll('.tab').forEach((tab) => tab.addEventListener('click', () => show(tab.dataset.view)));
  $('#drawer-close').addEventListener('click', () => { $('#drawer').hidden = true; state.openJob = null; });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') $('#drawer-close').click(); });
  // Relative times stay true without a reload.
  setInterval(() => { renderInFlight(); renderOutcomes(); }, 10000);
  connect();
})();
