import type { ResultMessage } from '../cluster/cluster-stage.js';
import { foldedLines } from './folded-stacks.js';
import { TableSink } from './terminal.js';

/** Folded stacks on standard output, from the complete results; everything else as the text view has it. */
export class FoldedSink extends TableSink {
  protected override result(result: ResultMessage): void {
    if (result.complete) for (const line of foldedLines(result)) this.out.write(`${line}\n`);
  }
}
