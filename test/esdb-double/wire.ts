// PROTOCOL TEST DOUBLE — this is NOT EventStoreDB. Conversions between the double's log and the gRPC
// messages of EventStoreDB's public protocol (test/esdb-double/protos), as decoded and encoded by
// @grpc/proto-loader with { keepCase, longs: String, oneofs } (oneof members are named by a virtual field).
import type { Expected, Proposed, StoredEvent } from './log.js';

/* The decoded shapes of the messages the double reads, as far as it reads them. */
export interface Empty {
  [key: string]: never;
}
export interface Uuid {
  value?: 'string' | 'structured';
  string?: string;
}
export interface StreamIdentifier {
  stream_name: Buffer;
}
export interface FilterExpression {
  regex?: string;
  prefix?: string[];
}
export interface ReadOptions {
  stream_option: 'stream' | 'all';
  stream?: { stream_identifier: StreamIdentifier; revision_option: 'revision' | 'start' | 'end'; revision?: string };
  all?: { all_option: 'position' | 'start' | 'end'; position?: { commit_position: string; prepare_position: string } };
  read_direction?: 'Forwards' | 'Backwards';
  count_option: 'count' | 'subscription';
  count?: string;
  filter_option: 'filter' | 'no_filter';
  filter?: {
    filter: 'stream_identifier' | 'event_type';
    stream_identifier?: FilterExpression;
    event_type?: FilterExpression;
    window: 'max' | 'count';
    max?: number;
    checkpointIntervalMultiplier?: number;
  };
}
export interface ProposedMessage {
  id: Uuid;
  metadata?: Record<string, string>;
  custom_metadata?: Buffer;
  data?: Buffer;
}

/** EventStoreDB's default search window of a filtered read or subscription when the client sends `count`. */
const DEFAULT_FILTER_WINDOW = 32;

export function streamName(identifier: StreamIdentifier | undefined): string {
  return Buffer.from(identifier?.stream_name ?? Buffer.alloc(0)).toString('utf8');
}

export function uuidString(uuid: Uuid | undefined): string {
  // The Node client always sends (and asks for) the string form; the structured form is not needed here.
  if (uuid?.string === undefined) throw new Error('only string UUIDs are supported by the test double');
  return uuid.string;
}

/** A proposed message as EventStoreDB checks it: the type and content-type metadata are required. */
export function toProposed(message: ProposedMessage): Proposed | string {
  const type = message.metadata?.['type'];
  const contentType = message.metadata?.['content-type'];
  if (type === undefined) return 'type';
  if (contentType === undefined) return 'content-type';
  return {
    id: uuidString(message.id),
    type,
    contentType,
    data: Buffer.from(message.data ?? []),
    metadata: Buffer.from(message.custom_metadata ?? []),
  };
}

/** The expected revision of Append (field names of AppendReq.Options) or BatchAppend (BatchAppendReq.Options). */
export function toExpected(options: Record<string, unknown>, oneof: string, revisionField: string): Expected {
  switch (options[oneof]) {
    case revisionField:
      return { kind: 'revision', revision: Number(options[revisionField] as string) };
    case 'no_stream':
      return { kind: 'no_stream' };
    case 'stream_exists':
      return { kind: 'stream_exists' };
    default:
      return { kind: 'any' };
  }
}

/** ReadResp.ReadEvent, with the $all position on stream reads too, as EventStoreDB does since 22.6 for gRPC-written events. */
export function toReadEvent(e: StoredEvent): Record<string, unknown> {
  const position = String(e.position);
  return {
    event: {
      id: { string: e.id },
      stream_identifier: { stream_name: Buffer.from(e.stream, 'utf8') },
      stream_revision: String(e.revision),
      prepare_position: position,
      commit_position: position,
      metadata: { type: e.type, 'content-type': e.contentType, created: String(e.createdTicks) },
      custom_metadata: e.metadata,
      data: e.data,
    },
    commit_position: position,
  };
}

/** The filter of a filtered $all read or subscription, and how often it sends checkpoints. */
export function toFilter(options: ReadOptions): { allows: (e: StoredEvent) => boolean; checkpointEvery: number } {
  const filter = options.filter;
  if (options.filter_option !== 'filter' || filter === undefined) return { allows: () => true, checkpointEvery: Infinity };
  const onType = filter.filter === 'event_type';
  const expression = (onType ? filter.event_type : filter.stream_identifier) ?? {};
  const regex = expression.regex ? new RegExp(expression.regex) : undefined;
  const prefixes = expression.prefix ?? [];
  const window = filter.window === 'max' && filter.max ? filter.max : DEFAULT_FILTER_WINDOW;
  return {
    allows: (e) => {
      const subject = onType ? e.type : e.stream;
      return regex !== undefined ? regex.test(subject) : prefixes.some((p) => subject.startsWith(p));
    },
    checkpointEvery: window * Math.max(1, filter.checkpointIntervalMultiplier ?? 1),
  };
}

/** google.protobuf.Any holding event_store.client.WrongExpectedVersion (shared.proto), encoded by hand. */
export function wrongExpectedVersionAny(current: number | undefined, expected: Expected): { type_url: string; value: Buffer } {
  const bytes: number[] = [];
  if (current === undefined)
    bytes.push(0x12, 0x00); // 2: current_no_stream (Empty)
  else bytes.push(0x08, ...varint(current)); // 1: current_stream_revision
  if (expected.kind === 'revision')
    bytes.push(0x18, ...varint(expected.revision)); // 3: expected_stream_position
  else bytes.push({ any: 0x22, stream_exists: 0x2a, no_stream: 0x32 }[expected.kind], 0x00); // 4, 5, 6 (Empty)
  return { type_url: 'type.googleapis.com/event_store.client.WrongExpectedVersion', value: Buffer.from(bytes) };
}

/** shared.proto MaximumAppendSizeExceeded { uint32 maxAppendSize = 1; } as an Any, the way BatchAppend reports it. */
export function maximumAppendSizeExceededAny(maxAppendSize: number): { type_url: string; value: Buffer } {
  return {
    type_url: 'type.googleapis.com/event_store.client.MaximumAppendSizeExceeded',
    value: Buffer.from([0x08, ...varint(maxAppendSize)]),
  };
}

/** AppendResp.WrongExpectedVersion, the form Streams.Append answers with since 20.10. */
export function appendWrongExpectedVersion(current: number | undefined, expected: Expected): Record<string, unknown> {
  const currentField = current === undefined ? { current_no_stream: {} } : { current_revision: String(current) };
  const expectedField =
    expected.kind === 'revision'
      ? { expected_revision: String(expected.revision) }
      : expected.kind === 'no_stream'
        ? { expected_no_stream: {} }
        : expected.kind === 'stream_exists'
          ? { expected_stream_exists: {} }
          : { expected_any: {} };
  return { wrong_expected_version: { ...currentField, ...expectedField } };
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = BigInt(value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}
