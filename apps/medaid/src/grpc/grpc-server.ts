// The gRPC adapter: serves proto/medaid/settlement/v1/settlement.proto from the same NestJS
// application as the HTTP API (a hybrid app: Nest's gRPC transport next to Fastify, sharing the
// module, the command bus and the store). The only file that imports @grpc/grpc-js.
//
// It is Nest's ServerGrpc (Transport.GRPC) with four additions: the bound port is kept (so port 0
// can be logged), every request is scanned for unknown fields before decoding (wire.ts), failures
// get their metadata and one log line per call, and shutdown drains with a deadline like HTTP's.
import * as grpc from '@grpc/grpc-js';
import type { INestApplication } from '@nestjs/common';
import { ServerGrpc } from '@nestjs/microservices';
import type { CustomStrategy } from '@nestjs/microservices';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ID_PATTERN } from '#domain';
import { isGrpcFailure, toGrpcFailure } from './grpc-errors.js';
import type { GrpcFailure } from './grpc-errors.js';
import { MalformedRequest, shapeOf, wireProblems } from './wire.js';
import type { MessageDescriptor } from './wire.js';
import { accessLog } from '../shared/log.js';
import type { TlsSettings } from '../http/identity.js';
import { metrics } from '../shared/metrics.js';
import { context } from '@opentelemetry/api';
import { startServerSpan, tracingOn } from '../shared/tracing.js';

export const PROTO_PATH = fileURLToPath(new URL('../../../../../proto/medaid/settlement/v1/settlement.proto', import.meta.url));
export const PROTO_PACKAGE = 'medaid.settlement.v1';

/**
 * How messages become objects: camelCase field names (the JSON keys of the HTTP API), int64 as
 * plain numbers (every valid fen, ≤ 10^11, is a safe integer; larger values stay too large and
 * are refused), defaults for plain fields, and absent `optional` fields left out (no synthetic
 * oneof keys), so that "not given" reaches the DTO as not given.
 */
export const LOADER_OPTIONS = { keepCase: false, longs: Number, defaults: true, oneofs: false, arrays: true, objects: true };

/** The HTTP body limit; no request of this service comes near it. */
const MAX_MESSAGE_BYTES = 1024 * 1024;
/** Calls in flight on one connection; the store's own queue bounds the rest. */
const MAX_CONCURRENT_STREAMS = 1_000;
/** As for HTTP: in-flight calls get this long after SIGTERM, then they are cancelled. */
const DRAIN_DEADLINE_MS = 10_000;

export interface GrpcListenOptions {
  host: string;
  port: number;
  logCalls: boolean;
  /** TLS, and client certificates when a client CA is given (the auth file's "tls"; http/identity.ts). */
  tls?: TlsSettings | null;
}

type UnaryHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => Promise<void>;

export class MedaidGrpcServer extends ServerGrpc {
  /** The port bound: the one asked for, or the one the system picked for port 0. */
  boundPort: number | null = null;
  private closing: Promise<void> | null = null;

  constructor(private readonly listenOptions: GrpcListenOptions) {
    super({
      package: PROTO_PACKAGE,
      protoPath: PROTO_PATH,
      loader: LOADER_OPTIONS,
      url: `${listenOptions.host.includes(':') ? `[${listenOptions.host}]` : listenOptions.host}:${listenOptions.port}`,
      onLoadPackageDefinition: (definition: Record<string, unknown>) => guardRequests(definition),
    });
  }

  get address(): { address: string; port: number | null } {
    return { address: this.listenOptions.host, port: this.boundPort };
  }

  override async createClient(): Promise<grpc.Server> {
    const server = new grpc.Server({
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_concurrent_streams': MAX_CONCURRENT_STREAMS,
    });
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.url, serverCredentials(this.listenOptions.tls ?? null), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
    return server;
  }

  /**
   * Stops taking calls and lets those in flight finish, at most DRAIN_DEADLINE_MS. Called when
   * draining begins (SIGTERM) and again by Nest when it closes the app; both wait for the same drain,
   * which ends before the store is closed.
   */
  override close(): Promise<void> {
    this.closing ??= this.drain();
    return this.closing;
  }

  private async drain(): Promise<void> {
    const server = this.grpcClient as grpc.Server | null | undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, DRAIN_DEADLINE_MS);
      server.tryShutdown(() => {
        clearTimeout(deadline);
        resolve();
      });
    });
    this.grpcClient = null;
  }

  /** Nest's unary call, plus the request id, the failure's status and metadata, and the log line. */
  override createUnaryServiceMethod(methodHandler: Function): Function {
    const handle = super.createUnaryServiceMethod(methodHandler) as UnaryHandler;
    return (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const startedMs = performance.now();
      const requestId = requestIdOf(call.metadata);
      call.metadata.set('x-request-id', requestId); // the controller records it as the correlation id
      const echoed = new grpc.Metadata();
      echoed.set('x-request-id', requestId);
      call.sendMetadata(echoed);
      // With tracing on, the call is a server span (continuing a traceparent sent as metadata).
      const traced = tracingOn
        ? startServerSpan(call.getPath().slice(1), { 'rpc.system': 'grpc', 'rpc.method': call.getPath() }, call.metadata.getMap())
        : null;
      const run = () =>
        handle(call, (error, value) => {
          const failure = error === null || error === undefined ? null : isGrpcFailure(error) ? error : toGrpcFailure(error);
          const status = grpc.status[failure?.code ?? grpc.status.OK];
          metrics.grpc(call.getPath(), status, failure?.medaidCode ?? 'ok', (performance.now() - startedMs) / 1000);
          if (traced !== null) {
            traced.span.setAttributes({
              'rpc.system': 'grpc',
              'rpc.grpc.status_code': failure?.code ?? 0,
              'medaid.outcome': failure?.medaidCode ?? 'ok',
            });
            traced.span.end();
          }
          if (this.listenOptions.logCalls) logCall(call.getPath(), requestId, failure, startedMs);
          if (failure === null) callback(null, value);
          else callback({ code: failure.code as number, details: failure.details, metadata: trailers(failure) });
        });
      return traced === null ? run() : context.with(traced.context, run);
    };
  }
}

/**
 * Plain, TLS, or mutual TLS. grpc-js's own createSsl either asks for no client certificate or
 * refuses a connection without a valid one; "optional" (a hospital with a certificate, an admin
 * with a token, on one port) is the same TLS server asking for a certificate without requiring it.
 * The controller then sees a certificate only when it verified (getAuthContext).
 */
function serverCredentials(tls: TlsSettings | null): grpc.ServerCredentials {
  if (tls === null) return grpc.ServerCredentials.createInsecure();
  const pair = { private_key: tls.key, cert_chain: tls.cert };
  if (tls.clientCa === null) return grpc.ServerCredentials.createSsl(null, [pair], false);
  if (tls.clientCertificates === 'required') return grpc.ServerCredentials.createSsl(tls.clientCa, [pair], true);
  return new OptionalClientCertificates(tls);
}

class OptionalClientCertificates extends grpc.ServerCredentials {
  constructor(tls: TlsSettings) {
    super({ requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, { ca: tls.clientCa!, cert: tls.cert, key: tls.key });
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** Adds the gRPC server to the application; `startAllMicroservices()` starts it. */
export function connectGrpc(
  app: INestApplication,
  lifecycle: { onDrain(listener: () => void): void },
  options: GrpcListenOptions,
): MedaidGrpcServer {
  const server = new MedaidGrpcServer(options);
  app.connectMicroservice<CustomStrategy>({ strategy: server });
  lifecycle.onDrain(() => void server.close());
  return server;
}

interface MethodDefinition {
  requestDeserialize(bytes: Buffer): unknown;
  requestType: { type: MessageDescriptor };
}

/** Makes every method scan its request first; a refused request decodes to a MalformedRequest. */
function guardRequests(definition: Record<string, unknown>): void {
  for (const entry of Object.values(definition)) {
    if (typeof entry !== 'object' || entry === null || 'format' in entry) continue; // message and enum types
    for (const method of Object.values(entry as Record<string, MethodDefinition>)) {
      const decode = method.requestDeserialize.bind(method);
      const shape = shapeOf(method.requestType.type);
      method.requestDeserialize = (bytes: Buffer) => {
        const problems = wireProblems(bytes, shape);
        if (problems.length > 0) return new MalformedRequest(problems);
        try {
          return decode(bytes);
        } catch {
          return new MalformedRequest([{ field: '(message)', problem: `is not a well-formed ${shape.name} message` }]);
        }
      };
    }
  }
}

function trailers(failure: GrpcFailure): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(failure.metadata)) metadata.set(key, value);
  return metadata;
}

/** The caller's x-request-id when it is a well-formed identifier, else a new one. */
function requestIdOf(metadata: grpc.Metadata): string {
  const given = metadata.get('x-request-id')[0];
  return typeof given === 'string' && ID_PATTERN.test(given) ? given : randomUUID();
}

/** One JSON line per call on stdout, like HTTP's request lines. */
function logCall(rpc: string, requestId: string, failure: GrpcFailure | null, startedMs: number): void {
  accessLog.info(
    {
      requestId,
      rpc,
      status: grpc.status[failure?.code ?? grpc.status.OK],
      outcome: failure?.medaidCode ?? 'ok',
      durationMs: Math.round((performance.now() - startedMs) * 100) / 100,
    },
    'grpc call',
  );
}
