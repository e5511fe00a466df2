import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const KEEP = 1000;

/**
 * The shell's history across sessions: one statement per line, oldest first,
 * in $FAY_HISTORY or $XDG_STATE_HOME/fay/history (~/.local/state/fay/history).
 * A history that cannot be read or written is no reason to fail: the session
 * goes on without it.
 */
export class History {
  readonly path: string;

  constructor(path?: string) {
    this.path = path ?? process.env.FAY_HISTORY ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local/state'), 'fay/history');
  }

  /** Newest first, as readline wants it. */
  load(): string[] {
    try {
      const lines = readFileSync(this.path, 'utf8').split('\n').filter(Boolean);
      if (lines.length > KEEP * 2) writeFileSync(this.path, `${lines.slice(-KEEP).join('\n')}\n`);
      return lines.slice(-KEEP).reverse();
    } catch {
      return [];
    }
  }

  add(statement: string): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      appendFileSync(this.path, `${statement.replace(/\n/g, ' ')}\n`);
    } catch {
      // Read-only home: no history.
    }
  }
}
