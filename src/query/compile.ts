import type { ProbeCatalog } from '../plan/catalog.js';
import type { LogicalPlan } from '../plan/logical.js';
import { bindQuery } from './binder.js';
import { parseQuery } from './parser.js';

/** FayQL text → logical plan: parse, then resolve names and types against a probe catalog. */
export function compileQuery(text: string, catalog: ProbeCatalog, nowNs?: number): LogicalPlan {
  return bindQuery(parseQuery(text), text, nowNs === undefined ? { catalog } : { catalog, nowNs });
}
