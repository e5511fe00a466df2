import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { localRegistry } from '../probes/default-registry.js';
import { startFay } from '../testing/cli.js';
import { PtySession } from '../testing/pty.js';
import { runWorkload, waitingWorkload } from '../testing/workload.js';
import { Completer } from './completion.js';
import { HostVariables, isComplete } from './statement.js';

describe('reading shell statements', () => {
  const complete: [string, boolean][] = [
    ['syscall:openat | count()', true],
    ['syscall:openat |', false],
    ['syscall:openat, ', false],
    ['syscall:openat | where comm == "a" and', false],
    ['syscall:openat | where pid in (1, 2', false],
    ['syscall:openat | where comm == "a|', false],
    ['syscall:openat \\', false],
    ['syscall:openat | count()   # counts |', true],
    ['js:comm=api:./app.js#handle', true],
    ['syscall:openat |\n  where ret < 0 |\n  count()', true],
    ['.json on', true],
    ['   ', false],
  ];
  for (const [text, expected] of complete) {
    it(`${JSON.stringify(text)} is ${expected ? '' : 'not '}complete`, () => assert.equal(isComplete(text), expected));
  }

  it('keeps host sets in variables and spells them as on conditions', () => {
    const vars = new HostVariables();
    assert.equal(vars.define('$web = hosts "web-*", \'db1\''), 'web');
    assert.equal(vars.define('syscall:openat | count()'), undefined);
    assert.equal(vars.expand('syscall:openat | on $web | where comm == "$web" | count()'), 'syscall:openat | on (host =~ "web-*" or host =~ "db1") | where comm == "$web" | count()');
    assert.throws(() => vars.expand('syscall:openat | on $db | count()'), /no variable \$db/);
    assert.throws(() => vars.define('$x = 3'), /a variable holds a set of hosts/);
    assert.throws(() => vars.define('$x = hosts web-*'), /hosts takes quoted names or globs/);
  });

  it('completes probe points, stage words, aggregates, fields and dot commands', async () => {
    const completer = new Completer(localRegistry(), () => ['web']);
    assert.deepEqual(await completer.complete('', 'sysc'), [['syscall:'], 'sysc']);
    assert.deepEqual(await completer.complete('', 'syscall:getpp'), [['syscall:getppid'], 'syscall:getpp']);
    assert.deepEqual((await completer.complete('', 'tracepoint:kmem:kmal'))[0], ['tracepoint:kmem:kmalloc']);
    assert.deepEqual(await completer.complete('', 'syscall:openat | wh'), [['where'], 'wh']);
    assert.deepEqual(await completer.complete('', 'syscall:openat | cou'), [['count('], 'cou']);
    assert.deepEqual(await completer.complete('', 'syscall:openat | where args.fil'), [['args.filename'], 'args.fil']);
    // The fields of the statement's first probe point, though it was on an earlier line.
    assert.deepEqual(await completer.complete('syscall:openat |', '  count() by du'), [['duration'], 'du']);
    assert.deepEqual(await completer.complete('', 'syscall:openat | on $w'), [['$web'], '$w']);
    assert.deepEqual(await completer.complete('', '.ex'), [['.explain', '.exit'], '.ex']);
  });
});

describe('the shell over a pipe', () => {
  it('runs a script of statements with fay query’s output flags, and exits with its worst error', async () => {
    const workload = waitingWorkload('fay-sh', 'getppid', 2345);
    const script = [
      `$me = hosts "${hostname()}"`,
      'syscall:getppid',
      '  | on $me          # this machine',
      `  | where pid == ${workload.pid}`,
      '  | count()',
      '.bogus',
    ].join('\n');
    const fay = startFay(['shell', '--json', '--every', '100ms'], { stdin: script });
    // Windows come once the probes are attached.
    const first = await fay.nextLine();
    assert.ok(first, 'a first window');
    let total = (JSON.parse(first) as { rows: { count: number }[] }).rows[0]?.count ?? 0;
    await workload.go();
    while (total < 2345) {
      const line = await fay.nextLine();
      assert.ok(line !== undefined, 'windows until every call is counted');
      total += (JSON.parse(line) as { rows?: { count: number }[] }).rows?.[0]?.count ?? 0;
    }
    fay.child.kill('SIGINT');
    const { code, lines, stderr } = await fay.exit;
    for (const line of lines) total += (JSON.parse(line) as { rows?: { count: number }[] }).rows?.[0]?.count ?? 0;
    assert.equal(total, 2345, 'every call in exactly one window');
    assert.match(stderr, /fay: no command \.bogus/);
    assert.equal(code, 2, 'the bad command makes the script fail');
  });
});

describe('the shell on a terminal', () => {
  const home = mkdtempSync(join(tmpdir(), 'fay-shell-'));
  const env = { ...process.env, HOME: home, XDG_STATE_HOME: join(home, 'state') };
  after(() => rmSync(home, { recursive: true, force: true }));

  it('completes, runs a query until Ctrl-C without leaving, and keeps its history for the next session', async () => {
    const shell = PtySession.start([], env); // fay with no arguments opens the shell
    try {
      await shell.waitFor(/fay> /);
      let at = shell.mark();
      shell.type('syscall:getpp\t');
      await shell.waitFor(/syscall:getppid/, at);
      at = shell.mark();
      shell.type(' | where co\t');
      await shell.waitFor(/where comm/, at);
      at = shell.mark();
      shell.type(' == "fay-pty" | count()\r');
      await shell.waitFor(/Tracing\. Ctrl-C to stop\./, at);
      await runWorkload('fay-pty', 'getppid', 4321);
      await shell.waitFor(/\b4321\b/, at);
      at = shell.mark();
      shell.type('\x03');
      // The query stops, its final answer shows, and the shell asks for the next statement.
      await shell.waitFor(/fay> /, at);
      shell.type('.json\r');
      await shell.waitFor(/json off/, at);
      shell.type('.exit\r');
      assert.equal(await shell.exit, 0);
    } finally {
      shell.kill();
    }
    const history = readFileSync(join(home, 'state/fay/history'), 'utf8');
    assert.match(history, /^syscall:getppid \| where comm == "fay-pty" \| count\(\)$/m);

    const again = PtySession.start(['shell'], env);
    try {
      await again.waitFor(/fay> /);
      const at = again.mark();
      again.type('\x1b[A\x1b[A\x1b[A'); // up: .exit, .json, then the query
      await again.waitFor(/syscall:getppid \| where comm == "fay-pty" \| count\(\)/, at);
      again.type('\x15\x04'); // clear the line, then Ctrl-D leaves
      assert.equal(await again.exit, 0);
    } finally {
      again.kill();
    }
  });

  it('completes probe points on Tab however the keys arrive: one at a time, or together as tmux sends them; a paste stays text', async () => {
    const shell = PtySession.start([], env);
    // What a completion after an empty word lists: the providers, one a line.
    const providers = /^(syscall|tracepoint|uprobe|interval|dc):\s*$/m;
    const listed = async (keys: readonly string[], shown: RegExp) => {
      const at = shell.mark();
      for (const key of keys) {
        shell.type(key);
        // One key a read, as a person types: the next comes after the terminal echoed this one.
        if (keys.length > 1) await shell.waitFor(key === '\t' ? /./ : new RegExp(key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), at);
      }
      const end = await shell.waitFor(shown, at);
      assert.doesNotMatch(shell.output.slice(at, end + 200), providers);
      assert.doesNotMatch(shell.output.slice(at, end + 200), /\t/, 'no tab went into the line');
      shell.type('\x15'); // clear the line
    };
    try {
      await shell.waitFor(/fay> /);
      // Keys that arrive in one read: a Tab among them completes (readline alone inserted it as text).
      await listed(['syscall:open\t\t'], /syscall:openat2/);
      await listed(['tracepoint:sched:sched_process_e\t\t'], /tracepoint:sched:sched_process_exit/);
      // One key a read.
      await listed([...'syscall:mq_', '\t', '\t'], /syscall:mq_timedsend/);
      await listed([...'syscall:getpp', '\t'], /syscall:getppid/);
      // A paste (bracketed, as terminals mark one): its tab is text, no completion.
      const at = shell.mark();
      shell.type('\x1b[200~syscall:getppid\t| count()\x1b[201~');
      await shell.waitFor(/syscall:getppid \| count\(\)/, at);
      shell.type('\x15\x04');
      assert.equal(await shell.exit, 0);
    } finally {
      shell.kill();
    }
  });
});
