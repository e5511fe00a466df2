// A real minified library (tweetnacl's, a dependency of the NATS client) in a live process, with
// commands on stdin (serve-commands.cjs).
const nacl = require('tweetnacl/nacl-fast.min.js');
const serveCommands = require('./serve-commands.cjs');

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

serveCommands(commands);
console.log('ready');
