import { OTHER } from '../../agg/group-table.js';
import { fieldsOf, globToRegExp, type Expr } from '../../plan/expr.js';
import type { AggregateSpec } from '../../plan/logical.js';
import type { ProbeStage } from '../../plan/planner.js';

/** Fields that exist only once the call has returned (or thrown). */
const RETURN_FIELDS = /^(ret(\..+)?|duration|threw|error)$/;

/** The JavaScript the target runs per call, and what the agent needs to read its output. */
export interface NodeProgram {
  /**
   * A HandlerFactory (runtime/contract.ts), `(helpers, state) => (probeName) => handler`, evaluated in
   * the target next to the runtime: `helpers` are the runtime's safe projections, `state` the session's groups and rows.
   */
  readonly source: string;
  /** Whether the probe needs the return side (value, exception, duration). */
  readonly exit: boolean;
  /** Whether it reads the arguments (else instrumented code passes none, and no arguments object is made). */
  readonly args: boolean;
  /** Whether it reads the call's `this` (`this.name`). */
  readonly self: boolean;
  /** Names of the shipped values, in the order of each shipped row. */
  readonly shipped: readonly string[];
  /**
   * When the probe's whole work per call is a few aggregates of one group over
   * the call itself (count()) or its duration (sum min max avg hist), with no
   * other field, filter, key, sample or shipped value: those aggregates, in
   * order. The probe's hooks then keep them without running a handler (no
   * user-derived code per call, nothing that can throw), and each flush fills
   * them in. Empty: a handler runs for each call.
   */
  readonly kept: readonly KeptAggregate[];
}

/** An aggregate the hooks of a probe can keep themselves (see NodeProgram.kept). */
export type KeptAggregate = 'count' | 'sum' | 'min' | 'max' | 'avg' | 'hist';
const KEPT_OVER_DURATION: ReadonlySet<string> = new Set(['sum', 'min', 'max', 'avg', 'hist']);

/** The aggregates of a probe stage its hooks can keep themselves, or [] when a handler must run. */
function keptAggregates(stage: ProbeStage, fields: ReadonlySet<string>): KeptAggregate[] {
  const aggregates = stage.aggregate?.aggregates ?? [];
  const plain = !stage.filter && stage.sampleRate === undefined && !stage.ship && (stage.aggregate?.keys.length ?? 0) === 0 && aggregates.length > 0;
  if (!plain || [...fields].some((f) => f !== 'duration')) return [];
  const kept = aggregates.map((a) =>
    (a.function === 'count' && !a.argument) || (KEPT_OVER_DURATION.has(a.function) && a.argument?.kind === 'Field' && a.argument.name === 'duration') ? a.function : undefined,
  );
  return kept.every((k) => k !== undefined) ? (kept as KeptAggregate[]) : [];
}

/** How a field reads inside a handler `(args, ret, threw, error, ns)`; `helpers` holds the safe projections (HandlerHelpers). */
function fieldReading(name: string): string {
  const projection = /^(args\[(\d+)\]|ret|this)(?:\.(type|length|number))?$/.exec(name);
  if (projection) {
    const value = projection[2] !== undefined ? `args[${projection[2]}]` : projection[1] === 'this' ? 'self' : 'ret';
    switch (projection[3]) {
      case 'type':
        return `helpers.type(${value})`;
      case 'length':
        return `helpers.length(${value})`;
      case 'number':
        return `helpers.number(${value})`;
      default:
        return `helpers.text(${value})`;
    }
  }
  // A property below a message, an argument or the return value (sources.ts's messageField and
  // nestedField): own data properties down the path; a last step .type, .length or .number projects.
  const nested = /^(msg|args\[(\d+)\]|ret|this)((?:\.[A-Za-z_$][\w$]*)+)$/.exec(name);
  if (nested) {
    const path = nested[3]!.slice(1).split('.');
    const last = path[path.length - 1]!;
    const projected = ['type', 'length', 'number'].includes(last) && path.length > 1 ? path.pop() : undefined;
    const base = nested[1] === 'msg' ? 'args[0]' : nested[1] === 'this' ? 'self' : nested[1]!;
    const value = `helpers.path(${base}, ${JSON.stringify(path)})`;
    return projected === undefined ? `helpers.text(${value})` : `helpers.${projected}(${value})`;
  }
  switch (name) {
    case 'channel':
      return 'probeName.slice(3)';
    case 'jsstack':
      return 'args[0]';
    case 'jsframe':
      return 'args[0].slice(0, (args[0].indexOf("\\n") + 1 || args[0].length + 1) - 1)';
    case 'argc':
      return 'args.length';
    case 'duration':
      return 'ns';
    case 'threw':
      return 'threw';
    case 'error':
      return '(threw ? helpers.message(error) : "")';
    case 'time':
      return 'helpers.timeNs()';
    case 'pid':
    case 'tid':
      return 'helpers.pid';
    case 'comm':
      return 'helpers.comm';
    case 'host':
      return 'helpers.host';
    case 'probe':
      return 'probeName';
    // A paired probe's fields (sources.ts's PAIRS), which the runtime hands over read, as args[0].
    case 'method':
    case 'url':
    case 'path':
    case 'hostname':
      return `helpers.text(helpers.path(args[0], [${JSON.stringify(name)}]))`;
    case 'route':
      // Empty where no framework named one.
      return 'helpers.text(helpers.path(args[0], ["route"]) ?? "")';
    case 'status':
      return 'helpers.number(helpers.path(args[0], ["status"]))';
    default:
      throw new Error(`field ${name} has no reading in a JavaScript probe`);
  }
}

/** Compiles a plan expression to JavaScript over the handler's locals; globs become regex constants. */
function toJs(e: Expr, locals: Map<string, string>, globs: string[]): string {
  const go = (x: Expr) => toJs(x, locals, globs);
  switch (e.kind) {
    case 'Const':
      return JSON.stringify(e.value);
    case 'Field': {
      const local = locals.get(e.name);
      if (local === undefined) throw new Error(`field ${e.name} was not read`);
      return local;
    }
    case 'Column':
      throw new Error('columns do not exist in the probe');
    case 'Negate':
      return `(-${go(e.operand)})`;
    case 'Not':
      return `(!${go(e.operand)})`;
    case 'Match': {
      globs.push(globToRegExp(e.pattern).source);
      const glob = `G${globs.length - 1}`;
      // A stack matches where one of its frames (lines) does.
      if (e.operand.type === 'stack') return `String(${go(e.operand)}).split("\\n").some((f) => ${glob}.test(f))`;
      return `${glob}.test(${go(e.operand)})`;
    }
    case 'Binary': {
      const [l, r] = [go(e.left), go(e.right)];
      switch (e.operator) {
        case 'and':
          return `(${l} && ${r})`;
        case 'or':
          return `(${l} || ${r})`;
        case '==':
          return `(${l} === ${r})`;
        case '!=':
          return `(${l} !== ${r})`;
        case '/':
          return `div(${l}, ${r})`;
        case '%':
          return `mod(${l}, ${r})`;
        default:
          return `(${l} ${e.operator} ${r})`;
      }
    }
    case 'Call':
      throw new Error(`${e.function}() cannot run in a JavaScript probe`);
  }
}

/** Initial wire-form state and per-call update for each aggregate the probe keeps (states as GroupTable's wire form, hist as an object). */
function aggregateCode(a: AggregateSpec, slot: number, value: string | undefined): { init: string; update: string } {
  const s = `s[${slot}]`;
  switch (a.function) {
    case 'count':
      return { init: '0', update: `${s}++;` };
    case 'sum':
      return { init: '0', update: `${s} += ${value};` };
    case 'min':
      return { init: 'null', update: `{ const v = ${value}; if (${s} === null || v < ${s}) ${s} = v; }` };
    case 'max':
      return { init: 'null', update: `{ const v = ${value}; if (${s} === null || v > ${s}) ${s} = v; }` };
    case 'avg':
      return { init: '[0, 0]', update: `${s}[0] += ${value}; ${s}[1]++;` };
    case 'hist':
      // An array indexed by bucket + 1 (bucket -1 holds negatives): at most 66 slots, kept as fast elements.
      return { init: '[]', update: `{ const b = log2(${value}) + 1; ${s}[b] = (${s}[b] || 0) + 1; }` };
    case 'lhist': {
      const [low, high, step] = a.params as [number, number, number];
      const count = Math.ceil((high - low) / step);
      return {
        init: '{}',
        update: `{ const v = ${value}; const b = v < ${low} ? -1 : v >= ${high} ? ${count} : Math.floor((v - ${low}) / ${step}); ${s}[b] = (${s}[b] || 0) + 1; }`,
      };
    }
    default:
      throw new Error(`${a.function} is not kept in a JavaScript probe`);
  }
}

/**
 * Generates the handler factory for a probe stage. A handler computes only
 * the fields the query reads, filters, samples, updates the probe's partial
 * states (one group per key) and queues the values the machine stage needs.
 */
export function generateHandlers(stage: ProbeStage): NodeProgram {
  const keys = stage.aggregate?.keys ?? [];
  const aggregates = stage.aggregate?.aggregates ?? [];
  const shipped = stage.ship?.values ?? [];
  const used: Expr[] = [...(stage.filter ? [stage.filter] : []), ...keys.map((k) => k.expr), ...aggregates.flatMap((a) => (a.argument ? [a.argument] : [])), ...shipped.map((v) => v.expr)];
  const fields = new Set<string>();
  for (const e of used) fieldsOf(e, fields);
  const exit = [...fields].some((f) => RETURN_FIELDS.test(f));

  const locals = new Map<string, string>();
  const lines: string[] = [];
  [...fields].forEach((name, i) => {
    locals.set(name, `f${i}`);
    lines.push(`const f${i} = ${fieldReading(name)};`);
  });
  const globs: string[] = [];
  if (stage.filter) lines.push(`if (!${toJs(stage.filter, locals, globs)}) return;`);
  if (stage.sampleRate !== undefined && stage.sampleRate < 1) lines.push(`if (Math.random() >= ${stage.sampleRate}) return;`);

  if (stage.aggregate) {
    const keyValues = keys.map((k) => toJs(k.expr, locals, globs));
    const code = aggregates.map((a, i) => aggregateCode(a, i, a.argument ? toJs(a.argument, locals, globs) : undefined));
    const init = `[${code.map((c) => c.init).join(', ')}]`;
    if (keyValues.length === 0) {
      // One group: found once per flush (state.epoch moves at each), not looked up on every call.
      lines.push(
        'if (epoch !== state.epoch) { epoch = state.epoch; single = state.groups.get(""); if (single === undefined) { single = { key: [], s: ' + init + ' }; state.groups.set("", single); } }',
        'const s = single.s;',
        ...code.map((c) => c.update),
      );
    } else lines.push(
      ...keyValues.map((v, i) => `const k${i} = ${v};`),
      // One key is its own id (a string or a number: a Map keeps them apart); several, their JSON. A
      // value "(other)" shares the folded groups' row, which shows it alike.
      `const id = ${keyValues.length === 1 ? 'k0' : `JSON.stringify([${keyValues.map((_, i) => `k${i}`).join(', ')}])`};`,
      'let g = state.groups.get(id);',
      'if (g === undefined) {',
      '  if (state.groups.size >= state.maxGroups) {',
      // Past the cap, groups fold into one (other) row; the calls folded are counted and reported.
      `    state.folded++; g = state.groups.get("(other)"); if (g === undefined) { g = { key: [${keyValues.map(() => JSON.stringify(OTHER)).join(', ')}], s: ${init} }; state.groups.set("(other)", g); }`,
      '  } else {',
      `    g = { key: [${keyValues.map((_, i) => `k${i}`).join(', ')}], s: ${init} }; state.groups.set(id, g);`,
      '  }',
      '}',
      'const s = g.s;',
      ...code.map((c) => c.update),
    );
  }
  if (stage.ship) {
    lines.push(`if (state.rows.length < state.maxRows) state.rows.push([${shipped.map((v) => toJs(v.expr, locals, globs)).join(', ')}]); else state.dropped++;`);
  }

  const kept = keptAggregates(stage, fields);
  const source = [
    '(function (helpers, state) {',
    '  "use strict";',
    ...(kept.length > 0 ? [`  // ${kept.join(', ')}: kept by the probe's hooks themselves; this handler is not called.`] : []),
    '  const div = (a, b) => (b === 0 ? 0 : Math.trunc(a / b));',
    '  const mod = (a, b) => (b === 0 ? a : a % b);',
    '  const log2 = helpers.log2;',
    ...globs.map((g, i) => `  const G${i} = new RegExp(${JSON.stringify(g)}, "s");`),
    '  return function (probeName) {',
    '    let epoch = -1, single;',
    '    const handler = function (args, ret, threw, error, ns, self) {',
    ...lines.map((l) => `      ${l}`),
    '    };',
    '    return handler;',
    '  };',
    '})',
  ].join('\n');
  const args = [...fields].some((f) => f.startsWith('args[') || f === 'argc' || f.startsWith('msg.') || f === 'jsstack' || f === 'jsframe');
  const self = [...fields].some((f) => f.startsWith('this.'));
  return { source, exit, args, self, shipped: shipped.map((v) => v.name), kept };
}
