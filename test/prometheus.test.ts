import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runFay, startFay, type FayProcess } from '../src/testing/cli.js';
import { leavesKernelAsFound } from '../src/testing/kernel-state.js';
import { freePort } from '../src/testing/nats-server.js';
import { runWorkload } from '../src/testing/workload.js';

/**
 * `fay query --prometheus` scraped by a real Prometheus server (Debian's 2.42), every second,
 * during a workload with known reads: Prometheus's own query API gives back the exact count, and a
 * histogram's buckets, _count and _sum, with the query's labels.
 */

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) =>
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject),
  );
}

/** Polls until `probe` gives a value, every 200 ms, for at most `ms`. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${last ? ` (${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('fay query --prometheus, scraped by Prometheus', () => {
  leavesKernelAsFound();
  const dir = mkdtempSync(join(tmpdir(), 'fay-prometheus-'));
  let prometheus: ChildProcess;
  let fay: FayProcess;
  let api: string;
  let metrics: string;

  before(async () => {
    const [fayPort, promPort] = [await freePort(), await freePort()];
    metrics = `http://127.0.0.1:${fayPort}/metrics`;
    fay = startFay(['query', '--prometheus', `127.0.0.1:${fayPort}`, 'syscall:read | where comm == "fay-prom" | count(), hist(ret), sum(ret) by comm']);
    writeFileSync(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fay\n    static_configs:\n      - targets: ['127.0.0.1:${fayPort}']\n`);
    prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    api = `http://127.0.0.1:${promPort}/api/v1/query?query=`;
    // The query runs once it serves its first result (its coverage), and Prometheus once it answers.
    await until('the query serving its answer', async () => ((await getText(metrics)).includes('fay_hosts_reporting 1') ? true : undefined));
    await until('Prometheus answering', async () => ((await getText(`${api}up`)).includes('"success"') ? true : undefined));
  });

  after(async () => {
    if (fay?.child.exitCode === null) fay.child.kill('SIGINT');
    await fay?.exit;
    prometheus?.kill('SIGTERM');
    await new Promise((r) => (prometheus?.exitCode !== null ? r(undefined) : prometheus.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  });

  /** The value Prometheus has for a PromQL expression, once it is `expected` (it scrapes every second). */
  const valueOf = (expression: string, expected: number) =>
    until(`Prometheus's ${expression} = ${expected}`, async () => {
      const body = JSON.parse(await getText(`${api}${encodeURIComponent(expression)}`)) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      const found = body.data.result[0];
      return found !== undefined && Number(found.value[1]) === expected ? found.metric : undefined;
    });

  it('gives back the exact count and the histogram of a known workload, with the labels of its keys', async () => {
    // 30 reads of 1 to 30 bytes: a sum of 465, in the power-of-two buckets [1], [2,3], [4,7], [8,15], [16,31].
    await runWorkload('fay-prom', 'read', ...Array.from({ length: 30 }, (_, i) => i + 1));
    const labels = await valueOf('fay_count', 30);
    assert.equal(labels.comm, 'fay-prom');
    assert.equal(labels.job, 'fay');
    await valueOf('fay_hist_ret_count{comm="fay-prom"}', 30);
    await valueOf('fay_hist_ret_sum{comm="fay-prom"}', 465);
    for (const [le, n] of [['1', 1], ['3', 3], ['7', 7], ['15', 15], ['31', 30], ['+Inf', 30]] as const) await valueOf(`fay_hist_ret_bucket{comm="fay-prom",le="${le}"}`, n);
    await valueOf('fay_hosts_reporting', 1);
    await valueOf('fay_hosts_missing', 0);
    // Ctrl-C ends the query, and its endpoint with it.
    fay.child.kill('SIGINT');
    assert.equal((await fay.exit).code, 0);
    await assert.rejects(getText(metrics));
  });
});

describe("fay agent --prometheus: the standing queries' windows", () => {
  leavesKernelAsFound();
  const dir = mkdtempSync(join(tmpdir(), 'fay-agent-prometheus-'));
  const env = { ...process.env, FAY_STORE_DIR: join(dir, 'store'), FAY_RUN_DIR: join(dir, 'run') };
  let agent: FayProcess;
  let metrics: string;

  before(async () => {
    const port = await freePort();
    metrics = `http://127.0.0.1:${port}/metrics`;
    agent = startFay(['agent', '--prometheus', `127.0.0.1:${port}`], { env });
    await agent.stderrMatch(/ready \(incarnation/);
  });

  after(async () => {
    if (agent?.child.exitCode === null) agent.child.kill('SIGTERM');
    await agent?.exit;
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves each standing query's windows under its log's name, added up, until it is stopped", async () => {
    const started = await runFay(['query', '--persist', 'promreads', 'syscall:read | where comm == "fay-prom-s" | count() by comm every 1s'], { env });
    assert.equal(started.code, 0, started.stderr);
    const id = started.lines.join('').trim();
    await until('its first window served', async () => ((await getText(metrics)).includes('fay_promreads_hosts_reporting 1') ? true : undefined));
    await runWorkload('fay-prom-s', 'read', ...Array.from({ length: 30 }, (_, i) => i + 1));
    await until('the 30 reads counted', async () => ((await getText(metrics)).includes('fay_promreads_count{comm="fay-prom-s"} 30') ? true : undefined));
    const stopped = await runFay(['stop', id], { env });
    assert.equal(stopped.code, 0, stopped.stderr);
    await until('its metrics gone', async () => ((await getText(metrics)).includes('fay_promreads') ? undefined : true));
  });
});
