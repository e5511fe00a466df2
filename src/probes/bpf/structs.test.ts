import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kindOf, parseStruct } from './structs.js';

describe("the kernel's structs, as bpftrace lists them from BTF", () => {
  it('reads the members of a definition, leaving out nested blocks', () => {
    const members = parseStruct(
      ['struct sockaddr_in6 {', '\tshort unsigned int sin6_family;', '\t__be16 sin6_port;', '\tstruct in6_addr sin6_addr;', '\tchar name[16];', '\tunion {', '\t\t__u8 u6_addr8[16];', '\t} in6_u;', '\tvoid (*fn)(int);', '};', ''].join('\n'),
    );
    assert.deepEqual(members, [
      { name: 'sin6_family', cType: 'short unsigned int' },
      { name: 'sin6_port', cType: '__be16' },
      { name: 'sin6_addr', cType: 'struct in6_addr' },
      { name: 'name', cType: 'char[16]' },
    ]);
  });

  it('says what a C type is to a query: a number, a string, a struct to read into, an array of strings', () => {
    assert.deepEqual(kindOf('const struct __kernel_timespec *'), { kind: 'struct', struct: '__kernel_timespec', pointer: true });
    assert.deepEqual(kindOf('struct in6_addr'), { kind: 'struct', struct: 'in6_addr', pointer: false });
    assert.deepEqual(kindOf('const char *const *'), { kind: 'strings' });
    assert.deepEqual(kindOf('const char *'), { kind: 'str', inline: false });
    assert.deepEqual(kindOf('char[16]'), { kind: 'str', inline: true });
    assert.deepEqual(kindOf('long long int'), { kind: 'int' });
    assert.deepEqual(kindOf('__kernel_time64_t'), { kind: 'int' });
    assert.deepEqual(kindOf('__u32[4]'), { kind: 'opaque' });
    assert.deepEqual(kindOf('struct page **'), { kind: 'opaque' });
  });
});
