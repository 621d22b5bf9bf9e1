// The load generator of (c), run as a child process of its own (test/bench/http.js starts it for
// each side): its latencies are measured on a fresh heap, not in the bench process, whose earlier
// sections leave hundreds of MB for the garbage collector to deal with in the middle of a run.
//   node test/bench/http-load.js '{"port":…,"connections":50,"seconds":10,"warmupSeconds":2,"persons":2000,"prefix":"http"}'
// prints one JSON line: the measured run's summary.
import autocannon from 'autocannon';
import { dischargeFor } from './common.js';

/**
 * One autocannon run; every request body is a new discharge (visitId `${prefix}${n}`), sent with
 * its hospital's `authorization` when `tokens` ({hospitalId: header}) is given. With `reads`
 * ({paths, authorization}) it GETs those paths in turn instead.
 */
function load(port, { connections, seconds, persons, prefix, overallRate, tokens, reads }) {
  let n = 0;
  const settle = {
    method: 'POST',
    path: '/v1/settlements',
    headers: { 'content-type': 'application/json' },
    setupRequest: (req) => {
      const i = n++;
      const discharge = dischargeFor(i, i % persons, prefix);
      const headers = tokens === undefined ? req.headers : { ...req.headers, authorization: tokens[discharge.hospitalId] };
      return { ...req, headers, body: JSON.stringify(discharge) };
    },
  };
  const read = reads && {
    method: 'GET',
    headers: { authorization: reads.authorization },
    setupRequest: (req) => ({ ...req, path: reads.paths[n++ % reads.paths.length] }),
  };
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    // An open-loop rate (requests/s over all connections) when given: latency at a fixed load, not at saturation.
    ...(overallRate === undefined ? {} : { overallRate }),
    pipelining: 1,
    duration: seconds,
    timeout: 10,
    requests: [read ?? settle],
  });
}

function summarise(result) {
  const created = result.statusCodeStats?.['201']?.count ?? 0;
  // (reads: every 200 is a read answered and recorded)
  return {
    rate: result['2xx'] / result.duration,
    created,
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
    duration: result.duration,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
  };
}

const options = JSON.parse(process.argv[2] ?? '{}');
await load(options.port, { ...options, seconds: options.warmupSeconds, prefix: `${options.prefix}w` });
const result = summarise(await load(options.port, { ...options, prefix: `${options.prefix}m` }));
process.stdout.write(`${JSON.stringify(result)}\n`);
