import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { runFay, startFay, type FayProcess } from '../src/testing/cli.js';
import { bpftraceProcesses, loadedBpfPrograms, newBpfPrograms, processesGone, stopProcess } from '../src/testing/kernel-state.js';
import { waitingWorkload } from '../src/testing/workload.js';

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

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    programsBefore = loadedBpfPrograms();
    web = startFay(['web', '--port', '0'], { env });
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

  it('closing the tab stops its queries: their probes come off', async () => {
    await page.fill('#query', 'syscall:getppid | count() every 1s');
    await page.click('#run');
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'running');
    const tracers = bpftraceProcesses();
    assert.ok(tracers.length > 0, 'the query runs bpftrace');
    await page.close();
    await processesGone(tracers);
    assert.deepEqual(newBpfPrograms(programsBefore), []);
    page = await browser.newPage();
  });
});
