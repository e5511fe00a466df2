import type { EndMessage, NoticeMessage } from '../cluster/cluster-stage.js';
import { EXIT_INCOMPLETE } from '../errors.js';
import { formatClock, formatDuration } from './format.js';
import { printable, printableLine } from './printable.js';

/** What every terminal-facing sink says on standard error, whatever it writes to standard output. */

/** A notice as a line of standard error. */
export function noticeText(notice: NoticeMessage): string {
  return `fay: ${printableLine(notice.host)}: ${printable(notice.message)}\n`;
}

/** What an incomplete answer misses, host by host and gap by gap; '' for a complete one. */
export function incompleteText(end: EndMessage): string {
  if (end.complete) return '';
  const { coverage } = end;
  const lines = [`fay: the answer is incomplete (exit code ${EXIT_INCOMPLETE}):`];
  const gapped = new Set((coverage.gaps ?? []).map((g) => g.host));
  for (const host of coverage.missing.filter((h) => !gapped.has(h))) lines.push(`  ${printableLine(host)}: missing from the final answer`);
  for (const g of coverage.gaps ?? []) {
    lines.push(`  ${printableLine(g.host)}: not covered from ${formatClock(g.startNs)} to ${formatClock(g.endNs)} (${formatDuration(g.endNs - g.startNs)}): ${printableLine(g.reason)}`);
  }
  return `${lines.join('\n')}\n`;
}
