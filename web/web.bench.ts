/**
 * fay web in headless Chromium (Debian's, through playwright-core), three figures side by side with
 * their baselines (issue 22):
 *
 * 1. Time to the first result: pressing Run on the page until the first row of
 *    `syscall:getppid | count() every 1s` is drawn, against `fay query` with the same query in a
 *    terminal until its first line is printed (the command started as a user starts it: a new
 *    process). Alternating rounds; medians. Target ≤ 1.2×.
 * 2. A live view of 1,000 groups updating once a second for SECONDS: the frames the page dropped
 *    (animation frames later than 50 ms, counted in 16.7 ms frames), against the same page idle for
 *    as long, and its JavaScript heap (after a forced collection) at the start and at the end.
 *    Target: no growth over the minute beyond noise. The windows are synthetic (a runner of the
 *    page's server that makes them), so that what is measured is the page.
 * 3. Bytes on the socket per window (measured on the wire, through a relay), against the NDJSON
 *    `fay query --json` prints for the same windows.
 */
import { spawn } from 'node:child_process';
import { connect as tcpConnect, createServer as tcpServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { chromium, type Page } from 'playwright-core';
import type { QueryMessage } from '../src/cluster/cluster-stage.js';
import type { QueryHandle, RunOptions } from '../src/cluster/query-handle.js';
import { NdjsonSink } from '../src/output/ndjson.js';
import { startFay } from '../src/testing/cli.js';
import { countByComm } from '../src/testing/query.js';
import { WebServer } from '../src/web/server.js';
import type { WebRunner } from '../src/web/session.js';

const SECONDS = Number(process.env.FAY_BENCH_WEB_SECONDS ?? 60);
const ROUNDS = Number(process.env.FAY_BENCH_WEB_ROUNDS ?? 5);
const GROUPS = 1000;
const QUERY = 'syscall:getppid | count() every 1s';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const FAY = new URL('../dist/bin/fay.cjs', import.meta.url).pathname;

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });

// 1. Run → first result, against fay query in a terminal.
{
  const web = startFay(['web', '--port', '0']);
  const url = (await web.nextLine())!;
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('connection')?.textContent === 'connected');
  await page.fill('#query', QUERY);
  const pageMs: number[] = [];
  const cliMs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const started = await page.evaluate(() => {
      document.querySelector('#results tbody')?.replaceChildren();
      const t = performance.now();
      (document.getElementById('run') as HTMLButtonElement).click();
      return t;
    });
    // In-page code as text: tsx names the functions it compiles with a helper the page does not have.
    const drawn = await page.evaluate<number>(`new Promise((resolve) => {
      const body = document.querySelector('#results tbody');
      new MutationObserver(() => body.children.length > 0 && resolve(performance.now())).observe(body, { childList: true });
    })`);
    pageMs.push(drawn - started);
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('ended'));

    const t0 = performance.now();
    const cli = spawn(process.execPath, [FAY, 'query', '--json', QUERY], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve) => cli.stdout.once('data', () => resolve()));
    cliMs.push(performance.now() - t0);
    cli.kill('SIGINT');
    await new Promise((resolve) => cli.on('exit', resolve));
  }
  await page.close();
  web.child.kill('SIGTERM');
  await web.exit;
  console.log(`== time to the first result of '${QUERY}', medians of ${ROUNDS}`);
  console.log(`fay query in a terminal (a new process, to its first line)   ${median(cliMs).toFixed(0)} ms  baseline`);
  console.log(`fay web (Run pressed, to the first row drawn)                 ${median(pageMs).toFixed(0)} ms  ${(median(pageMs) / median(cliMs)).toFixed(2)}× (target ≤ 1.2×)`);
  console.log(JSON.stringify({ bench: 'web-first-result', cli_ms: median(cliMs), page_ms: median(pageMs), ratio: median(pageMs) / median(cliMs) }));
}

/** A query whose windows are made up: GROUPS groups, a new count each, once a second. */
function syntheticRun(periodMs: number, sent: QueryMessage[]): QueryHandle {
  const waiting: ((m: IteratorResult<QueryMessage>) => void)[] = [];
  const queue: QueryMessage[] = [];
  let done = false;
  let endedWith!: (reason: 'stopped') => void;
  const ended = new Promise<'stopped'>((resolve) => (endedWith = resolve));
  const push = (m: QueryMessage) => {
    sent.push(m);
    const take = waiting.shift();
    if (take) take({ value: m, done: false });
    else queue.push(m);
  };
  let window = 0;
  const t0 = Date.now() * 1e6;
  const timer = setInterval(() => {
    const startNs = t0 + window * periodMs * 1e6;
    window++;
    const rows = Array.from({ length: GROUPS }, (_, i) => [`process-${String(i).padStart(4, '0')}`, Math.floor(1000 + 1000 * Math.sin(window + i))] as const);
    const result = countByComm(rows, startNs, startNs + periodMs * 1e6);
    push(result);
  }, periodMs);
  return {
    attached: Promise.resolve(),
    ended,
    stop() {
      clearInterval(timer);
      if (!done) {
        done = true;
        endedWith('stopped');
        for (const take of waiting.splice(0)) take({ value: undefined, done: true });
      }
      return Promise.resolve();
    },
    [Symbol.asyncIterator]: () => ({
      next: () => (queue.length > 0 ? Promise.resolve({ value: queue.shift()!, done: false }) : done ? Promise.resolve({ value: undefined, done: true }) : new Promise((resolve) => waiting.push(resolve))),
    }),
  };
}

/** Frames the page dropped over `ms` (animation frames later than 50 ms, in 16.7 ms frames). */
function droppedFrames(page: Page, ms: number): Promise<{ frames: number; dropped: number }> {
  return page.evaluate<{ frames: number; dropped: number }>(`new Promise((resolve) => {
    let frames = 0;
    let dropped = 0;
    let last = performance.now();
    const end = last + ${ms};
    const tick = (now) => {
      frames++;
      if (now - last > 50) dropped += Math.round((now - last) / (1000 / 60)) - 1;
      last = now;
      if (now < end) requestAnimationFrame(tick);
      else resolve({ frames, dropped });
    };
    requestAnimationFrame(tick);
  })`);
}

// 2 and 3. A live view of 1,000 groups once a second, and its bytes on the socket.
{
  const sent: QueryMessage[] = [];
  const runner: WebRunner = {
    start: (_query: string, _options: RunOptions) => Promise.resolve(syntheticRun(1000, sent)),
    explain: () => '',
    complete: () => Promise.resolve({ candidates: [], replace: 0 }),
    cluster: () => Promise.resolve({ agents: [], queries: [] }),
    stopQuery: () => Promise.resolve(),
  };
  const server = await WebServer.start({ port: 0, listen: '127.0.0.1', runner, version: 'bench', cluster: undefined });
  // A relay that counts the bytes from the server to the page, as they go on the wire.
  const target = Number(new URL(server.url).port);
  let toPage = 0;
  const relay = tcpServer((client) => {
    const upstream = tcpConnect(target, '127.0.0.1');
    upstream.on('data', (d: Buffer) => (toPage += d.length));
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const relayPort = (relay.address() as AddressInfo).port;
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto(server.url.replace(`:${target}/`, `:${relayPort}/`));
  await page.waitForFunction(() => document.getElementById('connection')?.textContent === 'connected');
  const cdp = await page.context().newCDPSession(page);
  const heap = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    return (await cdp.send('Runtime.getHeapUsage')).usedSize;
  };
  const idle = await droppedFrames(page, SECONDS * 1000);
  await page.fill('#query', 'synthetic');
  await page.click('#run');
  await page.waitForFunction(() => Number(document.getElementById('chart')?.dataset.points) >= 5, undefined, { timeout: 30_000 });
  const heapStart = await heap();
  const bytesStart = toPage;
  const windowsStart = sent.length;
  const live = await droppedFrames(page, SECONDS * 1000);
  const heapEnd = await heap();
  const windows = sent.length - windowsStart;
  const socketBytes = toPage - bytesStart;
  await page.click('#stop');
  await page.close();
  await server.close();
  relay.close();

  let ndjsonBytes = 0;
  const counter = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      ndjsonBytes += chunk.length;
      callback();
    },
  });
  const sink = new NdjsonSink(counter, new Writable({ write: (_c, _e, cb) => cb() }));
  for (const m of sent.slice(windowsStart, windowsStart + windows)) await sink.export(m);

  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  console.log(`== a live view of ${GROUPS} groups updating once a second for ${SECONDS} s`);
  console.log(`frames dropped, the page idle for ${SECONDS} s                         ${idle.dropped} of ${idle.frames + idle.dropped}  baseline`);
  console.log(`frames dropped, the live view                                   ${live.dropped} of ${live.frames + live.dropped}  (${((live.dropped / Math.max(1, live.frames + live.dropped)) * 100).toFixed(1)}%)`);
  console.log(`JavaScript heap after a collection, after 5 windows            ${mb(heapStart)}  baseline`);
  console.log(`JavaScript heap after a collection, ${SECONDS} s later               ${mb(heapEnd)}  ${(heapEnd / heapStart).toFixed(2)}× (target: no growth beyond noise)`);
  console.log(`== bytes per window of ${GROUPS} groups, ${windows} windows`);
  console.log(`NDJSON that fay query --json prints                             ${(ndjsonBytes / windows).toFixed(0)} B  baseline`);
  console.log(`on the page's socket (the wire)                                 ${(socketBytes / windows).toFixed(0)} B  ${(socketBytes / ndjsonBytes).toFixed(2)}×`);
  console.log(JSON.stringify({ bench: 'web-live', seconds: SECONDS, groups: GROUPS, idle_dropped: idle.dropped, idle_frames: idle.frames, live_dropped: live.dropped, live_frames: live.frames, heap_start: heapStart, heap_end: heapEnd, windows, socket_bytes_per_window: socketBytes / windows, ndjson_bytes_per_window: ndjsonBytes / windows }));
}
await browser.close();
