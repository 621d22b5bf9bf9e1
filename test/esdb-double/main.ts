// `npm run esdb-double -- [--port 2113] [--host 127.0.0.1]`: the PROTOCOL TEST DOUBLE of EventStoreDB
// on its own, for trying medaid against "an EventStoreDB" by hand. It is NOT EventStoreDB: its data is
// in memory and is lost when it stops; it says so when it starts.
import { parseArgs } from 'node:util';
import { EsdbDouble } from './esdb-double.js';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '2113' }, host: { type: 'string', default: '127.0.0.1' }, help: { type: 'boolean' } },
});
if (values.help) {
  process.stdout.write('npm run esdb-double -- [--port 2113] [--host 127.0.0.1]\n');
  process.exit(0);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  process.stderr.write(`--port must be 0 to 65535, not "${values.port}"\n`);
  process.exit(2);
}
const double = await EsdbDouble.start({ port, host: values.host });
process.stdout.write(
  [
    'medaid EventStoreDB PROTOCOL TEST DOUBLE — this is NOT EventStoreDB.',
    'It keeps its data IN MEMORY ONLY: everything is lost when it stops.',
    `listening: ${double.connectionString}`,
    `try:       npx medaid serve --data data-a --port 3000 --store '${double.connectionString}'`,
    '',
  ].join('\n'),
);
const stop = () => void double.stop().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
