// A small HTTP server for the JavaScript latency example: GET /work?ms=N answers after N ms.
import { createServer } from 'node:http';

export async function handle(url) {
  const ms = Number(new URL(url, 'http://demo').searchParams.get('ms') ?? 0);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return `worked ${ms} ms\n`;
}

const server = createServer((req, res) => {
  handle(req.url).then((body) => res.end(body), (error) => {
    res.statusCode = 500;
    res.end(String(error));
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
