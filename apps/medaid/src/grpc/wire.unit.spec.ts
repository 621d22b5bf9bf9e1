// The request scan (wire.ts) on messages encoded by a real protobuf encoder (@grpc/proto-loader
// on the service's own .proto), and on bytes a client with another .proto, or a broken one, sends.
import { describe, expect, it } from '@jest/globals';
import protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { shapeOf, wireProblems } from './wire.js';
import type { MessageDescriptor } from './wire.js';

const PROTO = fileURLToPath(new URL('../../../../proto/medaid/settlement/v1/settlement.proto', import.meta.url));
const definition = protoLoader.loadSync(PROTO, { longs: Number, enums: String, defaults: true, oneofs: false });
const settle = (definition['medaid.settlement.v1.SettlementService'] as Record<string, protoLoader.MethodDefinition<object, object>>)
  .Settle!;
const shape = shapeOf(settle.requestType.type as unknown as MessageDescriptor);
const encode = (message: object) => settle.requestSerialize(message);

const discharge = {
  hospitalId: 'h-county',
  visitId: 'v-1',
  personId: 'p-1',
  region: '360827',
  scheme: 'nrcms',
  visitType: 'inpatient',
  hospitalLevel: 'county',
  admissionDate: '2012-03-01',
  dischargeDate: '2012-03-10',
  diagnosisCodes: ['C34.9', 'I10'],
  totalFen: 1_000_000,
  fullOwnPayFen: 0,
  preSelfPayFen: 300_000,
  externalPayments: { basic: 5, critical: 7 },
};

/** A tag: field number and wire type as one varint (all numbers here are below 16, so one byte). */
const tag = (field: number, wireType: number) => (field << 3) | wireType;

describe('wireProblems', () => {
  it('finds nothing wrong with what the real encoder writes, every field set', () => {
    expect(wireProblems(encode(discharge), shape)).toEqual([]);
    expect(wireProblems(encode({}), shape)).toEqual([]);
  });

  it('names a field number the .proto does not define', () => {
    // Given a valid message followed by field 99 (varint 1), as a client with an extra field sends it
    const bytes = Buffer.concat([encode(discharge), Buffer.from([0x98, 0x06, 0x01])]);
    // then the unknown field is refused by number
    expect(wireProblems(bytes, shape)).toEqual([{ field: '#99', problem: 'field number 99 is not a field of Discharge' }]);
  });

  it('names a known field sent with another wire type (a double where the fen is an int64)', () => {
    const double = Buffer.alloc(9);
    double[0] = tag(11, 1);
    double.writeDoubleLE(100.5, 1);
    expect(wireProblems(double, shape)).toEqual([
      { field: 'totalFen', problem: 'was sent with wire type 1; this field takes wire type 0' },
    ]);
  });

  it('names a string field sent as a number (an enum where the spec has a text)', () => {
    expect(wireProblems(Buffer.from([tag(7, 0), 0x02]), shape)).toEqual([
      { field: 'hospitalLevel', problem: 'was sent with wire type 0; this field takes wire type 2' },
    ]);
  });

  it('looks into map entries', () => {
    // Given an externalPayments entry {key: "basic", value: 5, field 3: 1}
    const entry = Buffer.concat([Buffer.from([tag(1, 2), 5]), Buffer.from('basic'), Buffer.from([tag(2, 0), 5, tag(3, 0), 1])]);
    const bytes = Buffer.concat([Buffer.from([tag(15, 2), entry.length]), entry]);
    expect(wireProblems(bytes, shape)).toEqual([
      { field: 'externalPayments.#3', problem: 'field number 3 is not a field of ExternalPayments' },
    ]);
  });

  it('refuses truncated and malformed bytes instead of reading past them', () => {
    const valid = encode(discharge);
    expect(wireProblems(valid.subarray(0, valid.length - 3), shape)).toEqual([
      { field: '(message)', problem: 'is not a well-formed Discharge message' },
    ]);
    expect(wireProblems(Buffer.from([0xff, 0xff, 0xff]), shape)).toHaveLength(1); // a tag that never ends
    expect(wireProblems(Buffer.from([tag(11, 3)]), shape)).toHaveLength(1); // a group, which proto3 has not
    expect(wireProblems(Buffer.from([0x00, 0x01]), shape)).toHaveLength(1); // field number 0
  });

  it('reports at most 20 problems, however many the message holds', () => {
    const many = Buffer.from(Array.from({ length: 500 }, () => [0x98, 0x06, 0x01]).flat());
    expect(wireProblems(many, shape)).toHaveLength(20);
  });
});
