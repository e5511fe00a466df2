import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

const PASTE_START = '\x1b[200~';
const PASTE_END = '\x1b[201~';

/** Asks the terminal to mark what is pasted (bracketed paste), and to stop again. */
export const BRACKETED_PASTE_ON = '\x1b[?2004h';
export const BRACKETED_PASTE_OFF = '\x1b[?2004l';

/**
 * A terminal's keys as Node.js's readline should get them. readline completes on a Tab only when it
 * is the last character of one read: a Tab in the middle of a read is taken for pasted text and
 * inserted. Keys that arrive together (tmux's send-keys, a slow connection, fast typing) then put
 * a tab into the query and complete the empty word after it: `syscall:open` Tab Tab listed the
 * providers. So each Tab typed becomes a read of its own. Pasted text is told from typing by
 * bracketed paste (the terminal wraps it in ESC[200~ … ESC[201~ once asked): its tabs stay text,
 * as spaces (FayQL reads them alike), and the markers are taken out.
 */
export class KeystrokeInput extends Transform {
  private pasting = false;
  private readonly decoder = new StringDecoder('utf8');
  readonly isTTY = true;

  constructor(private readonly terminal: NodeJS.ReadStream) {
    super();
    terminal.pipe(this);
  }

  /** readline switches the terminal to raw mode (and back) through its input. */
  setRawMode(mode: boolean): this {
    this.terminal.setRawMode(mode);
    return this;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let text = this.decoder.write(chunk);
    while (text !== '') {
      const marker = this.pasting ? PASTE_END : PASTE_START;
      const at = text.indexOf(marker);
      const before = at < 0 ? text : text.slice(0, at);
      if (this.pasting) this.send(before.replaceAll('\t', ' '));
      else for (const part of before.split(/(\t)/)) this.send(part);
      if (at < 0) break;
      this.pasting = !this.pasting;
      text = text.slice(at + marker.length);
    }
    done();
  }

  private send(text: string): void {
    if (text !== '') this.push(Buffer.from(text, 'utf8'));
  }
}
