/** The part of d3-flame-graph 5 the page uses (the package has no types of its own). */
declare module 'd3-flame-graph' {
  export interface FlameGraph {
    (selection: unknown): void;
    width(px: number): FlameGraph;
    cellHeight(px: number): FlameGraph;
    transitionDuration(ms: number): FlameGraph;
    minFrameSize(px: number): FlameGraph;
    sort(on: boolean): FlameGraph;
    title(text: string): FlameGraph;
    search(term: string): void;
    clear(): void;
    resetZoom(): void;
  }
  export default function flamegraph(): FlameGraph;
}
