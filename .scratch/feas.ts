import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Assembler, disassemble, encode, FP, HELPERS } from '../src/probes/native/asm.js';
const a = new Assembler();
// r1 = ctx; id = ctx->args[1]
a.load('u64', 2, 1, 8).jumpImm('ne', 2, 110, 'out');
a.storeImm('u32', FP, -4, 0).mov(2, FP).aluImm('add', 2, -4).loadMap(1, 0).call(HELPERS.map_lookup_elem).jumpImm('eq', 0, 0, 'out');
a.load('u64', 1, 0, 0).aluImm('add', 1, 1).store('u64', 0, 0, 1);
a.label('out').aluImm('mov', 0, 0).exit();
const code = a.assemble();
console.log(disassemble(code, ['counts']).join('\n'));
const child = spawn('/tmp/nat/fay-bpf-loader', [], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = createInterface({ input: child.stdout! });
const it = lines[Symbol.asyncIterator]();
child.stdin!.write(`map 6 4 8 1 counts\nprog 17 ${encode(code).toString('hex')}\nattach raw 0 sys_enter\ngo\n`);
console.log((await it.next()).value);
const t0 = process.hrtime.bigint();
spawnSync('python3', ['-c', 'import os\nfor _ in range(1000): os.getppid()']);
child.stdin!.write('read 0\n');
for (;;) { const l = (await it.next()).value as string; console.log(l); if (l === 'end') break; }
child.stdin!.end('quit\n');
