import type { ClusterView } from '../../src/web/protocol.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function cells(values: readonly string[]): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const v of values) {
    const td = document.createElement('td');
    td.textContent = v;
    tr.append(td);
  }
  return tr;
}

/** The cluster (fay ps as a page): agents heard and the queries running or standing on them, each with a Stop. */
export function renderCluster(view: ClusterView, stop: (queryId: string) => void): void {
  $('cluster-note').textContent = view.note ?? `${view.agents.length} agent${view.agents.length === 1 ? '' : 's'}`;
  $<HTMLTableElement>('agents').tBodies[0]!.replaceChildren(
    ...view.agents.map((a) => cells([a.host, a.version, a.kernel, `${(a.heardMsAgo / 1000).toFixed(1)} s ago`, String(a.queries)])),
  );
  $<HTMLTableElement>('cluster-queries').tBodies[0]!.replaceChildren(
    ...view.queries.map((q) => {
      const tr = cells([q.id, q.state, q.hosts.join(', '), q.log ?? '', q.rows === undefined ? '' : String(q.rows), q.text]);
      tr.dataset.query = q.id;
      const td = document.createElement('td');
      const button = document.createElement('button');
      button.textContent = 'Stop';
      button.className = 'stop-query';
      button.addEventListener('click', () => stop(q.id));
      td.append(button);
      tr.append(td);
      return tr;
    }),
  );
}
