import { printString } from '../plan/print-expr.js';
import type { BinaryOperator, BindingNode, ExprNode, QueryNode, StageNode } from './ast.js';

/** Prints a query in canonical FayQL; parsing the output gives the same tree. */
export function printQuery(query: QueryNode): string {
  const sources = query.sources.map((s) => s.text).join(', ');
  return [sources, ...query.stages.map(printStage)].join(' | ');
}

export function printStage(stage: StageNode): string {
  switch (stage.kind) {
    case 'Where':
      return `where ${printExpression(stage.predicate)}`;
    case 'Let':
      return `let ${stage.bindings.map(printBinding).join(', ')}`;
    case 'Select':
      return `select ${stage.bindings.map(printBinding).join(', ')}`;
    case 'Aggregate': {
      const calls = stage.aggregates
        .map((a) => `${a.name ? `${a.name.name} = ` : ''}${a.function.name}(${a.args.map(printExpression).join(', ')})${a.scaled ? ' scaled' : ''}`)
        .join(', ');
      const keys = stage.keys.length > 0 ? ` by ${stage.keys.map(printBinding).join(', ')}` : '';
      const every = stage.every ? ` every ${stage.every.text}` : '';
      return `${calls}${keys}${every}`;
    }
    case 'Top':
      return `top ${stage.count.text}${stage.by ? ` by ${stage.by.name}` : ''}${stage.order ? ` ${stage.order}` : ''}`;
    case 'Limit':
      return `limit ${stage.count.text}`;
    case 'Every':
      return `every ${stage.period.text}`;
    case 'Record':
      return `record last ${stage.size.text}${stage.trigger ? ` dump when ${printExpression(stage.trigger)}` : ''}`;
    case 'Sample':
      return `sample ${stage.text}`;
    case 'Window':
      return `window ${stage.size.text}${stage.slide ? ` slide ${stage.slide.text}` : ''}`;
    case 'Last':
      return `last ${stage.length.text}`;
    case 'On':
      return `on ${printExpression(stage.predicate)}`;
    case 'Categorize':
      return `categorize ${stage.entity.name} by ${stage.features.map((f) => f.name).join(', ')}${stage.k ? ` k=${stage.k.text}` : ''}`;
  }
}

function printBinding(binding: BindingNode): string {
  const expr = printExpression(binding.expr);
  return binding.name ? `${binding.name.name} = ${expr}` : expr;
}

// Binding strength, loosest first; a child printed inside a tighter parent gets parentheses.
const enum Precedence {
  Or = 1,
  And,
  Not,
  Comparison,
  Additive,
  Multiplicative,
  Unary,
  Primary,
}

const BINARY_PRECEDENCE: Record<BinaryOperator, Precedence> = {
  '||': Precedence.Or,
  '&&': Precedence.And,
  '==': Precedence.Comparison,
  '!=': Precedence.Comparison,
  '<': Precedence.Comparison,
  '<=': Precedence.Comparison,
  '>': Precedence.Comparison,
  '>=': Precedence.Comparison,
  '=~': Precedence.Comparison,
  '!~': Precedence.Comparison,
  '+': Precedence.Additive,
  '-': Precedence.Additive,
  '*': Precedence.Multiplicative,
  '/': Precedence.Multiplicative,
  '%': Precedence.Multiplicative,
};

const SPELLING: Partial<Record<BinaryOperator, string>> = { '||': 'or', '&&': 'and' };

export function printExpression(expr: ExprNode): string {
  return print(expr, Precedence.Or);
}

function precedenceOf(expr: ExprNode): Precedence {
  switch (expr.kind) {
    case 'Binary':
      return BINARY_PRECEDENCE[expr.operator];
    case 'In':
      return Precedence.Comparison;
    case 'Unary':
      return expr.operator === '!' ? Precedence.Not : Precedence.Unary;
    default:
      return Precedence.Primary;
  }
}

function print(expr: ExprNode, context: Precedence): string {
  const text = printBare(expr);
  return precedenceOf(expr) < context ? `(${text})` : text;
}

function printBare(expr: ExprNode): string {
  switch (expr.kind) {
    case 'Number':
    case 'Duration':
      return expr.text;
    case 'String':
      return printString(expr.value);
    case 'Boolean':
      return String(expr.value);
    case 'Field':
      return expr.path
        .map((segment, i) => (i === 0 ? segment : /^[0-9]+$/.test(segment) ? `[${segment}]` : `.${segment}`))
        .join('');
    case 'Unary':
      return expr.operator === '!'
        ? `not ${print(expr.operand, Precedence.Not)}`
        : `-${print(expr.operand, Precedence.Unary)}`;
    case 'Binary': {
      const precedence = BINARY_PRECEDENCE[expr.operator];
      const comparison = precedence === Precedence.Comparison;
      const left = print(expr.left, comparison ? precedence + 1 : precedence);
      const right = print(expr.right, precedence + 1);
      return `${left} ${SPELLING[expr.operator] ?? expr.operator} ${right}`;
    }
    case 'In':
      return `${print(expr.operand, Precedence.Additive)} ${expr.negated ? 'not in' : 'in'} (${expr.values
        .map((v) => print(v, Precedence.Additive))
        .join(', ')})`;
    case 'Call':
      return `${expr.callee.name}(${expr.args.map(printExpression).join(', ')})`;
  }
}

