import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leavesKernelAsFound, processesGone } from '../../testing/kernel-state.js';
import { StoppedBeforeAttaching } from '../provider.js';
import { findBpftrace } from './environment.js';
import { MARK_READY } from './layout.js';
import { BpftraceProcess } from './runner.js';

const PROGRAM = `tracepoint:syscalls:sys_enter_getppid { @calls = count(); }\nBEGIN { printf("${MARK_READY}\\n"); }\n`;

function start(program = PROGRAM): BpftraceProcess {
  const bpftrace = findBpftrace();
  assert.ok(bpftrace, 'bpftrace is installed (scripts/setup.sh installs it)');
  return new BpftraceProcess({
    bpftrace,
    program,
    mapKeysMax: 4096,
    onLine: () => undefined,
    onAttached: () => undefined,
    onWarning: () => undefined,
    onDetaching: () => undefined,
    requestStop: () => undefined,
    drainCpus: [],
  });
}

describe('a bpftrace process', () => {
  leavesKernelAsFound({ each: true });

  it('stopped while it still loads its program: attaching ends as stopped, and it finishes without a failure', async () => {
    const child = start();
    const { pid } = child;
    await child.stop();
    await assert.rejects(child.attached, StoppedBeforeAttaching);
    await child.finished;
    await processesGone(pid === undefined ? [] : [pid]);
  });

  it('attaches, and is stopped after', async () => {
    const child = start();
    await child.attached;
    await child.stop();
    await child.finished;
  });

  it('with a program bpftrace refuses: attaching fails with what bpftrace said', async () => {
    const child = start('tracepoint:syscalls:sys_enter_getppid { @x = nosuchfunction(); }');
    await assert.rejects(child.attached, /nosuchfunction/);
    await assert.rejects(child.finished, /nosuchfunction/);
  });
});
