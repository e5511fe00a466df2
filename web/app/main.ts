/**
 * The page fay web serves: a query editor (Tab completes, errors show their caret), live results
 * over the socket (the latest window as a table, every window as a point of a time-series chart),
 * coverage and notices, Stop, and the results as JSON. It formats cells as the terminal does.
 */
import uPlot from 'uplot';
import type { QueryMessage, ResultMessage } from '../../src/cluster/cluster-stage.js';
import { formatCell } from '../../src/output/format.js';
import type { ClusterView, PageError, PageMessage, ServerMessage } from '../../src/web/protocol.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const query = $<HTMLTextAreaElement>('query');
const runButton = $<HTMLButtonElement>('run');
const stopButton = $<HTMLButtonElement>('stop');
const explainButton = $<HTMLButtonElement>('explain');
const downloadButton = $<HTMLButtonElement>('download');
const state = $('state');
const completions = $<HTMLUListElement>('completions');

let socket: WebSocket | undefined;
let nextId = 1;
/** The query running (its id), what it said, and the text it ran. */
let current: { id: string; text: string; messages: QueryMessage[] } | undefined;
const pendingCompletions = new Map<string, number>();

function send(message: PageMessage): void {
  socket?.send(JSON.stringify(message));
}

function connect(): void {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/socket`);
  socket = ws;
  ws.onopen = () => {
    $('connection').textContent = 'connected';
    askCluster();
  };
  ws.onclose = () => {
    $('connection').textContent = 'disconnected: reconnecting…';
    if (current) finish('the connection closed');
    setTimeout(connect, 1000);
  };
  ws.onmessage = (event) => receive(JSON.parse(String(event.data)) as ServerMessage);
}

function receive(message: ServerMessage): void {
  switch (message.type) {
    case 'hello':
      $('where').textContent = `${message.cluster ? `cluster ${message.cluster}` : 'this machine'} · fay ${message.version}`;
      return;
    case 'attached':
      if (message.id === current?.id) state.textContent = 'running';
      return;
    case 'message':
      if (message.id === current?.id) show(message.message);
      return;
    case 'ended':
      if (message.id === current?.id) finish(`ended: ${message.reason}`);
      return;
    case 'error':
      if (message.id === current?.id || message.id === '') {
        showError(message.error, current?.text ?? query.value);
        finish('failed');
      } else showError(message.error, query.value);
      return;
    case 'completions':
      complete(message.id, message.candidates, message.replace);
      return;
    case 'cluster':
      renderCluster(message.view);
      return;
    case 'stopped':
      askCluster();
      return;
    case 'explained': {
      const pre = $('explanation');
      pre.textContent = message.text;
      pre.hidden = false;
      return;
    }
  }
}

/** A query's mistake: the message, what to do, and a caret under where it is in the query. */
function showError(error: PageError, text: string): void {
  $('error').hidden = false;
  $('error-message').textContent = error.message;
  $('error-hint').textContent = error.hint ?? '';
  let caret = '';
  if (error.start !== undefined) {
    const lineStart = text.lastIndexOf('\n', error.start - 1) + 1;
    const lineEnd = text.indexOf('\n', error.start);
    const line = text.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
    const width = Math.max(1, Math.min((error.end ?? error.start + 1) - error.start, line.length - (error.start - lineStart)));
    caret = `${line}\n${' '.repeat(error.start - lineStart)}${'^'.repeat(width)}`;
  }
  $('caret').textContent = caret;
  $('caret').dataset.column = error.start === undefined ? '' : String(error.start - (text.lastIndexOf('\n', error.start - 1) + 1) + 1);
}

function run(): void {
  if (current) send({ type: 'stop', id: current.id });
  const text = query.value;
  current = { id: `q${nextId++}`, text, messages: [] };
  $('error').hidden = true;
  $('explanation').hidden = true;
  $('notices').replaceChildren();
  $('coverage').textContent = '';
  resetChart();
  renderTable(undefined);
  state.textContent = 'attaching…';
  runButton.disabled = true;
  stopButton.disabled = false;
  downloadButton.disabled = false;
  send({ type: 'run', id: current.id, query: text });
}

function finish(why: string): void {
  state.textContent = why;
  runButton.disabled = false;
  stopButton.disabled = true;
}

function show(message: QueryMessage): void {
  current?.messages.push(message);
  switch (message.kind) {
    case 'result':
      renderTable(message);
      renderCoverage(message);
      if (message.complete) addPoint(message);
      return;
    case 'notice': {
      const li = document.createElement('li');
      li.textContent = `${message.host}: ${message.message}`;
      $('notices').append(li);
      return;
    }
    case 'events': {
      renderTable({ columns: message.columns.map((name) => ({ name, role: 'key' })), rows: [...lastEvents(message.rows)] });
      return;
    }
    case 'end':
      renderCoverageText(message.coverage.missing.length > 0 ? `missing: ${message.coverage.missing.join(', ')}` : '');
      return;
    case 'dump':
      return;
  }
}

/** The most recent events shown (the table keeps the last 200). */
const eventRows: unknown[][] = [];
function lastEvents(rows: readonly (readonly unknown[])[]): unknown[][] {
  eventRows.push(...rows.map((r) => [...r]));
  eventRows.splice(0, Math.max(0, eventRows.length - 200));
  return eventRows;
}

function renderTable(result: Pick<ResultMessage, 'columns' | 'rows'> | { columns: { name: string; role: string }[]; rows: unknown[][] } | undefined): void {
  const table = $<HTMLTableElement>('results');
  const head = table.tHead!;
  const body = table.tBodies[0]!;
  if (!result) {
    head.replaceChildren();
    body.replaceChildren();
    return;
  }
  const tr = document.createElement('tr');
  for (const c of result.columns) {
    const th = document.createElement('th');
    th.textContent = c.name;
    tr.append(th);
  }
  head.replaceChildren(tr);
  body.replaceChildren(
    ...result.rows.slice(0, 500).map((row) => {
      const line = document.createElement('tr');
      row.forEach((cell, i) => {
        const td = document.createElement('td');
        const unit = (result.columns[i] as { unit?: 'ns' } | undefined)?.unit;
        td.textContent = formatCell(cell as Parameters<typeof formatCell>[0], unit);
        if (typeof cell === 'number') td.className = 'number';
        line.append(td);
      });
      return line;
    }),
  );
}

function renderCoverage(result: ResultMessage): void {
  const c = result.coverage;
  if (!c) return renderCoverageText(`${result.hosts.join(', ')}`);
  const parts = [`${c.reporting.length}/${c.expected.length} hosts`];
  if (c.late.length > 0) parts.push(`late: ${c.late.join(', ')}`);
  if (c.missing.length > 0) parts.push(`missing: ${c.missing.join(', ')}`);
  renderCoverageText(parts.join(' · '));
}

function renderCoverageText(text: string): void {
  $('coverage').textContent = text;
}

/** The chart: one series per key (the first aggregate of the ten largest), a point per window. */
let chart: uPlot | undefined;
let series: string[] = [];
let times: number[] = [];
let values: (number | null)[][] = [];

function resetChart(): void {
  chart?.destroy();
  chart = undefined;
  series = [];
  times = [];
  values = [];
  $('chart').dataset.points = '0';
}

function addPoint(result: ResultMessage): void {
  const keys = result.columns.filter((c) => c.role === 'key').length;
  const first = result.columns.findIndex((c) => c.role === 'aggregate');
  if (first < 0) return;
  times.push(result.endNs / 1e9);
  const at = new Map(result.rows.map((r) => [keys === 0 ? result.columns[first]!.name : r.slice(0, keys).map(String).join(' '), r[first]]));
  for (const name of [...at.keys()].slice(0, 10)) {
    if (!series.includes(name) && series.length < 10) {
      series.push(name);
      values.push(times.slice(0, -1).map(() => null));
    }
  }
  series.forEach((name, i) => {
    const v = at.get(name);
    values[i]!.push(typeof v === 'number' ? v : null);
  });
  $('chart').dataset.points = String(times.length);
  const data: uPlot.AlignedData = [times, ...values];
  if (!chart || chart.series.length !== series.length + 1) {
    chart?.destroy();
    chart = new uPlot({ width: Math.min(900, document.body.clientWidth - 40), height: 240, series: [{}, ...series.map((label, i) => ({ label, stroke: `hsl(${(i * 67) % 360} 65% 45%)` }))] }, data, $('chart'));
  } else chart.setData(data);
}

/** Tab completion: the one candidate, or what all candidates share, goes in; several are listed. */
function askCompletion(): void {
  const id = `c${nextId++}`;
  pendingCompletions.set(id, query.selectionStart);
  send({ type: 'complete', id, text: query.value.slice(0, query.selectionStart) });
}

function complete(id: string, candidates: readonly string[], replace: number): void {
  const cursor = pendingCompletions.get(id);
  pendingCompletions.delete(id);
  if (cursor === undefined || candidates.length === 0) return;
  let shared = candidates[0]!;
  for (const c of candidates) while (!c.startsWith(shared)) shared = shared.slice(0, -1);
  if (shared.length > replace || candidates.length === 1) {
    query.setRangeText(shared, cursor - replace, cursor, 'end');
  }
  completions.hidden = candidates.length < 2;
  completions.replaceChildren(
    ...candidates.slice(0, 50).map((c) => {
      const li = document.createElement('li');
      li.textContent = c;
      return li;
    }),
  );
}

function download(): void {
  if (!current) return;
  const blob = new Blob([JSON.stringify({ query: current.text, messages: current.messages }, null, 2)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'fay-result.json';
  a.click();
  URL.revokeObjectURL(a.href);
}

/** The cluster: agents heard and the queries running or standing on them, each with a Stop. */
function askCluster(): void {
  send({ type: 'cluster', id: `k${nextId++}` });
}

function cells(values: readonly string[]): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const v of values) {
    const td = document.createElement('td');
    td.textContent = v;
    tr.append(td);
  }
  return tr;
}

function renderCluster(view: ClusterView): void {
  $('cluster-note').textContent = view.note ?? `${view.agents.length} agent${view.agents.length === 1 ? '' : 's'}`;
  $<HTMLTableElement>('agents').tBodies[0]!.replaceChildren(
    ...view.agents.map((a) => cells([a.host, a.version, a.kernel, `${(a.heardMsAgo / 1000).toFixed(1)} s ago`, String(a.queries)])),
  );
  $<HTMLTableElement>('cluster-queries').tBodies[0]!.replaceChildren(
    ...view.queries.map((q) => {
      const tr = cells([q.id, q.state, q.hosts.join(', '), q.log ?? '', q.rows === undefined ? '' : String(q.rows), q.text]);
      tr.dataset.query = q.id;
      const td = document.createElement('td');
      const stop = document.createElement('button');
      stop.textContent = 'Stop';
      stop.className = 'stop-query';
      stop.addEventListener('click', () => send({ type: 'stop-query', id: `s${nextId++}`, query: q.id }));
      td.append(stop);
      tr.append(td);
      return tr;
    }),
  );
}

$('refresh-cluster').addEventListener('click', askCluster);
setInterval(() => {
  if (socket?.readyState === WebSocket.OPEN && !document.hidden) askCluster();
}, 5000);
runButton.addEventListener('click', run);
stopButton.addEventListener('click', () => current && send({ type: 'stop', id: current.id }));
explainButton.addEventListener('click', () => send({ type: 'explain', id: `e${nextId++}`, query: query.value }));
downloadButton.addEventListener('click', download);
query.addEventListener('keydown', (event) => {
  if (event.key === 'Tab') {
    event.preventDefault();
    askCompletion();
  } else if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    run();
  } else completions.hidden = true;
});
connect();
