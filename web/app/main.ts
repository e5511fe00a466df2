/**
 * The page fay web serves: a query editor (FayQL coloured, Tab completes, errors show their
 * caret), live results over the socket (the latest window as a table with histograms and
 * quantiles drawn, every window a point of a time-series chart, a flame graph for a count by a
 * stack, the categories of a categorize query as a scatter plot), coverage and notices, Stop,
 * Pause, a time range for history queries, and what is on screen as JSON; and the cluster's
 * agents and queries. It formats cells as the terminal does.
 */
// The page's styles, uPlot's and d3-flame-graph's (which it imports itself) go into one app.css.
import 'uplot/dist/uPlot.min.css';
import '../app.css';
import type { QueryMessage, ResultMessage } from '../../src/cluster/cluster-stage.js';
import type { ServerMessage } from '../../src/web/protocol.js';
import { CategoryView, isCategories } from './categories.js';
import { cellElement } from './cells.js';
import { TimeChart } from './chart.js';
import { renderCluster } from './cluster.js';
import { Connection } from './connection.js';
import { Editor } from './editor.js';
import { FlameView } from './flame.js';
import { isStackResult } from './stacks.js';
import { withRange } from './range.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const runButton = $<HTMLButtonElement>('run');
const stopButton = $<HTMLButtonElement>('stop');
const pauseButton = $<HTMLButtonElement>('pause');
const downloadButton = $<HTMLButtonElement>('download');
const state = $('state');

let nextId = 1;
/** Notices kept (the list on the page, and Download JSON). */
const MAX_NOTICES = 200;

/**
 * The query running: its id, the text it ran, and what the page shows of it (the latest result,
 * the notices, the end); the chart keeps its points. Bounded: a page left open on a busy query for
 * a day holds what it shows, not every window that came. Paused: what comes updates this, and the
 * view is drawn from it on Resume.
 */
let current:
  | { id: string; text: string; latest: ResultMessage | undefined; notices: string[]; end: QueryMessage | undefined; paused: boolean; waiting: number }
  | undefined;

const connection = new Connection(receive, (text, retries) => {
  $('connection').textContent = text;
  $('connection').dataset.retries = String(retries);
  if (text === 'connected') askCluster();
});
const editor = new Editor((text) => {
  const id = `c${nextId++}`;
  connection.send({ type: 'complete', id, text });
  return id;
}, run);
const chart = new TimeChart($('chart'));
const flame = new FlameView($('flame'), $<HTMLInputElement>('flame-search'), $<HTMLButtonElement>('flame-reset'));
const categories = new CategoryView($('categories'));

function receive(message: ServerMessage): void {
  switch (message.type) {
    case 'hello':
      $('where').textContent = `${message.cluster ? `cluster ${message.cluster}` : 'this machine'} · fay ${message.version}`;
      // The server did not know this page any more (it restarted, or the page was away too long): its query is gone.
      if (!message.resumed && current && runButton.disabled) finish('the connection was lost and the query with it: run it again');
      return;
    case 'attached':
      if (message.id === current?.id) state.textContent = 'running';
      return;
    case 'message':
      if (message.id === current?.id) take(message.message);
      return;
    case 'ended':
      if (message.id === current?.id) finish(`ended: ${message.reason}`);
      return;
    case 'error':
      if (message.id === current?.id || message.id === '') {
        editor.showError(message.error, current?.text ?? editor.value);
        if (message.id === current?.id) finish('failed');
      } else editor.showError(message.error, editor.value);
      return;
    case 'lost':
      notice(`(page): ${message.messages} message${message.messages === 1 ? '' : 's'} of the query came while the page was away and are no longer kept`);
      return;
    case 'completions':
      editor.complete(message.id, message.candidates, message.replace);
      return;
    case 'cluster':
      renderCluster(message.view, (query) => connection.send({ type: 'stop-query', id: `s${nextId++}`, query }));
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

function run(): void {
  if (current) connection.send({ type: 'stop', id: current.id });
  const text = withRange(editor.value, $<HTMLSelectElement>('range').value, $<HTMLInputElement>('range-from').value, $<HTMLInputElement>('range-to').value);
  current = { id: `q${nextId++}`, text, latest: undefined, notices: [], end: undefined, paused: false, waiting: 0 };
  $('effective').textContent = text === editor.value ? '' : `runs: ${text}`;
  editor.hideError();
  $('explanation').hidden = true;
  $('notices').replaceChildren();
  $('coverage').textContent = '';
  $('paused').hidden = true;
  chart.reset();
  flame.clear();
  categories.clear();
  eventRows.length = 0;
  renderTable(undefined);
  state.textContent = 'attaching…';
  runButton.disabled = true;
  stopButton.disabled = false;
  pauseButton.disabled = false;
  pauseButton.textContent = 'Pause';
  downloadButton.disabled = false;
  connection.send({ type: 'run', id: current.id, query: text });
}

function finish(why: string): void {
  state.textContent = why;
  runButton.disabled = false;
  stopButton.disabled = true;
  if (current?.paused) togglePause();
  pauseButton.disabled = true;
}

/** Pause keeps the view as it is while the query runs on; Resume draws what came meanwhile. */
function togglePause(): void {
  if (!current) return;
  current.paused = !current.paused;
  pauseButton.textContent = current.paused ? 'Resume' : 'Pause';
  $('paused').hidden = !current.paused;
  $('paused').textContent = 'paused';
  if (current.paused) return;
  current.waiting = 0;
  chart.redraw();
  if (current.latest) renderResult(current.latest);
  $('notices').replaceChildren(...current.notices.map(noticeItem));
  if (current.end?.kind === 'end') renderCoverage(current.end.coverage, current.end.complete ? 'complete' : 'incomplete');
}

function take(message: QueryMessage): void {
  if (!current) return;
  const live = !current.paused;
  switch (message.kind) {
    case 'result':
      current.latest = message;
      // A chart point for each closed window, drawn now or on Resume.
      if (message.complete && !isStackResult(message)) chart.add(message, live);
      if (live) renderResult(message);
      break;
    case 'notice': {
      const text = `${message.host}: ${message.message}`;
      current.notices.push(text);
      if (current.notices.length > MAX_NOTICES) current.notices.shift();
      if (live) $('notices').append(noticeItem(text));
      break;
    }
    case 'events':
      lastEvents(message.rows);
      if (live) renderTable({ columns: message.columns.map((name) => ({ name, role: 'key' })), rows: eventRows });
      break;
    case 'end':
      current.end = message;
      if (live) renderCoverage(message.coverage, message.complete ? 'complete' : 'incomplete');
      break;
    case 'dump':
      if (live) renderTable({ columns: message.columns.map((name) => ({ name, role: 'key' })), rows: message.rows.map((r) => [...r]) });
      break;
  }
  if (!live) {
    current.waiting++;
    $('paused').textContent = `paused: ${current.waiting} update${current.waiting === 1 ? '' : 's'} waiting`;
  }
}

function noticeItem(text: string): HTMLLIElement {
  const li = document.createElement('li');
  li.textContent = text;
  return li;
}

function notice(text: string): void {
  current?.notices.push(text);
  $('notices').append(noticeItem(text));
}

function renderResult(result: ResultMessage): void {
  renderTable(result);
  if (result.coverage) renderCoverage(result.coverage);
  else $('coverage').textContent = result.hosts.join(', ');
  // A stack result is drawn as a flame graph; a chart of its stacks over time says little.
  if (isStackResult(result)) flame.show(result);
  if (isCategories(result)) categories.show(result);
}

/** The most recent events shown (the table keeps the last 200). */
const eventRows: unknown[][] = [];
function lastEvents(rows: readonly (readonly unknown[])[]): void {
  eventRows.push(...rows.map((r) => [...r]));
  eventRows.splice(0, Math.max(0, eventRows.length - 200));
}

type Shown = Pick<ResultMessage, 'columns' | 'rows'> | { columns: { name: string; role: 'key' }[]; rows: unknown[][] };

function renderTable(result: Shown | undefined): void {
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
      row.forEach((cell, i) => line.append(cellElement(cell as Parameters<typeof cellElement>[0], result.columns[i])));
      return line;
    }),
  );
  $('more-rows').textContent = result.rows.length > 500 ? `the first 500 of ${result.rows.length} rows (Download JSON has them all)` : '';
}

/** Who is in a window: hosts expected, reporting, late and missing, named. */
function renderCoverage(c: NonNullable<ResultMessage['coverage']>, end?: string): void {
  const box = $('coverage');
  box.replaceChildren();
  const part = (text: string, className?: string) => {
    const span = document.createElement('span');
    span.textContent = text;
    if (className) span.className = className;
    box.append(span);
  };
  part(`${end ? `${end}: ` : ''}${c.reporting.length} of ${c.expected.length} host${c.expected.length === 1 ? '' : 's'} reporting${c.expected.length <= 12 ? ` (${c.reporting.join(', ')})` : ''}`);
  if (c.late.length > 0) part(` · late: ${c.late.join(', ')}`, 'late');
  if (c.missing.length > 0) part(` · missing: ${c.missing.join(', ')}`, 'missing');
  for (const gap of c.gaps ?? []) part(` · ${gap.host} missing ${((gap.endNs - gap.startNs) / 1e9).toFixed(1)} s: ${gap.reason}`, 'missing');
}

/** What is on screen, as JSON: the query, its latest result, the chart's windows, the notices, the events shown, the end. */
function download(): void {
  if (!current) return;
  const shown = { query: current.text, result: current.latest ?? null, chart: chart.data(), notices: current.notices, events: eventRows, end: current.end ?? null };
  const blob = new Blob([JSON.stringify(shown, null, 2)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'fay-result.json';
  a.click();
  URL.revokeObjectURL(a.href);
}

function askCluster(): void {
  connection.send({ type: 'cluster', id: `k${nextId++}` });
}

$('refresh-cluster').addEventListener('click', askCluster);
setInterval(() => {
  if (!document.hidden) askCluster();
}, 5000);
runButton.addEventListener('click', run);
stopButton.addEventListener('click', () => current && connection.send({ type: 'stop', id: current.id }));
pauseButton.addEventListener('click', togglePause);
$('explain').addEventListener('click', () => connection.send({ type: 'explain', id: `e${nextId++}`, query: editor.value }));
downloadButton.addEventListener('click', download);
$<HTMLSelectElement>('range').addEventListener('change', () => {
  $('custom-range').hidden = $<HTMLSelectElement>('range').value !== 'custom';
});
connection.open();
