// The HTTP service: NestJS on Fastify, one JSON log line per request, OpenAPI at /docs.
import { CallHandler, ExecutionContext, LoggerService, NestInterceptor } from '@nestjs/common';
import { SpanStatusCode, context, type Span } from '@opentelemetry/api';
import { Observable } from 'rxjs';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import { createHash } from 'node:crypto';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { randomUUID } from 'node:crypto';
import { Lifecycle, MedaidModule } from '../app.module.js';
import { MedaidRuntime } from '../infrastructure/runtime.js';
import { accessLog, log } from '../shared/log.js';
import { metrics } from '../shared/metrics.js';
import { startServerSpan, tracingOn } from '../shared/tracing.js';
import { ErrorFilter } from './errors.js';
import type { TlsSettings } from './identity.js';

/**
 * How long in-flight requests may take to finish after SIGTERM before their connections are cut;
 * well inside the usual 30 s grace period of an orchestrator, so the store is always closed
 * cleanly before a SIGKILL could come.
 */
const DRAIN_DEADLINE_MS = 10_000;

/** Policy documents are the largest bodies (a few tens of KB); nothing needs more than this. */
const BODY_LIMIT_BYTES = 1024 * 1024;

export interface HttpOptions {
  logRequests: boolean;
  /** Requests one caller (a token, or an address without one) may make per minute before 429 (default 600,000: floods only). */
  rateLimitPerMinute?: number;
  /** HTTPS, and client certificates when a client CA is given (the auth file's "tls"; identity.ts). */
  tls?: TlsSettings | null;
  /** Registers the gRPC controller too; main.ts connects and starts the gRPC server (grpc/grpc-server.ts). */
  grpc?: boolean;
}

export async function createHttpApp(runtime: MedaidRuntime, options: HttpOptions): Promise<NestFastifyApplication> {
  const tls = options.tls ?? null;
  const adapter = new FastifyAdapter({
    ...(tls === null
      ? {}
      : {
          https: {
            cert: tls.cert,
            key: tls.key,
            minVersion: 'TLSv1.2' as const,
            ...(tls.clientCa === null
              ? {}
              : // 'optional': a certificate is asked for, and one that does not verify is refused per request
                // (401, with the reason: actor.ts); 'required': the handshake itself refuses it.
                { ca: tls.clientCa, requestCert: true, rejectUnauthorized: tls.clientCertificates === 'required' }),
          },
        }),
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // A URL the router cannot take (a path segment over 100 characters, a malformed escape) gets
    // the service's error shape too, without the URL (it may name a person).
    frameworkErrors: (error: { code?: string }, _request: unknown, reply: FastifyReply) => {
      const long = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const problem = long ? 'a path segment is longer than 100 characters' : 'the path is not a valid URL path';
      void reply
        .code(400)
        .header('content-type', 'application/json; charset=utf-8')
        .send({ code: 'VALIDATION_FAILED', message: `(path): ${problem}`, details: [{ field: '(path)', problem }] });
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    MedaidModule.forRoot(runtime, { http: true, grpc: options.grpc ?? false }),
    adapter,
    {
      logger: new JsonLogger(),
      bodyParser: false, // the JSON parser is ours (below): UTF-8 checked first
    },
  );
  app.useGlobalFilters(new ErrorFilter());
  if (tracingOn) app.useGlobalInterceptors(new TraceInterceptor());
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);

  const fastify = app.getHttpAdapter().getInstance();
  const lifecycle = app.get(Lifecycle);
  // Security headers on every answer (HSTS, nosniff, frame-ancestors, a strict CSP …).
  await app.register(helmet as never, { global: true });
  // A per-caller limit: a token's digest (never the token) or, without one, the address. The
  // orchestrator's probes and the metrics scrape are not counted.
  await app.register(rateLimit as never, {
    global: true,
    max: options.rateLimitPerMinute ?? 600_000,
    timeWindow: 60_000,
    allowList: (request: FastifyRequest) => /^\/(health|ready|metrics)(\?|$)/.test(request.url),
    keyGenerator: (request: FastifyRequest) => {
      const authorization = request.headers.authorization;
      return typeof authorization === 'string'
        ? `token:${createHash('sha256').update(authorization).digest('hex').slice(0, 32)}`
        : `address:${request.ip}`;
    },
    errorResponseBuilder: (_request: FastifyRequest, context: { after: string; max: number }) =>
      Object.assign(new Error(`more than ${context.max} requests a minute from this caller: retry after ${context.after}`), {
        statusCode: 429,
        code: 'RATE_LIMITED',
      }),
  });
  // JSON bodies must be valid UTF-8 (RFC 8259): a body that is not is refused, rather than stored
  // with replacement characters the client never sent. Then Fastify's own parser, which refuses
  // __proto__ and constructor keys.
  const json = fastify.getDefaultJsonParser('error', 'error');
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      done(Object.assign(new Error('the body is not valid UTF-8'), { statusCode: 400 }), undefined);
      return;
    }
    json(request, text, done);
  });
  fastify.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // While draining, every answer closes its connection: otherwise a keep-alive connection that was
  // busy when shutdown began stays open until the keep-alive timeout, and the store stays open.
  fastify.addHook('onSend', async (_request, reply) => {
    if (lifecycle.draining) reply.header('connection', 'close');
  });
  lifecycle.onDrain(() => {
    const server = app.getHttpServer();
    setTimeout(() => server.closeAllConnections(), DRAIN_DEADLINE_MS).unref();
  });
  fastify.addHook('onResponse', async (request, reply) => {
    const outcome = (request as unknown as { medaidOutcome?: string }).medaidOutcome ?? (reply.statusCode < 400 ? 'ok' : 'error');
    endServerSpan(request as unknown as TracedRequest, reply.statusCode, outcome);
    metrics.http(request.method, request.routeOptions.url ?? '(no route)', reply.statusCode, outcome, reply.elapsedTime / 1000);
  });
  if (options.logRequests) {
    fastify.addHook('onResponse', async (request, reply) => {
      const outcome = (request as unknown as { medaidOutcome?: string }).medaidOutcome ?? (reply.statusCode < 400 ? 'ok' : 'error');
      // The route's pattern, not the URL: a URL names the person (/v1/persons/{personId}), which
      // a log line must not.
      accessLog.info(
        {
          requestId: request.id,
          method: request.method,
          route: request.routeOptions.url ?? '(no route)',
          status: reply.statusCode,
          outcome,
          durationMs: Math.round(reply.elapsedTime * 100) / 100,
        },
        'request',
      );
    });
  }

  const doc = new DocumentBuilder()
    .setTitle('medaid — 一站式 medical-aid settlement')
    .setDescription(
      'Settles discharges across basic insurance, critical-illness insurance and medical aid. Money is integer fen (分); ratios are basis points.',
    )
    .setVersion('1')
    .build();
  SwaggerModule.setup('docs', app, SwaggerModule.createDocument(app, doc));
  return app;
}

interface TracedRequest {
  method: string;
  headers: Record<string, unknown>;
  routeOptions: { url?: string };
  medaidSpan?: Span;
}

/** With tracing on: each request's handler runs in its server span (startServerSpan), ended with the answer. */
class TraceInterceptor implements NestInterceptor {
  intercept(execution: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (execution.getType() !== 'http') return next.handle();
    const request = execution.switchToHttp().getRequest<TracedRequest>();
    const route = request.routeOptions.url ?? '(no route)';
    const { span, context: active } = startServerSpan(
      `${request.method} ${route}`,
      { 'http.request.method': request.method, 'http.route': route },
      request.headers,
    );
    request.medaidSpan = span;
    return new Observable((subscriber) => context.with(active, () => next.handle().subscribe(subscriber)));
  }
}

function endServerSpan(request: TracedRequest, status: number, outcome: string): void {
  const span = request.medaidSpan;
  if (span === undefined) return;
  span.setAttributes({ 'http.response.status_code': status, 'medaid.outcome': outcome });
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
  span.end();
}

/** Nest's own log lines through the service's log (stderr), so stdout carries only request lines. */
class JsonLogger implements LoggerService {
  log(message: unknown, context?: unknown) {
    if (context === 'RoutesResolver' || context === 'RouterExplorer' || context === 'InstanceLoader') return;
    log.info({ context }, String(message));
  }
  error(message: unknown, ...rest: unknown[]) {
    log.error({ context: rest[rest.length - 1] }, String(message));
  }
  warn(message: unknown, context?: unknown) {
    log.warn({ context }, String(message));
  }
}
