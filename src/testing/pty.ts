import { spawn, type ChildProcess } from 'node:child_process';
import { fayCommand } from './fay-command.js';

/**
 * `fay <args>` on a pseudo-terminal (util-linux `script` gives it one): keys
 * go in as a terminal would send them, the screen's bytes come out.
 */
export class PtySession {
  private screen = '';
  private readonly waiters: { pattern: RegExp; from: number; resolve: (at: number) => void }[] = [];
  readonly exit: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    const take = (d: Buffer) => {
      this.screen += d.toString('utf8');
      for (const w of [...this.waiters]) {
        const at = this.find(w.pattern, w.from);
        if (at >= 0) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(at);
        }
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    this.exit = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  static start(args: readonly string[], env: NodeJS.ProcessEnv): PtySession {
    const command = [...fayCommand(), ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const child = spawn('script', ['--quiet', '--flush', '--return', '--command', command, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...env, TERM: 'xterm', COLUMNS: '160', LINES: '50' },
    });
    return new PtySession(child);
  }

  /** What the terminal has shown so far (escape sequences included). */
  get output(): string {
    return this.screen;
  }

  /** Where the output is now: a mark for waitFor. */
  mark(): number {
    return this.screen.length;
  }

  type(keys: string): void {
    this.child.stdin!.write(keys);
  }

  /** Resolves with the offset of the first match of the pattern in the output from `from` on, when it shows. */
  waitFor(pattern: RegExp, from = 0, timeoutMs = 20_000): Promise<number> {
    const at = this.find(pattern, from);
    if (at >= 0) return Promise.resolve(at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the terminal never showed ${pattern}; it showed:\n${JSON.stringify(this.screen.slice(from))}`)), timeoutMs);
      timer.unref();
      this.waiters.push({ pattern, from, resolve: (n) => (clearTimeout(timer), resolve(n)) });
    });
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  private find(pattern: RegExp, from: number): number {
    const match = pattern.exec(this.screen.slice(from));
    return match ? from + match.index : -1;
  }
}
