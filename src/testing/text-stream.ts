import { Writable } from 'node:stream';

/** A writable stream that keeps what is written, for a sink under test to write to. */
export function textStream(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}
