import type { PageError } from '../../src/web/protocol.js';
import { highlightHtml } from './highlight.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/**
 * The query editor: a textarea over its own text coloured as FayQL (the textarea's text is
 * transparent, its caret not), Tab asking the server for completions (the shell's), Ctrl-Enter
 * running, and a query's mistake shown with a caret under its column.
 */
export class Editor {
  readonly input = $<HTMLTextAreaElement>('query');
  private readonly highlight = $<HTMLPreElement>('highlight');
  private readonly list = $<HTMLUListElement>('completions');
  private readonly pending = new Map<string, number>();

  constructor(
    private readonly ask: (text: string) => string,
    run: () => void,
  ) {
    this.input.addEventListener('input', () => this.recolour());
    this.input.addEventListener('scroll', () => {
      this.highlight.scrollTop = this.input.scrollTop;
      this.highlight.scrollLeft = this.input.scrollLeft;
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Tab') {
        event.preventDefault();
        this.pending.set(this.ask(this.input.value.slice(0, this.input.selectionStart)), this.input.selectionStart);
      } else if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        run();
      } else this.list.hidden = true;
    });
    this.recolour();
  }

  get value(): string {
    return this.input.value;
  }

  set value(text: string) {
    this.input.value = text;
    this.recolour();
  }

  private recolour(): void {
    this.highlight.innerHTML = highlightHtml(this.input.value);
  }

  /** Candidates for a completion asked for: the one, or what all share, goes in; several are listed. */
  complete(id: string, candidates: readonly string[], replace: number): void {
    const cursor = this.pending.get(id);
    this.pending.delete(id);
    if (cursor === undefined || candidates.length === 0) return;
    let shared = candidates[0]!;
    for (const c of candidates) while (!c.startsWith(shared)) shared = shared.slice(0, -1);
    if (shared.length > replace || candidates.length === 1) {
      this.input.setRangeText(shared, cursor - replace, cursor, 'end');
      this.recolour();
    }
    this.list.hidden = candidates.length < 2;
    this.list.replaceChildren(
      ...candidates.slice(0, 50).map((c) => {
        const li = document.createElement('li');
        li.textContent = c;
        return li;
      }),
    );
  }

  /** A query's mistake: the message, what to do, and a caret under where it is in the query. */
  showError(error: PageError, text: string): void {
    $('error').hidden = false;
    $('error-message').textContent = error.message;
    $('error-hint').textContent = error.hint ?? '';
    let caret = '';
    let column = '';
    if (error.start !== undefined) {
      const lineStart = text.lastIndexOf('\n', error.start - 1) + 1;
      const lineEnd = text.indexOf('\n', error.start);
      const line = text.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
      const width = Math.max(1, Math.min((error.end ?? error.start + 1) - error.start, line.length - (error.start - lineStart)));
      caret = `${line}\n${' '.repeat(error.start - lineStart)}${'^'.repeat(width)}`;
      column = String(error.start - lineStart + 1);
    }
    $('caret').textContent = caret;
    $('caret').dataset.column = column;
  }

  hideError(): void {
    $('error').hidden = true;
  }
}
