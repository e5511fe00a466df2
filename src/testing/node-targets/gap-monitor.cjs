// Watches a heartbeat from outside the process that beats: a byte on stdin every few ms. Over its
// IPC channel, { mark: true } starts a stretch, and { since: true } answers with the longest gap
// between two beats since the mark, in ms ({ longest, at }: when that gap ended, ms since the mark).
// A process of its own, so that nothing the test or the agent does delays its clock.
let last;
let mark = performance.now();
let longest = 0;
let at = 0;
process.stdin.on('data', () => {
  const now = performance.now();
  if (last !== undefined && now - last > longest) {
    longest = now - last;
    at = now - mark;
  }
  last = now;
});
process.on('message', (message) => {
  if (message && message.mark) {
    mark = performance.now();
    longest = 0;
    at = 0;
    last = undefined;
    process.send({ marked: true });
  } else if (message && message.since) {
    // The beat still pending counts too: a process stopped right now is in a gap.
    const pending = last === undefined ? 0 : performance.now() - last;
    process.send({ longest: Math.round(Math.max(longest, pending)), at: Math.round(at) });
  }
});
process.on('disconnect', () => process.exit(0));
