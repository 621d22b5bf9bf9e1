// PROTOCOL TEST DOUBLE — this is NOT EventStoreDB. An in-process gRPC server (@grpc/grpc-js) that speaks
// the subset of EventStoreDB's public gRPC protocol (the .proto files in ./protos, loaded with
// @grpc/proto-loader) that libs/event-store-esdb uses through @eventstore/db-client 6.x:
// ServerFeatures.GetSupportedMethods (connection time), Streams.Append, Streams.BatchAppend (used instead
// of Append when advertised, as EventStoreDB >= 21.10 does) and Streams.Read (a stream or $all, forwards
// or backwards, with a count, or as a catch-up-then-live $all subscription with confirmation, caught-up,
// filter and checkpoint messages). Storage is in memory (./log.ts) with EventStoreDB's append semantics.
// Test controls: start on a free port, stop/restart on the same port keeping the data, drop every live
// subscription, stall (accept calls but never answer), hold one stream's appends until released (a writer
// paused between two calls), answer an append as timed out after writing it, and append system events.
// Like EventStoreDB it refuses an append bigger than its maximum append size (1 MiB by default).
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { DoubleLog, type Expected, type Proposed, type StoredEvent } from './log.js';
import {
  appendWrongExpectedVersion,
  streamName,
  toExpected,
  toFilter,
  toProposed,
  toReadEvent,
  uuidString,
  wrongExpectedVersionAny,
  maximumAppendSizeExceededAny,
  type ProposedMessage,
  type ReadOptions,
} from './wire.js';

// Next to this file in the sources; the build (dist/test/esdb-double, for `npm run esdb-double`) reads them there too.
const HERE = dirname(fileURLToPath(import.meta.url));
const PROTO_DIR = existsSync(join(HERE, 'protos')) ? join(HERE, 'protos') : join(HERE, '../../../test/esdb-double/protos');
const SUBSCRIPTION_PAGE = 100;
const SERVER_VERSION = '0.0.0-protocol-test-double';

/* eslint-disable @typescript-eslint/no-explicit-any -- proto-loader's decoded messages are untyped */
type AnyMessage = any;

function loadServices(): { streams: grpc.ServiceDefinition; features: grpc.ServiceDefinition } {
  const definition = protoLoader.loadSync(['streams.proto', 'serverfeatures.proto'], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as AnyMessage;
  return {
    streams: loaded.event_store.client.streams.Streams.service,
    features: loaded.event_store.client.server_features.ServerFeatures.service,
  };
}

export interface EsdbDoubleOptions {
  /** Advertise Streams.BatchAppend (default true, as EventStoreDB >= 21.10); false makes the client use Streams.Append. */
  batchAppend?: boolean;
  /**
   * Most bytes of one append (its events' data and metadata), as EventStoreDB's MaxAppendSize
   * (default 1 MiB there and here): a bigger append is refused whole, MaximumAppendSizeExceeded.
   */
  maxAppendSize?: number;
  /** The port to listen on (default 0: a free one). */
  port?: number;
  /** The address to listen on (default 127.0.0.1). */
  host?: string;
}

interface LiveSubscription {
  call: grpc.ServerWritableStream<AnyMessage, AnyMessage>;
  closed: boolean;
  wake: () => void;
}

export class EsdbDouble {
  readonly log = new DoubleLog();
  private server: grpc.Server | undefined;
  private port = 0;
  private stalled = false;
  /** Streams whose appends wait (accepted, answered later) until released: a writer paused between two calls. */
  private readonly held = new Map<string, Array<() => void>>();
  /** Streams whose next append is written, then answered as a timeout (timeOutAfterCommit). */
  private readonly committedThenTimedOut = new Set<string>();
  private readonly subscriptions = new Set<LiveSubscription>();
  private readonly services = loadServices();
  private get maxAppendSize(): number {
    return this.options.maxAppendSize ?? 1024 * 1024;
  }

  private constructor(private readonly options: EsdbDoubleOptions) {
    // EventStoreDB writes records of its own at start-up; a user-looking type in a $-stream among them.
    for (const [stream, type] of [
      ['$users', '$User'],
      ['$user-admin', '$UserCreated'],
      ['$settings', 'update-default-acl'],
    ] as const) {
      this.appendSystemEvent(stream, type);
    }
  }

  /** Starts on a free port of 127.0.0.1. */
  static async start(options: EsdbDoubleOptions = {}): Promise<EsdbDouble> {
    const double = new EsdbDouble(options);
    double.port = options.port ?? 0;
    await double.listen();
    return double;
  }

  get connectionString(): string {
    return `esdb://${this.options.host ?? '127.0.0.1'}:${this.port}?tls=false`;
  }

  get liveSubscriptions(): number {
    return this.subscriptions.size;
  }

  /** Stops at once (open calls fail as UNAVAILABLE); the data is kept for restart(). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.subscriptions.forEach((sub) => this.close(sub));
    server?.forceShutdown();
  }

  /** A crash and restart on the same port: the data survives, the in-memory idempotency cache does not. */
  async restart(): Promise<void> {
    await this.stop();
    this.log.forgetIdCache();
    this.stalled = false;
    await this.listen();
  }

  /** Ends every live subscription with UNAVAILABLE, as a server does when it drops them. */
  dropSubscriptions(): number {
    const count = this.subscriptions.size;
    for (const sub of [...this.subscriptions]) {
      this.close(sub);
      sub.call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'subscription dropped by the protocol test double' });
    }
    return count;
  }

  /** While stalled, new calls are accepted but never answered (a hung server), to test deadlines. */
  stall(stalled = true): void {
    this.stalled = stalled;
  }

  /**
   * Appends to the stream wait until the returned release is called; then they are processed in order,
   * or dropped unanswered with `release(false)` (a write that never reached the server: its client died).
   */
  holdAppends(stream: string): (process?: boolean) => void {
    this.held.set(stream, []);
    return (process = true) => {
      const waiting = this.held.get(stream) ?? [];
      this.held.delete(stream);
      if (process) waiting.forEach((run) => run());
    };
  }

  /**
   * The next append to the stream is written and then answered as timed out — what a server does
   * when the commit outlives the call's deadline: the client cannot tell it from a write that never
   * happened, and must retry with the same ids.
   */
  timeOutAfterCommit(stream: string): void {
    this.committedThenTimedOut.add(stream);
  }

  /** How many appends to a held stream are waiting. */
  heldAppends(stream: string): number {
    return this.held.get(stream)?.length ?? 0;
  }

  /** Runs an append now, or when its stream is released. */
  private whenReleased(stream: string, run: () => void): void {
    const waiting = this.held.get(stream);
    if (waiting === undefined) run();
    else waiting.push(run);
  }

  appendSystemEvent(stream: string, type: string, data: unknown = {}): void {
    const proposed: Proposed = {
      id: randomUUID(),
      type,
      contentType: 'application/json',
      data: Buffer.from(JSON.stringify(data)),
      metadata: Buffer.alloc(0),
    };
    this.log.append(stream, { kind: 'any' }, [proposed]);
  }

  private async listen(): Promise<void> {
    const server = new grpc.Server();
    server.addService(this.services.features, { GetSupportedMethods: this.supportedMethods.bind(this) });
    server.addService(this.services.streams, {
      Read: (call: grpc.ServerWritableStream<AnyMessage, AnyMessage>) => void this.read(call).catch((error) => call.destroy(error)),
      Append: this.append.bind(this),
      BatchAppend: this.batchAppend.bind(this),
    });
    const address = `${this.options.host ?? '127.0.0.1'}:${this.port}`;
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
    );
    this.server = server;
  }

  private supportedMethods(_call: unknown, callback: grpc.sendUnaryData<AnyMessage>): void {
    if (this.stalled) return;
    const method = (service: string, name: string, features: string[] = []) => ({ method_name: name, service_name: service, features });
    const methods = [
      method('event_store.client.streams.streams', 'read', ['position', 'events']),
      method('event_store.client.streams.streams', 'append'),
      method('event_store.client.server_features.serverfeatures', 'getsupportedmethods'),
    ];
    if (this.options.batchAppend !== false) methods.push(method('event_store.client.streams.streams', 'batchappend'));
    callback(null, { methods, event_store_server_version: SERVER_VERSION });
  }

  private append(call: grpc.ServerReadableStream<AnyMessage, AnyMessage>, callback: grpc.sendUnaryData<AnyMessage>): void {
    if (this.stalled) return; // never answered: the client's deadline must end the call
    let options: AnyMessage;
    const messages: ProposedMessage[] = [];
    call.on('data', (req: AnyMessage) => (req.content === 'options' ? (options = req.options) : messages.push(req.proposed_message)));
    call.on('error', () => undefined); // a cancelled call: nothing to answer
    call.on('end', () => {
      const proposed = messages.map(toProposed);
      const missing = proposed.find((p): p is string => typeof p === 'string');
      if (missing !== undefined || options === undefined) return callback(missingMetadata(missing ?? 'options'));
      const expected = toExpected(options, 'expected_stream_revision', 'revision');
      const stream = streamName(options.stream_identifier);
      if (appendSize(proposed as Proposed[]) > this.maxAppendSize) return callback(maximumAppendSizeExceeded(this.maxAppendSize));
      this.whenReleased(stream, () => {
        const outcome = this.log.append(stream, expected, proposed as Proposed[]);
        if (outcome.kind === 'wrong_expected_version') return callback(null, appendWrongExpectedVersion(outcome.current, expected));
        if (this.committedThenTimedOut.delete(stream))
          return callback(
            Object.assign(new Error('Timeout'), { code: grpc.status.DEADLINE_EXCEEDED, details: 'Timeout', metadata: new grpc.Metadata() }),
          );
        callback(null, { success: { ...revisionField(outcome.lastRevision, 'current_revision'), ...positionField(outcome.position) } });
      });
    });
  }

  private batchAppend(call: grpc.ServerDuplexStream<AnyMessage, AnyMessage>): void {
    const pending = new Map<string, { options: AnyMessage; messages: ProposedMessage[] }>();
    call.on('error', () => undefined);
    call.on('end', () => call.end());
    call.on('data', (req: AnyMessage) => {
      if (this.stalled) return; // accepted, never answered
      const id = uuidString(req.correlation_id);
      const entry = pending.get(id) ?? { options: req.options, messages: [] };
      pending.set(id, entry);
      entry.messages.push(...(req.proposed_messages ?? []));
      if (!req.is_final) return;
      pending.delete(id);
      this.whenReleased(streamName(entry.options.stream_identifier), () =>
        call.write({
          correlation_id: { string: id },
          stream_identifier: entry.options.stream_identifier,
          ...this.batchResult(entry.options, entry.messages),
        }),
      );
    });
  }

  private batchResult(options: AnyMessage, messages: ProposedMessage[]): AnyMessage {
    const expected = toExpected(options, 'expected_stream_position', 'stream_position');
    const echo = expected.kind === 'revision' ? { stream_position: String(expected.revision) } : { [expected.kind]: {} };
    const refused = (code: string, message: string, details: { type_url: string; value: Buffer }) => ({
      ...echo,
      error: { code, message, details },
    });
    const timeout = () => refused('DEADLINE_EXCEEDED', 'Timeout', emptyAny('Timeout'));
    const deadline = options.deadline;
    if (deadline !== undefined && Number(deadline.seconds) * 1000 + deadline.nanos / 1e6 < Date.now()) return timeout();
    const proposed = messages.map(toProposed);
    if (proposed.some((p) => typeof p === 'string'))
      return refused('INVALID_ARGUMENT', 'required metadata property missing', emptyAny('Unknown'));
    if (appendSize(proposed as Proposed[]) > this.maxAppendSize)
      return refused('INVALID_ARGUMENT', 'Maximum Append Size Exceeded', maximumAppendSizeExceededAny(this.maxAppendSize));
    const outcome = this.log.append(streamName(options.stream_identifier), expected, proposed as Proposed[]);
    if (outcome.kind === 'wrong_expected_version')
      return refused('FAILED_PRECONDITION', 'WrongExpectedVersion', wrongExpectedVersionAny(outcome.current, expected));
    if (this.committedThenTimedOut.delete(streamName(options.stream_identifier))) return timeout();
    const position =
      outcome.position === undefined
        ? { no_position: {} }
        : { position: { commit_position: String(outcome.position), prepare_position: String(outcome.position) } };
    return { ...echo, success: { ...revisionField(outcome.lastRevision, 'current_revision'), ...position } };
  }

  private async read(call: grpc.ServerWritableStream<AnyMessage, AnyMessage>): Promise<void> {
    if (this.stalled) return;
    const options = call.request.options as ReadOptions;
    if (options.count_option === 'subscription') return this.subscribe(call, options);
    const count = Number(options.count ?? '0');
    const backwards = options.read_direction === 'Backwards';
    let events: StoredEvent[];
    if (options.stream_option === 'stream') {
      const stream = options.stream!;
      const from = stream.revision_option === 'revision' ? Number(stream.revision) : stream.revision_option;
      const found = this.log.readStream(streamName(stream.stream_identifier), from, backwards, count);
      if (found === undefined) {
        call.write({ stream_not_found: { stream_identifier: stream.stream_identifier } });
        return void call.end();
      }
      events = found;
    } else {
      const all = options.all!;
      const from = all.all_option === 'position' ? Number(all.position!.commit_position) : all.all_option;
      const { allows } = toFilter(options);
      events = this.log
        .readAll(from, backwards, options.filter_option === 'filter' ? Infinity : count)
        .filter(allows)
        .slice(0, count);
    }
    for (const e of events) {
      if (call.cancelled) return;
      if (!call.write({ event: toReadEvent(e) })) await once(call, 'drain');
    }
    call.end();
  }

  /** Catch-up from an exclusive position, then live, from one index into the log; no buffering of live events. */
  private async subscribe(call: grpc.ServerWritableStream<AnyMessage, AnyMessage>, options: ReadOptions): Promise<void> {
    if (options.stream_option !== 'all')
      return void call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'the test double subscribes to $all only' });
    const sub: LiveSubscription = { call, closed: false, wake: () => undefined };
    this.subscriptions.add(sub);
    call.on('cancelled', () => this.close(sub));
    call.on('close', () => this.close(sub));
    const all = options.all!;
    let index =
      all.all_option === 'start'
        ? 0
        : all.all_option === 'end'
          ? this.log.size
          : this.log.indexAtOrAfter(Number(all.position!.commit_position));
    if (all.all_option === 'position' && this.log.eventsFrom(index, 1)[0]?.position === Number(all.position!.commit_position)) index++;
    const { allows, checkpointEvery } = toFilter(options);
    let considered = 0;
    let caughtUp = false;
    call.write({ confirmation: { subscription_id: randomUUID() } });
    while (!sub.closed) {
      const page = this.log.eventsFrom(index, SUBSCRIPTION_PAGE);
      if (page.length === 0) {
        if (!caughtUp) call.write({ caught_up: {} });
        caughtUp = true;
        await new Promise<void>((resolve) => {
          const off = this.log.onAppend(() => sub.wake());
          sub.wake = () => (off(), resolve());
        });
        continue;
      }
      for (const e of page) {
        if (sub.closed) return;
        index++;
        considered++;
        const message = allows(e) ? toReadEvent(e) : undefined;
        if (message !== undefined && !call.write({ event: message })) await once(call, 'drain');
        if (considered >= checkpointEvery) {
          considered = 0;
          call.write({ checkpoint: { commit_position: String(e.position), prepare_position: String(e.position) } });
        }
      }
    }
  }

  private close(sub: LiveSubscription): void {
    sub.closed = true;
    this.subscriptions.delete(sub);
    sub.wake();
  }
}

function revisionField(lastRevision: number, field: string): Record<string, unknown> {
  return lastRevision < 0 ? { no_stream: {} } : { [field]: String(lastRevision) };
}

function positionField(position: number | undefined): Record<string, unknown> {
  return position === undefined
    ? { no_position: {} }
    : { position: { commit_position: String(position), prepare_position: String(position) } };
}

/** An error detail with no fields (event_store.client.Timeout, …Unknown) as an Any. */
const emptyAny = (name: string) => ({ type_url: `type.googleapis.com/event_store.client.${name}`, value: Buffer.alloc(0) });

/** What EventStoreDB counts against MaxAppendSize: every proposed event's data and metadata. */
const appendSize = (proposed: readonly Proposed[]) => proposed.reduce((sum, p) => sum + p.data.length + p.metadata.length, 0);

/** Streams.Append's refusal of a too big append: the exception and the limit in the trailers, as the server sends them. */
function maximumAppendSizeExceeded(max: number): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  metadata.set('exception', 'maximum-append-size-exceeded');
  metadata.set('maximum-append-size', String(max));
  return Object.assign(new Error('Maximum Append Size Exceeded'), {
    code: grpc.status.INVALID_ARGUMENT,
    details: 'Maximum Append Size Exceeded',
    metadata,
  });
}

function missingMetadata(property: string): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  metadata.set('exception', 'missing-required-metadata-property');
  metadata.set('required-metadata-properties', property);
  return Object.assign(new Error(`required metadata property ${property} is missing`), {
    code: grpc.status.INVALID_ARGUMENT,
    details: `missing ${property}`,
    metadata,
  });
}

export type { Expected, StoredEvent };
