/**
 * Text from traced programs, agents and queries made safe for a terminal. A traced file name, a
 * process name or a notice may hold control characters: ESC starts sequences that clear the
 * screen, move the cursor or retitle the window (ESC]0;…), CR overwrites a line, and the
 * bidirectional overrides reorder what is shown. Each is shown as its escape (\x1b, \r, \u202e)
 * instead. NDJSON needs none of this: JSON escapes them itself.
 */

/** C0 controls but tab and newline, DEL, C1 controls, and the bidirectional embeddings, overrides and isolates. */
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const LINE_BREAKS = /[\t\n]/g;

function escaped(ch: string): string {
  const code = ch.charCodeAt(0);
  if (ch === '\r') return '\\r';
  if (ch === '\n') return '\\n';
  if (ch === '\t') return '\\t';
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Text of several lines (a notice, an error, a program): controls shown as escapes, tabs and newlines kept. */
export function printable(text: string): string {
  return text.replace(CONTROLS, escaped);
}

/** Text that must stay on one line (a table cell, a host name, a frame): tabs and newlines shown as escapes too. */
export function printableLine(text: string): string {
  return printable(text).replace(LINE_BREAKS, escaped);
}
