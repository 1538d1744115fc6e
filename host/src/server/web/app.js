// The stephost inspector: one page over the `/v1` API, routed by the URL's
// hash (#/runs, #/runs/ID, #/workflows, #/workflows/NAME, #/steps).
//
// Built on htm + Preact (vendored beside this file, no build step). Step
// output is hostile: every value from the API is rendered as a text child
// or an attribute value, which Preact escapes; nothing here sets innerHTML,
// and the server's Content-Security-Policy allows no inline script.
import { html, render, useState, useEffect, useRef } from './preact-htm.js';

const TOKEN_KEY = 'stephost.token';
const PAGE_SIZE = 50;
const REFRESH_MS = 10000;
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'exited'];

// ---- The API -------------------------------------------------------------

/** Thrown when the server refused the token; the page is back at sign-in. */
class Unauthorized extends Error {}

/** Set by the app: leaves for the sign-in form with a message. */
let signOutWith = () => {};

/** Calls `/v1{path}` with the session's token; the parsed JSON answer, or
 * an Error carrying the server's one-line `error`. */
async function api(path, { method = 'GET', body } = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  if (response.status === 401) {
    signOutWith('The server no longer accepts this token (401). Sign in again.');
    throw new Unauthorized('unauthorized');
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new Error((data && data.error) || `${method} /v1${path} answered HTTP ${response.status}`);
  }
  return data;
}

const enc = encodeURIComponent;

// ---- Live updates: GET /v1/events read with fetch() streaming -------------

const live = { state: 'connecting', events: 0, watchers: new Set(), listeners: new Set() };

function setLive(state) {
  live.state = state;
  live.watchers.forEach((f) => f());
}

/** Calls `listener(runSummary)` on each `run` event; returns the unsubscribe. */
function onRunEvent(listener) {
  live.listeners.add(listener);
  return () => live.listeners.delete(listener);
}

function dispatchBlock(block) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (name !== 'run' || data.length === 0) return;
  let summary;
  try {
    summary = JSON.parse(data.join('\n'));
  } catch {
    return;
  }
  live.events += 1;
  live.watchers.forEach((f) => f());
  live.listeners.forEach((f) => f(summary));
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Reads the event stream until `signal` aborts, reconnecting when it drops. */
async function streamEvents(signal) {
  while (!signal.aborted) {
    let wait = 3000;
    try {
      const response = await fetch('/v1/events', {
        headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ''}`, Accept: 'text/event-stream' },
        cache: 'no-store',
        signal,
      });
      if (response.status === 401) {
        signOutWith('The server no longer accepts this token (401). Sign in again.');
        return;
      }
      if (!response.ok || !response.body) {
        setLive('unavailable');
        wait = 30000;
      } else {
        setLive('live');
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = (buffer + value).replace(/\r\n?/g, '\n');
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            dispatchBlock(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
        setLive('reconnecting');
      }
    } catch {
      if (signal.aborted) return;
      setLive('reconnecting');
    }
    await sleep(wait, signal);
  }
}

function useLive() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const watch = () => setTick((n) => n + 1);
    live.watchers.add(watch);
    return () => live.watchers.delete(watch);
  }, []);
  return live;
}

/** Loads `load()` for `key`, again every 10 s while `poll(data)` holds and
 * on each run event `onEvent(summary)` accepts (a burst of events makes one
 * reload). Keeps showing the last answer while reloading. */
function useData(key, load, { onEvent = null, poll = () => true } = {}) {
  const [state, setState] = useState({ key, data: null, error: null });
  const current = useRef({});
  current.current = { load, onEvent, poll };
  const shown = useRef(null);
  const reloadRef = useRef(() => {});
  useEffect(() => {
    let gone = false;
    let pending = null;
    let latest = 0;
    const reload = async () => {
      const mine = ++latest;
      try {
        const data = await current.current.load();
        if (gone || mine !== latest) return;
        shown.current = data;
        setState({ key, data, error: null });
      } catch (e) {
        if (gone || mine !== latest || e instanceof Unauthorized) return;
        setState({ key, data: shown.current, error: e.message });
      }
    };
    reloadRef.current = reload;
    shown.current = null;
    reload();
    const timer = setInterval(() => {
      if (!document.hidden && current.current.poll(shown.current)) reload();
    }, REFRESH_MS);
    const off = onRunEvent((summary) => {
      const wants = current.current.onEvent;
      if (!wants || !wants(summary) || pending) return;
      pending = setTimeout(() => {
        pending = null;
        reload();
      }, 500);
    });
    return () => {
      gone = true;
      clearInterval(timer);
      clearTimeout(pending);
      off();
    };
  }, [key]);
  const fresh = state.key === key ? state : { key, data: null, error: null };
  return { ...fresh, reload: () => reloadRef.current() };
}

// ---- Routing ---------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/runs';
  const question = raw.indexOf('?');
  const path = question < 0 ? raw : raw.slice(0, question);
  const query = new URLSearchParams(question < 0 ? '' : raw.slice(question + 1));
  const parts = path
    .split('/')
    .filter(Boolean)
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { parts, query };
}

function useRoute() {
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const changed = () => setRoute(parseHash());
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}

function go(path) {
  location.hash = path;
}

function runsHash({ workflow = '', status = '', before = '', limit = '' }) {
  const q = new URLSearchParams();
  if (workflow) q.set('workflow', workflow);
  if (status) q.set('status', status);
  if (limit) q.set('limit', limit);
  if (before) q.set('before', before);
  const s = q.toString();
  return s ? `#/runs?${s}` : '#/runs';
}

// ---- Formatting ------------------------------------------------------------

const pad = (n, width = 2) => String(n).padStart(width, '0');

function dateTime(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toLocaleString();
}

function timeOfDay(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function ago(ms) {
  if (ms === null || ms === undefined) return '—';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms * 10) / 10} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function runDuration(run) {
  if (run.started_ms && run.finished_ms) return duration(run.finished_ms - run.started_ms);
  if (run.started_ms && run.status === 'running') return `${duration(Date.now() - run.started_ms)} so far`;
  return '—';
}

function bytes(n) {
  if (n === null || n === undefined) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

function json(value) {
  return JSON.stringify(value, null, 2) ?? 'undefined';
}

// ---- Small parts -------------------------------------------------------------

function Status({ status }) {
  return html`<span class=${`badge status-${STATUSES.includes(status) ? status : 'other'}`}>${status}</span>`;
}

function RunLink({ id }) {
  return html`<a class="mono" href=${`#/runs/${enc(id)}`}>${id}</a>`;
}

function ErrorLine({ message }) {
  return message ? html`<p class="error" role="alert">${message}</p>` : null;
}

/** A JSON value as text; a long one is cut until asked for. */
function Json({ value, className = '' }) {
  const [all, setAll] = useState(false);
  const text = json(value);
  const limit = 20000;
  const cut = !all && text.length > limit;
  return html`<div class=${`json ${className}`}>
    <pre>${cut ? text.slice(0, limit) : text}</pre>
    ${cut && html`<button class="link" onClick=${() => setAll(true)}>Show all ${bytes(text.length)}</button>`}
  </div>`;
}

function Loading({ what }) {
  return html`<p class="muted">Loading ${what}…</p>`;
}

// ---- Sign-in ------------------------------------------------------------------

function SignIn({ notice, onSignedIn }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    const token = value.trim();
    if (!token) {
      setError('Paste the API token first.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      const response = await fetch('/v1/workflows', {
        headers: { Authorization: `Bearer ${token}` },
        cache: 'no-store',
      });
      if (response.status === 401) {
        setError('The server refused that token (401). Use the token `stephost serve` printed on its first start, or STEPHOST_API_TOKEN.');
      } else if (!response.ok) {
        setError(`The server answered HTTP ${response.status}; try again.`);
      } else {
        onSignedIn(token);
        return;
      }
    } catch (e) {
      setError(`Cannot reach the server: ${e.message}`);
    }
    setBusy(false);
  }
  return html`<main class="signin">
    <form onSubmit=${submit}>
      <h1>stephost</h1>
      <p>Sign in with the server's API token. It is kept for this browser tab only.</p>
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" autofocus
        value=${value} onInput=${(e) => setValue(e.target.value)} />
      <${ErrorLine} message=${error} />
      <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </main>`;
}

// ---- The frame -------------------------------------------------------------------

function LiveBadge() {
  const { state, events } = useLive();
  const words = {
    connecting: 'connecting…',
    live: 'live',
    reconnecting: 'reconnecting…',
    unavailable: 'refreshing every 10 s',
  };
  const title = state === 'live' ? 'Runs update as they happen' : 'Live updates are not available; pages refresh every 10 s';
  return html`<span id="live" class=${`live live-${state}`} data-state=${state} data-events=${events} title=${title}>${words[state] || state}</span>`;
}

function Shell({ onSignOut }) {
  const route = useRoute();
  const [section, id] = route.parts;
  let page;
  if (section === 'runs' && id) page = html`<${RunPage} key=${id} id=${id} />`;
  else if (section === 'workflows' && id) page = html`<${WorkflowPage} key=${id} name=${id} />`;
  else if (section === 'workflows') page = html`<${WorkflowsPage} />`;
  else if (section === 'steps') page = html`<${StepsPage} />`;
  else page = html`<${RunsPage} query=${route.query} />`;
  const current = section === 'workflows' || section === 'steps' ? section : 'runs';
  const link = (name, label) =>
    html`<a href=${`#/${name}`} aria-current=${current === name ? 'page' : undefined}>${label}</a>`;
  return html`<div class="frame">
    <header class="top">
      <a class="brand" href="#/runs">stephost</a>
      <nav>${link('runs', 'Runs')}${link('workflows', 'Workflows')}${link('steps', 'Steps')}</nav>
      <span class="spacer"></span>
      <${LiveBadge} />
      <button class="link" onClick=${onSignOut}>Sign out</button>
    </header>
    ${page}
  </div>`;
}

// ---- Runs ------------------------------------------------------------------------

function RunsTable({ runs, showWorkflow = true }) {
  if (!runs.length) return html`<p class="muted">No runs.</p>`;
  return html`<div class="table-wrap"><table class="runs cards">
    <thead><tr>
      <th>Run</th>${showWorkflow && html`<th>Workflow</th>`}<th>Version</th><th>Status</th>
      <th>Created</th><th>Duration</th><th>Attempt</th><th>Note</th>
    </tr></thead>
    <tbody>${runs.map(
      (r) => html`<tr key=${r.id} data-run=${r.id} data-status=${r.status}>
        <td data-label="Run"><${RunLink} id=${r.id} /></td>
        ${showWorkflow && html`<td data-label="Workflow"><a href=${`#/workflows/${enc(r.workflow)}`}>${r.workflow}</a></td>`}
        <td data-label="Version">${r.version ?? '—'}</td>
        <td data-label="Status"><${Status} status=${r.status} /></td>
        <td data-label="Created" title=${dateTime(r.created_ms)}>${ago(r.created_ms)}</td>
        <td data-label="Duration">${runDuration(r)}</td>
        <td data-label="Attempt">${r.attempt}</td>
        <td data-label="Note">
          ${r.failed_step && html`<span class="muted">failed at ${r.failed_step}</span> `}
          ${r.replay_of && html`<span class="muted">replay of <${RunLink} id=${r.replay_of} /></span>`}
          ${r.retry_at_ms && r.status === 'queued' && html`<span class="muted">retry ${ago(r.retry_at_ms)}</span>`}
        </td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

function clampLimit(text) {
  const n = Number.parseInt(text || '', 10);
  return Number.isFinite(n) && n >= 1 && n <= 1000 ? n : PAGE_SIZE;
}

function RunsPage({ query }) {
  const workflow = query.get('workflow') || '';
  const status = query.get('status') || '';
  const before = query.get('before') || '';
  const limitText = query.get('limit') || '';
  const limit = clampLimit(limitText);
  const params = new URLSearchParams();
  if (workflow) params.set('workflow', workflow);
  if (status) params.set('status', status);
  params.set('limit', String(limit));
  if (before) params.set('before', before);
  const key = params.toString();
  const runs = useData(key, () => api(`/runs?${key}`), {
    onEvent: (s) => !workflow || s.workflow === workflow,
  });
  const workflows = useData('workflows', () => api('/workflows'), { poll: () => false });
  useEffect(() => {
    document.title = 'Runs · stephost';
  }, []);
  const names = (workflows.data?.workflows || []).map((w) => w.name);
  if (workflow && !names.includes(workflow)) names.push(workflow);
  const filter = (change) => go(runsHash({ workflow, status, limit: limitText, ...change, before: '' }));
  const next = runs.data?.next;
  return html`<main class="page" data-page="runs">
    <h1>Runs</h1>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label>Workflow
        <select name="workflow" value=${workflow} onChange=${(e) => filter({ workflow: e.target.value })}>
          <option value="">all</option>
          ${names.map((n) => html`<option value=${n}>${n}</option>`)}
        </select>
      </label>
      <label>Status
        <select name="status" value=${status} onChange=${(e) => filter({ status: e.target.value })}>
          <option value="">all</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
    </form>
    <${ErrorLine} message=${runs.error} />
    ${runs.data ? html`<${RunsTable} runs=${runs.data.runs} />` : !runs.error && html`<${Loading} what="runs" />`}
    <nav class="pager" aria-label="Pages">
      ${before && html`<a href=${runsHash({ workflow, status, limit: limitText })}>Newest</a>`}
      ${next && html`<a rel="next" href=${runsHash({ workflow, status, limit: limitText, before: next })}>Older →</a>`}
    </nav>
  </main>`;
}

// ---- One run -----------------------------------------------------------------------

const isActive = (status) => status === 'queued' || status === 'running';

function RunPage({ id }) {
  const run = useData(`run:${id}`, () => api(`/runs/${enc(id)}`), {
    onEvent: (s) => s.id === id,
    poll: (data) => !data || isActive(data.status),
  });
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState('');
  useEffect(() => {
    document.title = `Run ${id} · stephost`;
  }, [id]);
  async function replay(body) {
    setBusy(true);
    setActionError('');
    try {
      const queued = await api(`/runs/${enc(id)}/replay`, { method: 'POST', body });
      go(`/runs/${enc(queued.run)}`);
    } catch (e) {
      if (!(e instanceof Unauthorized)) setActionError(e.message);
      setBusy(false);
    }
  }
  const r = run.data;
  if (!r) {
    return html`<main class="page"><h1>Run <span class="mono">${id}</span></h1>
      <${ErrorLine} message=${run.error} />${!run.error && html`<${Loading} what="the run" />`}</main>`;
  }
  const outcome = r.outcome || null;
  const steps = outcome?.steps || [];
  const failedStep = r.status === 'failed' && outcome?.status === 'failed' ? outcome.step || '' : '';
  const answered = steps.find((s) => s.response);
  return html`<main class="page run" data-run=${r.id} data-status=${r.status}>
    <div class="title-row">
      <h1>Run <span class="mono">${r.id}</span></h1>
      <${Status} status=${r.status} />
      <span class="spacer"></span>
      <div class="actions">
        <button onClick=${() => replay(undefined)} disabled=${busy}
          title="Run the same event again against the workflow's newest version">Replay</button>
        ${failedStep && html`<button onClick=${() => replay({ from_step: failedStep })} disabled=${busy}
          title=${`Reuse the stored results of the steps before ${failedStep}; run ${failedStep} and after again`}>Replay from failed step</button>`}
      </div>
    </div>
    <${ErrorLine} message=${actionError} />
    <${ErrorLine} message=${run.error} />
    <dl class="facts">
      <dt>Workflow</dt><dd><a href=${`#/workflows/${enc(r.workflow)}`}>${r.workflow}</a></dd>
      <dt>Version</dt><dd>${r.version ?? '—'}</dd>
      <dt>Attempt</dt><dd>${r.attempt}</dd>
      <dt>Created</dt><dd>${dateTime(r.created_ms)}</dd>
      <dt>Started</dt><dd>${dateTime(r.started_ms)}</dd>
      <dt>Finished</dt><dd>${dateTime(r.finished_ms)}</dd>
      <dt>Duration</dt><dd>${outcome?.duration_ms != null ? duration(outcome.duration_ms) : runDuration(r)}</dd>
      ${r.replay_of && html`<dt>Replay of</dt><dd><${RunLink} id=${r.replay_of} /></dd>`}
      ${r.retry_at_ms && html`<dt>Retry at</dt><dd>${dateTime(r.retry_at_ms)}</dd>`}
    </dl>
    ${outcome?.status === 'failed' &&
    html`<p class="outcome outcome-failed">Failed${outcome.step ? html` at step <strong>${outcome.step}</strong>` : ' before any step ran'}: ${outcome.error}</p>`}
    ${outcome?.status === 'exited' &&
    html`<p class="outcome outcome-exited">Exited at step <strong>${outcome.step}</strong>: ${outcome.reason}</p>`}
    <section class="block event">
      <h2>Event</h2>
      <${Json} value=${r.event} />
    </section>
    <section class="block caller">
      <h2>Response to the caller</h2>
      ${answered
        ? html`<p class="muted">Set by step <strong>${answered.step}</strong> with flow.respond.</p><${Response} response=${answered.response} />`
        : html`<p class="muted">No step set a response${isActive(r.status) ? ' yet' : ''}; an HTTP trigger answered with the run id (or, for a workflow that waits, with how the run ended).</p>`}
    </section>
    <h2>Steps</h2>
    ${steps.length === 0 && html`<p class="muted">${isActive(r.status) ? 'No step has finished yet.' : 'No step ran.'}</p>`}
    <ol class="steps">${steps.map((s, i) => html`<li key=${`${i}:${s.step}`}><${Step} step=${s} index=${i} /></li>`)}</ol>
    ${r.status === 'running' && html`<p class="muted">Running… this page updates as steps finish.</p>`}
  </main>`;
}

function Response({ response }) {
  return html`<div class="response">
    <p><span class="badge">HTTP ${response.status}</span></p>
    ${response.headers.length > 0 &&
    html`<table class="kv"><tbody>${response.headers.map(
      ([name, value]) => html`<tr><th>${name}</th><td class="mono">${value}</td></tr>`,
    )}</tbody></table>`}
    <pre class="body">${response.body}</pre>
  </div>`;
}

function Step({ step, index }) {
  // `result` is `{"return_value": …}` or `{"error": {message, detail}}`.
  const result = step.result || {};
  const failed = result.error !== undefined;
  const exports = Object.entries(step.exports || {});
  const logs = step.logs || [];
  const egress = step.egress || [];
  return html`<section class=${`step ${failed ? 'step-failed' : ''}`} data-step=${step.step}>
    <header>
      <h3><span class="step-index">${index + 1}</span> ${step.step}</h3>
      <span class=${`badge ${failed ? 'status-failed' : 'status-succeeded'}`}>${failed ? 'error' : 'ok'}</span>
      <span class="muted">${duration(step.duration_ms)}</span>
      ${step.reused_from &&
      html`<span class="reused" data-reused-from=${step.reused_from}>reused from <${RunLink} id=${step.reused_from} /></span>`}
    </header>
    ${failed &&
    html`<div class="step-error"><h4>Error</h4><pre>${result.error.message}</pre>
      ${result.error.detail?.backtrace && html`<details><summary>wasm backtrace</summary><pre>${result.error.detail.backtrace}</pre></details>`}</div>`}
    ${step.exit != null && html`<p class="outcome outcome-exited">Called flow.exit: ${step.exit}</p>`}
    ${!failed && html`<h4>Return value</h4><${Json} className="return-value" value=${result.return_value} />`}
    ${exports.length > 0 &&
    html`<h4>Exports</h4><dl class="exports">${exports.map(
      ([name, value]) => html`<dt class="mono">${name}</dt><dd><${Json} value=${value} /></dd>`,
    )}</dl>`}
    <h4>Logs</h4>
    ${logs.length === 0
      ? html`<p class="muted">No output.</p>`
      : html`<ol class="logs">${logs.map(
          (line) => html`<li class=${`log-line stream-${line.stream}`} data-stream=${line.stream}>
            <time title=${dateTime(line.at_ms)}>${timeOfDay(line.at_ms)}</time>
            <span class="stream">${line.stream}</span>
            <span class="text">${line.text}</span>
          </li>`,
        )}</ol>`}
    ${step.logs_truncated && html`<p class="notice">Output past the step's log limit was dropped.</p>`}
    ${egress.length > 0 && html`<h4>HTTP requests</h4><${Egress} records=${egress} />`}
    ${step.response && html`<h4>Responded</h4><${Response} response=${step.response} />`}
  </section>`;
}

function Egress({ records }) {
  const defaultPort = (r) => (r.scheme === 'https' && r.port === 443) || (r.scheme === 'http' && r.port === 80);
  return html`<div class="table-wrap"><table class="egress cards">
    <thead><tr><th>Request</th><th>Host</th><th>Verdict</th><th>Status</th><th>Secrets swapped in</th><th>Sent / read</th><th>Time</th></tr></thead>
    <tbody>${records.map(
      (r) => html`<tr>
        <td data-label="Request" class="mono">${r.method} ${r.path}</td>
        <td data-label="Host" class="mono">${r.scheme ? `${r.scheme}://` : ''}${r.host}${r.port && !defaultPort(r) ? `:${r.port}` : ''}</td>
        <td data-label="Verdict"><span class=${`badge ${r.allowed ? 'status-succeeded' : 'status-failed'}`}>${r.allowed ? 'allowed' : 'refused'}</span>
          ${r.error && html`<div class="muted">${r.error}</div>`}</td>
        <td data-label="Status">${r.status ?? '—'}</td>
        <td data-label="Secrets" class="mono">${r.secrets && r.secrets.length ? r.secrets.join(', ') : '—'}</td>
        <td data-label="Sent / read">${bytes(r.bytes_out)} / ${bytes(r.bytes_in)}</td>
        <td data-label="Time">${duration(r.duration_ms)}</td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

// ---- Workflows ----------------------------------------------------------------------

function LastRuns({ runs, workflow }) {
  if (!runs) return html`<a href=${runsHash({ workflow })}>runs</a>`;
  if (!runs.length) return html`<span class="muted">none yet</span>`;
  return html`<span class="last-runs">${runs.map(
    (r) => html`<a class=${`dot status-${r.status}`} href=${`#/runs/${enc(r.id)}`}
      title=${`${r.id}: ${r.status}, ${dateTime(r.created_ms)}`}>${r.status}</a>`,
  )}</span>`;
}

function endpointUrl(endpoint) {
  return `${location.origin}${endpoint}`;
}

function WorkflowsPage() {
  const list = useData('workflows', () => api('/workflows'), { onEvent: () => true });
  useEffect(() => {
    document.title = 'Workflows · stephost';
  }, []);
  const workflows = list.data?.workflows;
  return html`<main class="page" data-page="workflows">
    <h1>Workflows</h1>
    <${ErrorLine} message=${list.error} />
    ${!workflows
      ? !list.error && html`<${Loading} what="workflows" />`
      : workflows.length === 0
        ? html`<p class="muted">Nothing is deployed. Upload a step and deploy a workflow (see the README).</p>`
        : html`<div class="table-wrap"><table class="workflows cards">
            <thead><tr><th>Name</th><th>Version</th><th>Endpoint</th><th>Schedule</th><th>Last runs</th></tr></thead>
            <tbody>${workflows.map(
              (w) => html`<tr key=${w.name} data-workflow=${w.name}>
                <td data-label="Name"><a href=${`#/workflows/${enc(w.name)}`}>${w.name}</a></td>
                <td data-label="Version">${w.version}</td>
                <td data-label="Endpoint" class="mono">${endpointUrl(w.endpoint)}${w.respond ? ' (waits for a response)' : ''}</td>
                <td data-label="Schedule">${w.schedule || '—'}${w.next_run && html`<div class="muted">next ${w.next_run}</div>`}</td>
                <td data-label="Last runs"><${LastRuns} runs=${w.last_runs} workflow=${w.name} /></td>
              </tr>`,
            )}</tbody>
          </table></div>`}
  </main>`;
}

function WorkflowPage({ name }) {
  const workflow = useData(`workflow:${name}`, () => api(`/workflows/${enc(name)}`), {
    onEvent: (s) => s.workflow === name,
  });
  const versions = useData(`versions:${name}`, () => api(`/workflows/${enc(name)}/versions`), { poll: () => false });
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState(null);
  const [actionError, setActionError] = useState('');
  useEffect(() => {
    document.title = `${name} · stephost`;
  }, [name]);
  async function replayFailed() {
    setBusy(true);
    setActionError('');
    try {
      const answer = await api(`/workflows/${enc(name)}/replay-failed`, { method: 'POST' });
      setResult(answer.replays || []);
      workflow.reload();
    } catch (e) {
      if (!(e instanceof Unauthorized)) setActionError(e.message);
    }
    setBusy(false);
    setConfirming(false);
  }
  const w = workflow.data;
  return html`<main class="page" data-page="workflow" data-workflow=${name}>
    <div class="title-row">
      <h1>${name}</h1>
      <span class="spacer"></span>
      <div class="actions">
        <a class="button" href=${runsHash({ workflow: name })}>All runs</a>
        <a class="button" href=${runsHash({ workflow: name, status: 'failed' })}>Failed runs</a>
        ${confirming
          ? html`<span class="confirm">Replay every failed run against the newest version?
              <button onClick=${replayFailed} disabled=${busy}>Yes, replay them</button>
              <button class="link" onClick=${() => setConfirming(false)}>Cancel</button></span>`
          : html`<button onClick=${() => setConfirming(true)}>Replay all failed</button>`}
      </div>
    </div>
    <${ErrorLine} message=${actionError} />
    ${result &&
    html`<div class="notice" role="status">${result.length === 0
      ? 'No failed runs to replay.'
      : html`Queued ${result.length} replay${result.length === 1 ? '' : 's'}:
          ${result.map((q) => html` <${RunLink} id=${q.run} />`)}`}</div>`}
    <${ErrorLine} message=${workflow.error} />
    ${!w
      ? !workflow.error && html`<${Loading} what="the workflow" />`
      : html`<dl class="facts">
          <dt>Version</dt><dd>${w.version}</dd>
          <dt>Endpoint</dt><dd class="mono">${endpointUrl(w.endpoint)}</dd>
          <dt>Answers</dt><dd>${w.respond ? 'with a step’s flow.respond' : 'at once, with the run id'}</dd>
          <dt>Retries</dt><dd>${w.retries}</dd>
          <dt>Schedule</dt><dd>${w.schedule || '—'}${w.next_run ? `, next ${w.next_run}` : ''}</dd>
          ${w.cors && w.cors.length > 0 && html`<dt>CORS</dt><dd class="mono">${w.cors.join(', ')}</dd>`}
        </dl>
        <section class="block">
          <h2>Last runs</h2>
          ${w.last_runs ? html`<${RunsTable} runs=${w.last_runs} showWorkflow=${false} />` : html`<a href=${runsHash({ workflow: name })}>See its runs</a>`}
        </section>`}
    <section class="block versions">
      <h2>Versions</h2>
      <${ErrorLine} message=${versions.error} />
      ${versions.data
        ? html`<ol class="version-list">${versions.data.versions.map(
            (v, i) => html`<li key=${v.version}><details open=${i === 0}>
              <summary>Version ${v.version} <span class="muted">${dateTime(v.created_ms)}</span></summary>
              <pre class="definition">${v.definition}</pre>
            </details></li>`,
          )}</ol>`
        : w && versions.error && html`<pre class="definition">${w.definition}</pre>`}
    </section>
  </main>`;
}

// ---- Steps ------------------------------------------------------------------------------

function StepsPage() {
  const list = useData('steps', () => api('/steps'), { poll: () => false });
  useEffect(() => {
    document.title = 'Steps · stephost';
  }, []);
  const steps = list.data?.steps;
  return html`<main class="page" data-page="steps">
    <h1>Steps</h1>
    <${ErrorLine} message=${list.error} />
    ${!steps
      ? !list.error && html`<${Loading} what="steps" />`
      : steps.length === 0
        ? html`<p class="muted">No step is uploaded.</p>`
        : html`<div class="table-wrap"><table class="steps-table cards">
            <thead><tr><th>Name</th><th>ID</th><th>Size</th><th>Used by</th><th>Uploaded</th></tr></thead>
            <tbody>${steps.map(
              (s) => html`<tr key=${s.id} data-step-id=${s.id}>
                <td data-label="Name">${s.name || html`<span class="muted">unnamed</span>`}</td>
                <td data-label="ID" class="mono" title=${s.id}>${s.id.slice(0, 12)}</td>
                <td data-label="Size">${bytes(s.size)}</td>
                <td data-label="Used by">${s.used_by
                  ? s.used_by.length
                    ? s.used_by.map((w, i) => html`${i ? ', ' : ''}<a href=${`#/workflows/${enc(w)}`}>${w}</a>`)
                    : html`<span class="muted">no workflow</span>`
                  : '—'}</td>
                <td data-label="Uploaded">${dateTime(s.uploaded_ms ?? s.created_ms)}</td>
              </tr>`,
            )}</tbody>
          </table></div>`}
  </main>`;
}

// ---- The app ------------------------------------------------------------------------------

function App() {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY));
  const [notice, setNotice] = useState('');
  signOutWith = (message) => {
    sessionStorage.removeItem(TOKEN_KEY);
    setNotice(message);
    setToken(null);
  };
  useEffect(() => {
    if (!token) return undefined;
    const stop = new AbortController();
    live.events = 0;
    setLive('connecting');
    streamEvents(stop.signal);
    return () => stop.abort();
  }, [token]);
  if (!token) {
    return html`<${SignIn} notice=${notice} onSignedIn=${(t) => {
      sessionStorage.setItem(TOKEN_KEY, t);
      setNotice('');
      setToken(t);
    }} />`;
  }
  return html`<${Shell} onSignOut=${() => signOutWith('Signed out.')} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
