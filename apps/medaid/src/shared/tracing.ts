// OpenTelemetry traces of a settlement, from the HTTP request to the store's append — exported only
// when configured (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTLP over
// HTTP; the other OTEL_* variables of the SDK apply). Without it the API's no-op tracer is all
// there is: nothing is recorded, nothing is sent. Spans carry no person, visit or any other id of
// a case — routes are patterns, streams are named by their kind.
import {
  INVALID_SPAN_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';

export const tracer = trace.getTracer('medaid');
const NO_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Whether spans are exported (the SDK was started from the environment). */
export let tracingOn = false;

/** Starts the SDK when an OTLP endpoint is configured; returns its shutdown (flushes what is pending), or null. */
export async function startTracingFromEnv(env: NodeJS.ProcessEnv): Promise<(() => Promise<void>) | null> {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || env.OTEL_TRACES_EXPORTER === 'none' || env.OTEL_SDK_DISABLED === 'true') return null;
  // Loaded only when asked for, like the EventStoreDB client.
  const { BatchSpanProcessor, NodeTracerProvider } = await import('@opentelemetry/sdk-trace-node');
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'medaid' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register(); // the global tracer, the async context and W3C trace-context propagation
  tracingOn = true;
  return () => provider.shutdown();
}

/** Runs fn in a child span of the active one; an error marks the span (its message is not recorded: it may name a case). */
export function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>, kind = SpanKind.INTERNAL): Promise<T> {
  if (!tracingOn) return fn(NO_SPAN); // nothing to record: not even a no-op span's context switch
  return tracer.startActiveSpan(name, { attributes, kind }, (span) => ended(span, fn));
}

/** fn's result, the span ended after it; an error marks the span with its code only. */
async function ended<T>(span: Span, fn: (span: Span) => Promise<T>): Promise<T> {
  try {
    return await fn(span);
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as { code?: string } | null)?.code ?? 'error' });
    throw error;
  } finally {
    span.end();
  }
}

/** A server span (an HTTP request, a gRPC call), continuing the caller's trace (a `traceparent` header or metadata) when it sends one. */
export function startServerSpan(name: string, attributes: Attributes, carrier: Record<string, unknown>): { span: Span; context: Context } {
  const parent = propagation.extract(context.active(), carrier);
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/**
 * Runs fn in a CONSUMER span for a Kafka message, continuing the producer's trace when the message
 * carries W3C trace-context headers (`traceparent`, `tracestate`).
 */
export function inConsumerSpan<T>(
  name: string,
  attributes: Attributes,
  headers: Record<string, Buffer>,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  if (!tracingOn) return fn(NO_SPAN);
  const carrier: Record<string, string> = {};
  for (const key of ['traceparent', 'tracestate']) if (headers[key] !== undefined) carrier[key] = headers[key]!.toString('latin1');
  const parent = propagation.extract(context.active(), carrier);
  const span = tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes }, parent);
  return context.with(trace.setSpan(parent, span), () => ended(span, fn));
}

/** The W3C trace-context headers of the active span, for a message produced under it ({} without tracing). */
export function traceHeaders(): Record<string, string> {
  if (!tracingOn) return {};
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** A stream named by its kind only (`person-…` → `person`): the id in it names a case. */
export const streamKind = (streamId: string): string => /^[a-z]+/.exec(streamId)?.[0] ?? 'other';
