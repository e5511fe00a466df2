// An ES module app: commands on stdin ("<command> <n>") answered with "done <command> <result>".
export function compute(x) {
  return x * 3;
}

export const arrow = (a, b) => a + b;

const captured = compute;

const commands = {
  compute: (n) => { let r; for (let i = 0; i < n; i++) r = captured(i); return r; },
  arrow: (n) => { let r = 0; for (let i = 0; i < n; i++) r = arrow(r, 1); return r; },
};

let buffer = '';
process.stdin.setEncoding('utf8');
// Whoever started this process is gone when its stdin closes: leave no stray target behind.
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
console.log('ready');
