import assert from 'node:assert/strict';
import { isDeepStrictEqual as isDeepEqual } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get } from 'node:http';
import { connect as tcpConnect, createServer as tcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WebSocket } from 'ws';
import type { ResultMessage } from '../src/cluster/cluster-stage.js';
import { runFay, startFay, type FayProcess } from '../src/testing/cli.js';
import { bpftraceProcesses, loaderProcesses, loadedBpfPrograms, newBpfPrograms, processesGone, stopProcess } from '../src/testing/kernel-state.js';
import { startNodeTarget, type NodeTarget } from '../src/testing/node-target.js';
import { runWorkload, waitingWorkload } from '../src/testing/workload.js';

/**
 * fay web in a real browser: Debian's Chromium driven by playwright-core (never a downloaded
 * browser), the page served by a real `fay web`, its queries on real probes and a real workload.
 * Screenshots go to artifacts/web/ (git-ignored) for a person to look at.
 */

const ARTIFACTS = new URL('../artifacts/web/', import.meta.url);

/** The status code of a GET. */
function status(url: string): Promise<number> {
  return new Promise((resolve, reject) => get(url, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject));
}

/**
 * A TCP relay between the browser and fay web that can be cut (every connection through it
 * destroyed, none taken: a dropped network) and restored on the same port.
 */
class Relay {
  private server: TcpServer | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: number) {}

  async open(): Promise<void> {
    const server = tcpServer((client) => {
      const upstream = tcpConnect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
  }

  async cut(): Promise<void> {
    const server = this.server;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve());
  }
}

/** What the page's Download JSON gives: what is on screen. */
interface Shown {
  readonly query: string;
  readonly result: ResultMessage | null;
  readonly chart: { times: number[]; series: Record<string, (number | null)[]> };
  readonly notices: string[];
}

async function downloaded(page: Page): Promise<Shown> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  return JSON.parse(readFileSync(await download.path(), 'utf8')) as Shown;
}

describe('fay web in Chromium', () => {
  let web: FayProcess;
  let url: string;
  let base: string;
  let browser: Browser;
  let page: Page;
  let programsBefore: Set<number>;

  // This machine's agent and store for the cluster view, apart from any other.
  const dir = mkdtempSync(join(tmpdir(), 'fay-web-'));
  const env = { ...process.env, FAY_STORE_DIR: join(dir, 'store'), FAY_RUN_DIR: join(dir, 'run') };
  let agentPid: number | undefined;
  let app: NodeTarget | undefined;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    programsBefore = loadedBpfPrograms();
    // Live edits out when a query ends (not kept 60 s for the next): the tab-close test checks the target's source.
    web = startFay(['web', '--port', '0', '--keep-edits', '0'], { env });
    url = (await web.nextLine())!;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{48}$/, web.stderr());
    base = url.slice(0, url.indexOf('/?'));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    web?.child.kill('SIGTERM');
    await web?.exit;
    await stopProcess(agentPid);
    await app?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const screenshot = (name: string) => page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });

  it('refuses the page, its files and its socket without the token, or with a wrong one', async () => {
    assert.equal(await status(`${base}/`), 401);
    assert.equal(await status(`${base}/app.js`), 401);
    assert.equal(await status(`${base}/?token=${'0'.repeat(48)}`), 401);
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/socket`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
    });
    assert.equal(refused, 401);
  });

  it('runs a query typed in the editor: the exact count of a real workload appears in the table', async () => {
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('connection')?.textContent === 'connected');
    const workload = waitingWorkload('fay-web', 'getppid', 1234);
    await page.fill('#query', 'syscall:getppid | where comm == "fay-web" | count() by comm');
    await page.click('#run');
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'running');
    await workload.go();
    await page.waitForFunction(() => [...document.querySelectorAll('#results tbody tr')].some((tr) => tr.textContent === 'fay-web1234'));
    await screenshot('count');
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('ended'));
  });

  it('draws a point a second on the chart of an every 1s query', async () => {
    await page.fill('#query', 'syscall:getppid | count() every 1s');
    await page.click('#run');
    await page.waitForFunction(() => Number(document.getElementById('chart')?.dataset.points) >= 3, undefined, { timeout: 15_000 });
    const first = Number(await page.getAttribute('#chart', 'data-points'));
    await page.waitForFunction((n) => Number(document.getElementById('chart')?.dataset.points) > n, first, { timeout: 5_000 });
    assert.ok(await page.isVisible('#chart canvas'));
    await screenshot('chart');
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('ended'));
  });

  it('draws a histogram of durations with its buckets bounded by times', async () => {
    const workload = waitingWorkload('fay-web-h', 'getppid', 300);
    await page.fill('#query', 'syscall:getppid | where comm == "fay-web-h" | hist(duration)');
    await page.click('#run');
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'running');
    await workload.go();
    await page.waitForSelector('#results td[title="hist(300)"] svg.hist rect');
    const labels = await page.locator('#results svg.hist text').allTextContents();
    assert.ok(labels.some((l) => /^\[[\d.]+(ns|µs|ms), [\d.]+(ns|µs|ms)\)$/.test(l)), labels.join(' '));
    await screenshot('histogram');
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('ended'));
  });

  it('holds the view on Pause while the query runs on, and shows what came on Resume', async () => {
    await page.fill('#query', 'syscall:getppid | count() every 1s');
    await page.click('#run');
    await page.waitForFunction(() => Number(document.getElementById('chart')?.dataset.points) >= 1, undefined, { timeout: 15_000 });
    await page.click('#pause');
    const held = Number(await page.getAttribute('#chart', 'data-points'));
    await page.waitForFunction(() => /paused: [2-9] updates waiting/.test(document.getElementById('paused')?.textContent ?? ''), undefined, { timeout: 15_000 });
    assert.equal(Number(await page.getAttribute('#chart', 'data-points')), held, 'the chart stood still');
    await page.click('#pause');
    assert.ok(Number(await page.getAttribute('#chart', 'data-points')) >= held + 2);
    assert.equal(await page.isHidden('#paused'), true);
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('ended'));
  });

  it('shows the categories of processes as a scatter plot', async () => {
    const comms = ['fay-wa1', 'fay-wa2', 'fay-wa3', 'fay-wb1', 'fay-wb2'];
    await page.fill('#query', `syscall:getppid, syscall:openat, syscall:close, syscall:newfstatat | where ${comms.map((c) => `comm == "${c}"`).join(' or ')} | count() by comm, probe every 1s | categorize comm by probe`);
    await page.click('#run');
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'running');
    // Three make only getppid calls, two open, close and stat a file: 40 bursts of 200 calls, 100 ms apart.
    const running = comms.map((c) => runWorkload(c, 'mix', c.includes('wa') ? 'A' : 'B', '/etc/hostname', 200, 100, 40));
    await page.waitForFunction(() => document.getElementById('categories')?.dataset.points === '5', undefined, { timeout: 20_000 });
    const byComm = await page.$$eval('#categories circle', (dots) => dots.map((d) => [d.querySelector('title')?.textContent?.split(':')[0] ?? '', d.getAttribute('data-category') ?? ''] as const));
    const category: Record<string, string> = Object.fromEntries(byComm);
    assert.equal(new Set(Object.values(category)).size, 2, JSON.stringify(category));
    assert.equal(category['fay-wa1'], category['fay-wa3']);
    assert.equal(category['fay-wb1'], category['fay-wb2']);
    assert.notEqual(category['fay-wa1'], category['fay-wb1']);
    await screenshot('categories');
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('ended'));
    await Promise.all(running);
  });

  it('draws a flame graph of a JavaScript CPU profile of a live Node.js process, and searches it', async () => {
    app = await startNodeTarget('app.cjs');
    await page.fill('#query', `profile:js:pid=${app.pid}:199hz | count() by jsstack every 1s`);
    await page.click('#run');
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'running', undefined, { timeout: 15_000 });
    await app.run('spin', 1500);
    await page.waitForSelector('#flame g.frame[name^="commands.spin"]', { timeout: 15_000 });
    await page.fill('#flame-search', 'commands.spin');
    await page.waitForFunction(() => [...document.querySelectorAll('#flame g.frame rect')].some((r) => r.getAttribute('fill') === '#E600E6'));
    await screenshot('flame');
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('ended'));
    await page.fill('#flame-search', '');
  });

  it('reconnects a dropped socket and resumes the live view: no window twice, none missing, what came meanwhile counted once', async () => {
    const relay = new Relay(Number(new URL(base).port));
    await relay.open();
    const away = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    try {
      await away.goto(url.replace(base, `http://127.0.0.1:${relay.port}`));
      await away.waitForFunction(() => document.getElementById('connection')?.textContent === 'connected');
      const workload = waitingWorkload('fay-web-r', 'getppid', 777);
      await away.fill('#query', 'syscall:getppid | where comm == "fay-web-r" | count() every 1s');
      await away.click('#run');
      await away.waitForFunction(() => Number(document.getElementById('chart')?.dataset.points) >= 2, undefined, { timeout: 15_000 });
      await relay.cut();
      // Away for two failed tries to reconnect (about two windows), the workload making its calls meanwhile.
      await away.waitForFunction(() => Number(document.getElementById('connection')?.dataset.retries) >= 2, undefined, { timeout: 15_000 });
      await workload.go();
      const before = Number(await away.getAttribute('#chart', 'data-points'));
      await relay.open();
      await away.waitForFunction(() => document.getElementById('connection')?.textContent === 'connected', undefined, { timeout: 15_000 });
      await away.waitForFunction((n) => Number(document.getElementById('chart')?.dataset.points) >= n + 4, before, { timeout: 15_000 });
      assert.equal(await away.textContent('#state'), 'running');
      const { chart } = await downloaded(away);
      const times = chart.times;
      assert.deepEqual(times, [...new Set(times)].sort((a, b) => a - b), 'each window once, in order');
      for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! > 0.5 && times[i]! - times[i - 1]! < 1.5, `no window missing: ${times.join(', ')}`);
      assert.equal((chart.series.count ?? []).reduce<number>((sum, n) => sum + (n ?? 0), 0), 777);
      await away.screenshot({ path: new URL('reconnected.png', ARTIFACTS).pathname, fullPage: true });
      await away.click('#stop');
      await away.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('ended'));
    } finally {
      await away.close();
      await relay.cut();
    }
  });

  it('shows a syntax error with its caret at the column fay query names', async () => {
    const bad = 'syscall:getppid | count( by comm';
    const cli = await runFay(['query', bad]);
    const column = Number(/column (\d+)/.exec(cli.stderr)?.[1]);
    assert.ok(column > 0, cli.stderr);
    await page.fill('#query', bad);
    await page.click('#run');
    await page.waitForSelector('#error:not([hidden])');
    assert.equal(await page.getAttribute('#caret', 'data-column'), String(column));
    const caret = (await page.textContent('#caret'))!.split('\n');
    assert.equal(caret[0], bad);
    assert.equal(caret[1]!.indexOf('^'), column - 1);
    await screenshot('error');
    // The page still works after it.
    assert.equal(await page.isEnabled('#run'), true);
  });

  it('the cluster view lists this machine\'s agent and its standing query, and stops it from the page', async () => {
    const started = await runFay(['query', '--persist', 'webppid', 'syscall:getppid | count() every 1s'], { env });
    assert.equal(started.code, 0, started.stderr);
    agentPid = Number(/\(pid (\d+);/.exec(started.stderr)?.[1]);
    const id = started.lines.join('').trim();
    await page.click('#refresh-cluster');
    await page.waitForSelector(`#cluster-queries tr[data-query="${id}"]`);
    assert.match((await page.textContent(`#cluster-queries tr[data-query="${id}"]`))!, /standing.*webppid/);
    assert.equal(await page.locator('#agents tbody tr').count(), 1);
    await screenshot('cluster');
    await page.click(`#cluster-queries tr[data-query="${id}"] button.stop-query`);
    await page.waitForSelector(`#cluster-queries tr[data-query="${id}"]`, { state: 'detached', timeout: 20_000 });
    const ps = await runFay(['ps'], { env });
    assert.match(ps.stderr, /no query runs on this machine's agent/);
  });

  it('runs a history query over the time range picked, written into the query as it runs', async () => {
    await page.fill('#query', 'stored:webppid | count()');
    await page.selectOption('#range', '1h');
    await page.click('#run');
    await page.waitForFunction(() => /^(ended|failed)/.test(document.getElementById('state')?.textContent ?? ''), undefined, { timeout: 20_000 });
    assert.equal(await page.textContent('#effective'), 'runs: stored:webppid | where time > now() - 1h | count()');
    assert.equal(await page.isHidden('#error'), true, (await page.textContent('#error')) ?? '');
    assert.equal(await page.textContent('#state'), 'ended: finished');
    assert.equal(await page.textContent('#results thead'), 'count');
    // One answer for all that is stored within the hour: its count.
    assert.match((await page.textContent('#results tbody'))!, /^\d+$/);
    await page.selectOption('#range', '');
  });

  it('closing the tab stops its queries: their probes come off', async () => {
    await page.fill('#query', 'syscall:getppid | count() every 1s');
    await page.click('#run');
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'running');
    const tracers = [...bpftraceProcesses(), ...loaderProcesses()];
    assert.ok(tracers.length > 0, 'the query runs bpftrace or the native loader');
    await page.close();
    await processesGone(tracers);
    assert.deepEqual(newBpfPrograms(programsBefore), []);
    page = await browser.newPage();
  });

  it('closing the tab takes its JavaScript probes out of the traced process', async () => {
    assert.ok(app, 'the Node.js target of the flame graph test');
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('connection')?.textContent === 'connected');
    await page.fill('#query', `js:pid=${app.pid}:./lib.cjs#query | count()`);
    await page.click('#run');
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'running', undefined, { timeout: 15_000 });
    assert.equal((JSON.parse(await app.run('state', 0)) as Record<string, boolean>).querySourceOriginal, false, 'probed');
    await page.close();
    const untouched = { statSyncOriginal: true, parseOriginal: true, querySourceOriginal: true, serverEmitInherited: true };
    for (let i = 0; !isDeepEqual(JSON.parse(await app.run('state', 0)), untouched); i++) {
      assert.ok(i < 100, 'the probes come out within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    page = await browser.newPage();
  });
});
