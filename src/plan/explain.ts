import type { Windowing } from './logical.js';
import { printExpr } from './print-expr.js';
import { describeAggregate, describeRowOperation, type StagedPlan, type StageName } from './planner.js';

/** A generated probe program, as a provider shows it. */
export interface ProbeProgramText {
  readonly provider: string;
  readonly language: string;
  readonly text: string;
}

const STAGE_TITLES: Record<StageName, string> = {
  probe: 'probe stage    (where the event fires)',
  machine: 'machine stage  (the agent on each host)',
  cluster: 'cluster stage  (the client: all hosts)',
};

/** Prints the stages of a plan, where each part runs and why, and the generated probe programs. */
export function explainPlan(plan: StagedPlan, programs: readonly ProbeProgramText[] = []): string {
  const out: string[] = [];
  const { probe, machine, cluster, logical } = plan;
  // A query of several lines keeps them (a # comment runs to its line's end).
  out.push(`query: ${logical.query.trim().split(/\s*\n\s*/).join('\n       ')}`);
  out.push(`sources: ${probe.sources.map((s) => `${s.schema.point} (${s.schema.provider})`).join(', ')}`);
  if (logical.hosts) out.push(`hosts: those where ${printExpr(logical.hosts)} (each agent checks its own name; the client expects only those)`);
  out.push('');

  out.push(STAGE_TITLES.probe);
  if (probe.filter) out.push(`  filter     ${printExpr(probe.filter)}`);
  if (probe.aggregate) out.push(`  aggregate  ${describeAggregate(probe.aggregate)}   (partial; read every flush)`);
  if (probe.ship) out.push(`  ship       ${probe.ship.values.map((v) => v.name).join(', ') || '(each event, no values)'}`);
  if (probe.record) {
    const trigger = probe.record.trigger ? `, dump when ${printExpr(probe.record.trigger)}` : ', dump at the end';
    out.push(`  record     last ${probe.record.size} of ${probe.record.columns.map((c) => c.name).join(', ')}${trigger}`);
  }

  out.push(STAGE_TITLES.machine);
  if (machine.filter) out.push(`  filter     ${printExpr(machine.filter)}`);
  if (machine.aggregate) out.push(`  aggregate  ${describeAggregate(machine.aggregate)}   (from shipped events)`);
  if (cluster.output.kind === 'Aggregate') {
    out.push(`  merge      ${probe.aggregate ? "the probe's partials" : ''}${probe.aggregate && machine.aggregate ? ' and ' : ''}${machine.aggregate ? 'its own' : ''}, per flush period`);
  }
  if (machine.columns) out.push(`  emit       ${machine.columns.map((c) => c.name).join(', ')}`);

  out.push(STAGE_TITLES.cluster);
  if (cluster.output.kind === 'Aggregate') out.push(`  merge      partials of every host; finalize ${describeAggregate(cluster.output)}`);
  for (const op of cluster.rowOperations) out.push(`  ${op.kind.toLowerCase().padEnd(10)} ${describeRowOperation(op).replace(/^\w+ /, '')}`);
  out.push(`  emit       ${describeWindowing(cluster.windowing)}`);

  out.push('');
  out.push('placement:');
  const width = Math.max(...plan.placements.map((p) => p.part.length));
  for (const p of plan.placements) out.push(`  ${p.part.padEnd(width)}  ${p.stage.padEnd(7)}  ${p.reason}`);

  for (const program of programs) {
    out.push('');
    out.push(`probe program (${program.provider}, ${program.language}):`);
    out.push(...program.text.trimEnd().split('\n').map((l) => `  ${l}`));
  }
  return out.join('\n');
}

function describeWindowing({ periodNs, coverNs }: Windowing): string {
  const period = periodNs === undefined ? 'every refresh period' : `every ${formatPeriod(periodNs)}`;
  if (coverNs === undefined) return `one running result, refreshed ${period}, final at the end`;
  if (coverNs === periodNs) return `${period}, each covering its own period`;
  return `${period}, each covering the last ${formatPeriod(coverNs)}`;
}

/** A period in ns as the shortest FayQL duration literal. */
export function formatPeriod(ns: number): string {
  const units: [string, number][] = [['d', 86400e9], ['h', 3600e9], ['m', 60e9], ['s', 1e9], ['ms', 1e6], ['us', 1e3]];
  for (const [unit, size] of units) if (ns >= size && ns % size === 0) return `${ns / size}${unit}`;
  return `${ns}ns`;
}
