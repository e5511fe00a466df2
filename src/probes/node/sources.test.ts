import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isResolveFailure } from '../../plan/catalog.js';
import { generateHandlers } from './codegen.js';
import { fileInPoint, MAX_FIELD_DEPTH, parsePattern, resolveJsPoint, scriptMatcher } from './sources.js';
import { fixtureRegistry } from '../../testing/catalog-fixture.js';
import { EmbeddedCluster } from '../../cluster/embedded.js';
import { Agent } from '../../agent/agent.js';

describe('js: probe patterns', () => {
  it('reads a file part, a private name and a built-in apart', () => {
    assert.deepEqual(parsePattern('./lib/db.js#query*'), { kind: 'user', file: './lib/db.js', name: 'query*' });
    assert.deepEqual(parsePattern('lib/*.js#Cart.prototype.#total'), { kind: 'user', file: 'lib/*.js', name: 'Cart.prototype.#total' });
    assert.deepEqual(parsePattern('Cart.prototype.#total'), { kind: 'user', file: undefined, name: 'Cart.prototype.#total' });
    assert.deepEqual(parsePattern('*#handle'), { kind: 'user', file: undefined, name: 'handle' });
    assert.deepEqual(parsePattern('app.cjs#app.get(/users/:id)'), { kind: 'user', file: 'app.cjs', name: 'app.get(/users/:id)' });
    assert.deepEqual(parsePattern('fs.readFile*'), { kind: 'builtin', module: 'fs', global: undefined, path: [], key: 'readFile*' });
    assert.match(parsePattern('./lib/db.js#') as string, /names a file but no function/);
  });

  it('takes a quoted path with spaces, and quotes one in what it lists', () => {
    assert.deepEqual(parsePattern('"/srv/my app/db.js"#query'), { kind: 'user', file: '/srv/my app/db.js', name: 'query' });
    assert.deepEqual(parsePattern('"my app/db.js#query"'), { kind: 'user', file: 'my app/db.js', name: 'query' });
    assert.equal(fileInPoint('/srv/my app/db.js'), '"/srv/my app/db.js"');
    assert.equal(fileInPoint('/srv/app/db.js'), '/srv/app/db.js');
  });

  it("matches a file part against a path's last components", () => {
    const matches = (file: string, path: string) => scriptMatcher(file)!.test(path);
    assert.ok(matches('./lib/db.js', '/srv/app/lib/db.js'));
    assert.ok(matches('lib/db.js', '/srv/app/lib/db.js'));
    assert.ok(matches('/srv/app/lib/db.js', '/srv/app/lib/db.js'));
    assert.ok(!matches('lib/db.js', '/srv/app/mylib/db.js'), 'whole components only');
    assert.ok(!matches('db.js', '/srv/app/lib/mydb.js'));
    assert.ok(matches('routes/*.js', '/srv/app/routes/users.js'));
    assert.ok(matches('my app/db.js', '/srv/my app/db.js'));
    assert.equal(scriptMatcher(undefined), undefined);
  });

  it('reads properties below an argument or the return value, to a bounded depth, with the same projections', () => {
    const schema = resolveJsPoint(`js:pid=${process.pid}:app.js#handle`);
    assert.ok(!isResolveFailure(schema));
    const field = (name: string) => schema.fieldFor?.(name);
    assert.deepEqual([field('args[0].url')?.type, field('args[1].headers.host')?.type, field('args[1].items.length')?.type, field('ret.rows.number')?.type], ['str', 'str', 'int', 'int']);
    const deep = (n: number) => `args[0]${'.a'.repeat(n)}`;
    assert.equal(field(deep(MAX_FIELD_DEPTH))?.type, 'str');
    assert.equal(field(`${deep(MAX_FIELD_DEPTH)}.length`)?.type, 'int', 'a projection is no step deeper');
    assert.equal(field(deep(MAX_FIELD_DEPTH + 1)), undefined);
    assert.equal(field('args[8].url'), undefined, 'arguments 0 to 7, as args[i] itself');
    assert.equal(field('args[0]["url"]'), undefined);
  });

  it('compiles a nested field to a read of own data properties, never a property access', () => {
    const cluster = new EmbeddedCluster(new Agent(fixtureRegistry(), 'testhost'));
    const plan = cluster.plan(`js:pid=${process.pid}:app.js#handle | count() by args[0].headers.host, args[1].statusCode.number, ret.body.length`);
    const { source, args, exit } = generateHandlers(plan.probe);
    assert.match(source, /helpers\.text\(helpers\.path\(args\[0\], \["headers","host"\]\)\)/);
    assert.match(source, /helpers\.number\(helpers\.path\(args\[1\], \["statusCode"\]\)\)/);
    assert.match(source, /helpers\.length\(helpers\.path\(ret, \["body"\]\)\)/);
    assert.doesNotMatch(source, /args\[0\]\.headers|\.statusCode|ret\.body/);
    assert.ok(args && exit, 'reads the arguments, and the return side for ret');
  });
});
