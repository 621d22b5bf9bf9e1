// The gRPC edge's answer to `forbidNonWhitelisted`: protobuf decoders silently skip field numbers
// they do not know, and read a field sent with another wire type as garbage. Either would let a
// client with a different .proto have part of its request ignored or misread without being told,
// so every request is scanned before it is decoded, and such a request is refused as
// VALIDATION_FAILED, naming the field. Pure code: bytes and a message descriptor in, problems out.
import type { ErrorDetail } from '#domain';

/** Enough problems to show what is wrong; a hostile message cannot make the answer large. */
const MAX_PROBLEMS = 20;

/** Wire types (protobuf encoding): VARINT, I64, LEN, (3, 4: groups, never valid here), I32. */
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

const WIRE_TYPE_OF: Record<string, number> = {
  TYPE_INT32: VARINT,
  TYPE_INT64: VARINT,
  TYPE_UINT32: VARINT,
  TYPE_UINT64: VARINT,
  TYPE_SINT32: VARINT,
  TYPE_SINT64: VARINT,
  TYPE_BOOL: VARINT,
  TYPE_ENUM: VARINT,
  TYPE_FIXED64: I64,
  TYPE_SFIXED64: I64,
  TYPE_DOUBLE: I64,
  TYPE_FIXED32: I32,
  TYPE_SFIXED32: I32,
  TYPE_FLOAT: I32,
  TYPE_STRING: LEN,
  TYPE_BYTES: LEN,
  TYPE_MESSAGE: LEN,
};

/** The parts of a DescriptorProto (as @grpc/proto-loader gives it in `requestType.type`) the scan needs. */
export interface MessageDescriptor {
  name: string;
  field?: Array<{ name: string; number: number; label: string; type: string; typeName?: string }>;
  nestedType?: MessageDescriptor[];
}

interface FieldShape {
  name: string;
  wireTypes: readonly number[];
  nested?: MessageShape;
}
export interface MessageShape {
  name: string;
  fields: Map<number, FieldShape>;
}

/**
 * The field numbers of a message and the wire types each may arrive in. Nested message types
 * declared inside the message (map entries among them) are followed; a repeated numeric field may
 * also arrive packed (LEN), as proto3 sends it.
 */
export function shapeOf(descriptor: MessageDescriptor): MessageShape {
  const fields = new Map<number, FieldShape>();
  for (const f of descriptor.field ?? []) {
    const wireType = WIRE_TYPE_OF[f.type];
    if (wireType === undefined)
      throw new Error(`field ${descriptor.name}.${f.name} has type ${f.type}, which the request scan does not know`);
    const packable = f.label === 'LABEL_REPEATED' && wireType !== LEN;
    const nestedName = f.type === 'TYPE_MESSAGE' ? f.typeName?.split('.').pop() : undefined;
    const nested = descriptor.nestedType?.find((n) => n.name === nestedName);
    fields.set(f.number, { name: f.name, wireTypes: packable ? [wireType, LEN] : [wireType], nested: nested && shapeOf(nested) });
  }
  return { name: descriptor.name, fields };
}

/** What is wrong with the encoding of a message: unknown field numbers, wrong wire types, bad bytes. */
export function wireProblems(bytes: Uint8Array, shape: MessageShape, prefix = ''): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const reader = new Reader(bytes);
  while (!reader.done() && problems.length < MAX_PROBLEMS) {
    const tag = reader.varint();
    const fieldNumber = tag === null ? 0 : Math.floor(tag / 8);
    const wireType = tag === null ? -1 : tag % 8;
    const end = fieldNumber === 0 ? null : reader.skip(wireType);
    if (end === null) {
      problems.push({ field: prefix === '' ? '(message)' : prefix.slice(0, -1), problem: `is not a well-formed ${shape.name} message` });
      break;
    }
    const field = shape.fields.get(fieldNumber);
    if (field === undefined) {
      problems.push({ field: `${prefix}#${fieldNumber}`, problem: `field number ${fieldNumber} is not a field of ${shape.name}` });
    } else if (!field.wireTypes.includes(wireType)) {
      problems.push({
        field: `${prefix}${field.name}`,
        problem: `was sent with wire type ${wireType}; this field takes wire type ${field.wireTypes.join(' or ')}`,
      });
    } else if (field.nested !== undefined) {
      // a LEN field: its payload starts after the length prefix
      const payload = bytes.subarray(end.payloadStart, end.next);
      problems.push(...wireProblems(payload, field.nested, `${prefix}${field.name}.`));
    }
  }
  return problems.slice(0, MAX_PROBLEMS);
}

class Reader {
  position = 0;
  constructor(private readonly bytes: Uint8Array) {}

  done(): boolean {
    return this.position >= this.bytes.length;
  }

  /** A base-128 varint of at most 10 bytes; exact up to 2^53, which covers tags and lengths. */
  varint(): number | null {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10 && this.position < this.bytes.length; i++) {
      const byte = this.bytes[this.position++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    return null;
  }

  /** Skips one field value; null when it runs past the end or the wire type is not valid. */
  skip(wireType: number): { payloadStart: number; next: number } | null {
    let length: number | null;
    switch (wireType) {
      case VARINT:
        return this.varint() === null ? null : { payloadStart: this.position, next: this.position };
      case I64:
        length = 8;
        break;
      case I32:
        length = 4;
        break;
      case LEN:
        length = this.varint();
        break;
      default:
        return null; // groups (3, 4) and 6, 7 do not exist in proto3
    }
    if (length === null || this.position + length > this.bytes.length) return null;
    const payloadStart = this.position;
    this.position += length;
    return { payloadStart, next: this.position };
  }
}

/** What a request the scan refused decodes to: the controller answers it with VALIDATION_FAILED. */
export class MalformedRequest {
  constructor(readonly details: ErrorDetail[]) {}
}
