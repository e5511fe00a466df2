// Two web applications in one process, as installed from npm: an express app (with a router mounted
// under /api) and a fastify app, each on its own port. Routes answer after a fixed delay, so that a
// test knows each request's duration. The first line says the express port; the command
// "fastify 0" answers with the fastify port, "get <n> <port>/<path>" makes n requests, one after another.
const http = require('http');
const express = require('express');
const fastify = require('fastify');
const serveCommands = require('./serve-commands.cjs');

const later = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const app = express();
app.get('/users/:id', async (req, res) => {
  await later(20);
  res.send(`user ${req.params.id}`);
});
const api = express.Router();
api.get('/items/:item', async (req, res) => {
  await later(40);
  res.status(201).send(`item ${req.params.item}`);
});
app.use('/api', api);

const fast = fastify();
fast.get('/orders/:order', async (request) => {
  await later(30);
  return { order: request.params.order };
});
fast.get('/ping', async () => 'pong');

function get(n, target) {
  const slash = target.indexOf('/');
  const [port, path] = [Number(target.slice(0, slash)), target.slice(slash)];
  const one = () =>
    new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      }).on('error', reject);
    });
  return (async () => {
    const statuses = [];
    for (let i = 0; i < n; i++) statuses.push(await one());
    return statuses.join(',');
  })();
}

let fastifyPort;
const server = app.listen(0, '127.0.0.1', async () => {
  await fast.listen({ port: 0, host: '127.0.0.1' });
  fastifyPort = fast.server.address().port;
  console.log(`listening ${server.address().port}`);
});

serveCommands({ fastify: () => fastifyPort, get });
