// A real minified library (tweetnacl's, a dependency of the NATS client) in a live process: commands
// on stdin, "done <command> <result>" on stdout, as in app.cjs.
const nacl = require('tweetnacl/nacl-fast.min.js');

const originalHash = nacl.hash;

const commands = {
  // The SHA-512 of n one-byte messages; the last one's first bytes, in hex.
  hash: (n) => {
    let digest = new Uint8Array(0);
    for (let i = 0; i < n; i++) digest = nacl.hash(new Uint8Array([i]));
    return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
  },
  // Whether nacl.hash is the library's own function again.
  original: () => nacl.hash === originalHash,
};

console.log('ready');
let buffer = '';
process.stdin.setEncoding('utf8');
process.stdin.on('end', () => process.exit(0));
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  let at;
  while ((at = buffer.indexOf('\n')) >= 0) {
    const [name, n] = buffer.slice(0, at).trim().split(' ');
    buffer = buffer.slice(at + 1);
    console.log(`done ${name} ${commands[name](Number(n))}`);
  }
});
