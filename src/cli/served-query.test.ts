import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { startFay, runFay, type FayProcess } from '../testing/cli.js';
import { fayCommand } from '../testing/fay-command.js';
import { leavesKernelAsFound, loaderProcesses, parentOf, processesGone } from '../testing/kernel-state.js';
import { runWorkload } from '../testing/workload.js';

/**
 * `fay query --json` while this machine's agent runs (`fay agent`): the command hands the query to
 * the agent, which runs it and sends back the lines the command prints. The same answer, every
 * event counted, Ctrl-C and a killed command honoured, nothing left behind.
 */

interface Line {
  type: string;
  rows?: { count?: number }[];
  start_ns?: number;
  end_ns?: number;
}
const parsed = (lines: readonly string[]) => lines.map((l) => JSON.parse(l) as Line);
const counted = (lines: readonly string[]) => parsed(lines).filter((l) => l.type === 'result').reduce((n, l) => n + (l.rows?.[0]?.count ?? 0), 0);

describe("fay query --json, run by this machine's agent", () => {
  leavesKernelAsFound({ each: true });
  const dir = mkdtempSync(join(tmpdir(), 'fay-served-'));
  const env = { ...process.env, FAY_RUN_DIR: join(dir, 'run'), FAY_STORE_DIR: join(dir, 'store'), FAY_CONFIG: join(dir, 'no-config.json') };
  let agent: FayProcess;
  before(async () => {
    agent = startFay(['agent'], { env });
    await agent.stderrMatch(/ready/);
  });
  after(async () => {
    agent.child.kill('SIGTERM');
    await agent.exit;
    rmSync(dir, { recursive: true, force: true });
  });
  /** The agent's log from now on matches `pattern`. */
  const agentSays = (pattern: RegExp) => {
    const from = agent.stderr().length;
    return () => new Promise<void>((resolve, reject) => {
      const look = () => pattern.test(agent.stderr().slice(from));
      if (look()) return resolve();
      const gone = () => reject(new Error(`the agent exited before saying ${String(pattern)}`));
      const check = () => {
        if (!look()) return;
        agent.child.stderr!.off('data', check);
        agent.child.off('close', gone);
        resolve();
      };
      agent.child.stderr!.on('data', check);
      agent.child.once('close', gone);
    });
  };

  it('runs the query in the command when no agent answers: no socket, or one left by an agent killed outright', async () => {
    const alone = { ...env, FAY_RUN_DIR: join(dir, 'nobody') };
    const check = async () => {
      const { code, lines, stderr } = await runFay(['query', '--json', '-d', '200ms', 'interval:50ms | count()'], { env: alone });
      assert.equal(code, 0, stderr);
      assert.equal(stderr, '');
      assert.equal(parsed(lines).at(-1)?.type, 'end');
    };
    await check();
    // A socket nobody listens on any more.
    const [node] = fayCommand();
    mkdirSync(alone.FAY_RUN_DIR, { recursive: true });
    const holder = spawn(node!, ['-e', "require('node:net').createServer().listen(process.argv[1], () => console.log('up'))", join(alone.FAY_RUN_DIR, 'agent.sock')], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => createInterface({ input: holder.stdout }).once('line', resolve));
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.on('close', resolve));
    assert.ok(existsSync(join(alone.FAY_RUN_DIR, 'agent.sock')));
    await check();
  });

  it('counts every event of a known workload in the agent, and Ctrl-C ends it with the final answer', async () => {
    const served = agentSays(/runs a query for a command on this machine: syscall:getppid \| where comm == "fay-served"/);
    const fay = startFay(['query', '--backend', 'native', '--json', '--every', '100ms', 'syscall:getppid | where comm == "fay-served" | count()'], { env });
    const first = await fay.nextLine();
    assert.ok(first, 'a first window arrives once the probes are attached');
    await served();
    // The kernel side is the agent's child, not the command's.
    const loaders = loaderProcesses();
    assert.equal(loaders.length, 1);
    assert.equal(parentOf(loaders[0]!), agent.child.pid);
    await runWorkload('fay-served', 'getppid', 4321);
    fay.child.kill('SIGINT');
    const { code, lines, stderr } = await fay.exit;
    assert.equal(code, 0, stderr);
    assert.equal(counted([first, ...lines]), 4321);
    assert.equal(parsed(lines).at(-1)?.type, 'end');
  });

  it('says what is wrong with a query as the command would itself, with the same exit code', async () => {
    for (const args of [['query', '--json', 'syscall:getppid | cuont()'], ['query', '--json', '--every', 'soon', 'syscall:getppid | count()'], ['query', '--json', '--backend', 'native', 'profile:hz:99 | count() by ustack']]) {
      const served = agentSays(/runs a query for a command/);
      const byAgent = await runFay(args, { env });
      await served();
      const byCommand = await runFay(args, { env: { ...env, FAY_NO_AGENT: '1' } });
      assert.ok(byCommand.code === 2 || byCommand.code === 3, byCommand.stderr);
      assert.deepEqual([byAgent.code, byAgent.stderr, byAgent.lines], [byCommand.code, byCommand.stderr, byCommand.lines]);
    }
  });

  it('stops the query when the command is killed outright, and leaves no probe behind', async () => {
    const fay = startFay(['query', '--backend', 'native', '--json', '--every', '100ms', 'syscall:getppid | count()'], { env });
    assert.ok(await fay.nextLine());
    const loaders = loaderProcesses();
    assert.equal(loaders.length, 1);
    const stopped = agentSays(/stopped the query of a command that went away/);
    fay.child.kill('SIGKILL');
    await fay.exit;
    await stopped();
    await processesGone(loaders);
  });

  it('loses nothing to a reader slower than the query', async () => {
    // ~300 windows of a line each, written while nobody reads: more than a pipe holds.
    const [node, ...command] = fayCommand();
    const child = spawn(node!, [...command, 'query', '--json', '--every', '10ms', '-d', '3s', 'interval:1ms | count()'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pause();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    const results = parsed(lines).filter((l) => l.type === 'result');
    assert.ok(results.length >= 250, `${results.length} windows`);
    // Each window starts where the last one ended: none is missing.
    for (let i = 1; i < results.length; i++) assert.equal(results[i]!.start_ns, results[i - 1]!.end_ns);
    assert.equal(parsed(lines).at(-1)?.type, 'end');
    assert.match(agent.stderr(), /runs a query for a command on this machine: interval:1ms/);
  });

  it('stops the query, quietly, when the reader of its answer goes away (| head)', async () => {
    const stopped = agentSays(/stopped the query of a command that went away: interval:1ms/);
    const [node, ...command] = fayCommand();
    const quoted = [node!, ...command, 'query', '--json', '--every', '10ms', '-d', '60s', 'interval:1ms | count()'].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const child = spawn('bash', ['-o', 'pipefail', '-c', `${quoted} | head -n 2`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(out.trim().split('\n').length, 2);
    assert.equal(err, '', 'nothing said: no stack trace');
    assert.equal(code, 0);
    await stopped();
  });

  it('refuses a query frame it cannot run as a command would, and stays up', async () => {
    /** The agent's one reply to a frame sent on a connection of its own. */
    const reply = (frame: unknown) =>
      new Promise<unknown>((resolve, reject) => {
        const socket = createConnection(join(env.FAY_RUN_DIR, 'agent.sock'), () => socket.write(`${JSON.stringify(frame)}\n`));
        createInterface({ input: socket }).once('line', (line) => {
          socket.destroy();
          resolve(JSON.parse(line));
        });
        socket.once('error', reject);
      });
    const version = (await runFay(['--version'], { env })).lines[0]!;
    for (const [frame, why] of [
      [{ op: 'query', version, text: 'syscall:getppid | count()' }, /a version, a text and flags/],
      [{ op: 'query', version, text: 'q', flags: { json: true, every: true } }, /a flag without its value/],
      [{ op: 'query', version, text: 'q', flags: { json: true, folded: true } }, /with folded is run by the command/],
      [{ op: 'query', version, text: 'q', flags: {} }, /no --json/],
      [{ op: 'query', version: '0.0.0-other', text: 'q', flags: { json: true } }, /this agent is Fay .*, the command Fay 0\.0\.0-other/],
    ] as const) {
      const answer = (await reply(frame)) as { op: string; why: string };
      assert.equal(answer.op, 'refused');
      assert.match(answer.why, why);
    }
    // Still up, and still running queries.
    const after = await runFay(['query', '--json', '-d', '200ms', 'interval:50ms | count()'], { env });
    assert.equal(after.code, 0, after.stderr);
  });

  it('leaves a query with a flag it does not take to the command, which runs it itself', async () => {
    const fay = startFay(['query', '--backend', 'native', '--json', '--every', '100ms', '--refresh', '1s', 'syscall:getppid | where comm == "fay-unserved" | count()'], { env });
    const first = await fay.nextLine();
    assert.ok(first);
    const loaders = loaderProcesses();
    assert.equal(loaders.length, 1);
    assert.equal(parentOf(loaders[0]!), fay.child.pid, 'the command holds the probe');
    await runWorkload('fay-unserved', 'getppid', 1234);
    fay.child.kill('SIGINT');
    const { code, lines } = await fay.exit;
    assert.equal(code, 0);
    assert.equal(counted([first, ...lines]), 1234);
    assert.doesNotMatch(agent.stderr(), /fay-unserved/);
  });
});
