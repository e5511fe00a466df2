/**
 * The command's standard output and error as a pipe's reader sees them. Node.js writes to a pipe
 * asynchronously: what is written sits in memory until the reader takes it, and process.exit()
 * throws away whatever is still there (a slow reader got 731 of 2,323 lines). So every command
 * ends by waiting until both streams are flushed, a long run waits for the reader as it prints,
 * and a reader that goes away (`| head`) ends the command quietly instead of with an EPIPE.
 */

/** A stream as far as waiting for it goes: process.stdout, or a test's stream. */
type Stream = NodeJS.WritableStream & { readonly writableNeedDrain?: boolean; readonly writableLength?: number; readonly destroyed?: boolean };

let readerGone = false;
const goneListeners = new Set<() => void>();

/** Whether the error means the reader is gone: the pipe closed, or the stream was torn down after it did. */
function isGone(error: NodeJS.ErrnoException): boolean {
  return error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED' || error.code === 'ECONNRESET';
}

/** Installs the handlers: call once, at the start of the command. */
export function watchStdio(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (!isGone(error)) throw error;
      if (stream !== process.stdout || readerGone) return;
      readerGone = true;
      for (const listener of goneListeners) listener();
    });
  }
}

/** Whether standard output's reader went away. */
export function stdoutClosed(): boolean {
  return readerGone;
}

/** Calls `listener` once standard output's reader goes away; returns how to stop listening. */
export function onStdoutClosed(listener: () => void): () => void {
  goneListeners.add(listener);
  return () => goneListeners.delete(listener);
}

/** Resolves once the stream has taken everything written so far off the process's hands (or cannot). */
export function drained(stream: Stream): Promise<void> {
  if (!stream.writableNeedDrain || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

/** Resolves once everything written to the stream so far has been handed to the operating system. */
export function flushed(stream: Stream): Promise<void> {
  if (stream.destroyed || stream.writableLength === 0) return Promise.resolve();
  // A write's callback runs once it and everything before it are written (or failed).
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/** Exits with `code` once standard output and error have been written out to their readers. */
export async function exitFlushed(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}
