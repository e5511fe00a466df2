// The test targets' command loop: "<command> <n> [arg]" lines on stdin, each answered in turn with
// "done <command> <result>" on stdout (a command may return a promise). Whoever started the process
// is gone when its stdin closes: it exits then, leaving no stray target behind.
module.exports = function serveCommands(commands, format = String) {
  let buffer = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('data', async (chunk) => {
    buffer += chunk;
    let at;
    while ((at = buffer.indexOf('\n')) >= 0) {
      const [name, n, arg] = buffer.slice(0, at).trim().split(' ');
      buffer = buffer.slice(at + 1);
      const result = await commands[name](Number(n), arg);
      console.log(`done ${name} ${format(result)}`);
    }
  });
};
