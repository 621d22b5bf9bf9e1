// A receiver of OTLP/HTTP JSON traces, as a collector would be: the spans a service exports, with
// their resource's service name.
import { createServer, type Server } from 'node:http';

type Obj = Record<string, any>;

export interface OtlpReceiver {
  /** OTEL_EXPORTER_OTLP_ENDPOINT for the service. */
  endpoint: string;
  /** Every export request received: its content type and body. */
  exported: Obj[];
  spans(): Obj[];
  /** Waits (up to 5 s) until a span matches. */
  waitFor(match: (span: Obj) => boolean): Promise<void>;
  close(): Promise<void>;
}

export async function otlpReceiver(): Promise<OtlpReceiver> {
  const exported: Obj[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.url === '/v1/traces') exported.push({ contentType: req.headers['content-type'], body: JSON.parse(body) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const spans = () =>
    exported.flatMap((e) =>
      (e.body.resourceSpans as Obj[]).flatMap((rs) => {
        const service = rs.resource.attributes.find((a: Obj) => a.key === 'service.name')?.value.stringValue;
        return (rs.scopeSpans as Obj[]).flatMap((ss) => (ss.spans as Obj[]).map((s) => ({ ...s, service })));
      }),
    );
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    exported,
    spans,
    async waitFor(match) {
      for (let i = 0; i < 200 && !spans().some(match); i++) await new Promise((r) => setTimeout(r, 25));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
