import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameNamer, scriptName } from './frames.js';

// Where V8 puts these functions in a CPU profile (line and column of the parameters' start), as measured.
const SOURCE = [
  "const inspector = require('inspector');",
  'function Reply() {}',
  'Reply.prototype.send = function (payload) { let x = 0; for (let i = 0; i < 1e6; i++) x += i; return x; };',
  'const obj = { handler: function () { let y = 0; return [1].map((v) => v + y); } };',
].join('\n');
const URL = 'file:///srv/app/node_modules/fastify/lib/reply.js';

describe("a CPU profile's frames, named as js: probes name functions", () => {
  const namer = new FrameNamer((url) => (url === URL ? SOURCE : undefined));

  it('names a function by its js: name, its script by its path in the package, and the line it starts on', () => {
    assert.equal(namer.frame(`Reply.send\t${URL}\t2\t32`), 'Reply.prototype.send (fastify/lib/reply.js:3)');
    assert.equal(namer.frame(`handler\t${URL}\t3\t32`), 'obj.handler (fastify/lib/reply.js:4)');
    // An arrow inside it: the innermost function at that place.
    const arrow = SOURCE.split('\n')[3]!.indexOf('(v) =>');
    assert.equal(namer.frame(`\t${URL}\t3\t${arrow}`), 'anonymous@4 (fastify/lib/reply.js:4)');
  });

  it("keeps V8's name where the script cannot be read, and frames without a script as they are", () => {
    assert.equal(namer.frame('emit\tnode:events\t470\t10'), 'emit (node:events:471)');
    assert.equal(namer.frame('\tfile:///gone.js\t0\t0'), '(anonymous) (gone.js:1)');
    assert.equal(namer.frame('(idle)'), '(idle)');
    assert.equal(namer.stack(`Reply.send\t${URL}\t2\t32\n(fay)\nemit\tnode:events\t470\t10`), 'Reply.prototype.send (fastify/lib/reply.js:3)\n(fay)\nemit (node:events:471)');
  });

  it('names scripts short: a package path, else the file name', () => {
    assert.equal(scriptName('file:///a/node_modules/@scope/pkg/index.js'), '@scope/pkg/index.js');
    assert.equal(scriptName('file:///srv/app/server.js'), 'server.js');
    assert.equal(scriptName('node:internal/streams/readable'), 'readable');
  });
});
