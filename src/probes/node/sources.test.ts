import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileInPoint, parsePattern, scriptMatcher } from './sources.js';

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
});
