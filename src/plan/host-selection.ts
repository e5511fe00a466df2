import { compileExpr } from './evaluate.js';
import { globToRegExp, type Expr } from './expr.js';
import { printExpr } from './print-expr.js';

/**
 * Which hosts a query runs on: those that satisfy its `on` condition and match
 * one of the `--hosts` globs, when either is given. The client uses it to pick
 * the agents it expects answers from; each agent uses it to decide whether a
 * query it hears about is for it.
 */
export class HostSelection {
  private readonly condition: ((host: string) => boolean) | undefined;
  private readonly patterns: readonly RegExp[] | undefined;

  constructor(
    private readonly on: Expr | undefined,
    private readonly globs: readonly string[] | undefined,
  ) {
    if (on) {
      const evaluate = compileExpr(on);
      this.condition = (host) => evaluate({ host }) === true;
    }
    this.patterns = globs?.map(globToRegExp);
  }

  includes(host: string): boolean {
    return (this.condition?.(host) ?? true) && (this.patterns?.some((p) => p.test(host)) ?? true);
  }

  /** `` (every host), or e.g. ` matching web-*` / ` where host =~ "web-*"`. */
  describe(): string {
    const parts = [
      ...(this.globs ? [`matching ${this.globs.join(', ')}`] : []),
      ...(this.on ? [`where ${printExpr(this.on)}`] : []),
    ];
    return parts.length === 0 ? '' : ` ${parts.join(' and ')}`;
  }
}
