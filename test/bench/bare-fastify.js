// The bare baseline of (c): a plain Fastify server in its own process with one route,
// POST /v1/settlements, that parses the JSON body and answers 201 with a JSON of the same size as
// a real settlement result (the sample file), echoing the visitId. Usage: node bare-fastify.js PORT SAMPLE.json
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const [port, samplePath] = process.argv.slice(2);
const sample = JSON.parse(readFileSync(samplePath, 'utf8'));
const app = Fastify({ logger: false });
app.get('/ready', async () => ({ status: 'ready' }));
app.post('/v1/settlements', async (request, reply) => {
  reply.code(201);
  return { ...sample, visitId: request.body.visitId, personId: request.body.personId };
});
await app.listen({ port: Number(port), host: '127.0.0.1' });
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => app.close().then(() => process.exit(0)));
