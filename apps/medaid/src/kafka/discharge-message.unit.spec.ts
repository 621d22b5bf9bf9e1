// Decoding a message of medaid.discharges.v1: the same edge validation as HTTP, poison recognised.
import { describe, expect, it } from '@jest/globals';
import 'reflect-metadata';
import { toDischarge } from '../commands/settlements/settlement.dto.js';
import { MAX_MESSAGE_BYTES, decodeDischargeMessage, decodeKeyedMessage } from './discharge-message.js';

const DISCHARGE = {
  hospitalId: 'h-county',
  visitId: 'v-1',
  personId: 'p-1',
  region: '360827',
  scheme: 'nrcms',
  visitType: 'inpatient',
  hospitalLevel: 'county',
  admissionDate: '2012-03-01',
  dischargeDate: '2012-03-10',
  totalFen: 1_000_000,
};
const bytes = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

describe('decodeDischargeMessage', () => {
  it('given a SettleDischarge, then it is the discharge HTTP would settle, defaults applied', () => {
    const decoded = decodeDischargeMessage(bytes({ type: 'SettleDischarge', ...DISCHARGE }));
    const viaHttp = toDischarge(DISCHARGE);
    expect(viaHttp.ok).toBe(true);
    expect(decoded).toEqual({
      ok: true,
      command: { type: 'SettleDischarge', hospitalId: 'h-county', visitId: 'v-1', discharge: viaHttp.ok && viaHttp.value },
    });
  });

  it('given a ReverseSettlement, then it names the visit and the reason', () => {
    const decoded = decodeDischargeMessage(bytes({ type: 'ReverseSettlement', hospitalId: 'h', visitId: 'v', reason: '录入错误' }));
    expect(decoded).toEqual({ ok: true, command: { type: 'ReverseSettlement', hospitalId: 'h', visitId: 'v', reason: '录入错误' } });
  });

  it('given invalid fields, then it is VALIDATION_FAILED with exactly the details HTTP gives', () => {
    const body = { ...DISCHARGE, totalFen: '100', extra: 1 };
    const viaHttp = toDischarge(body);
    const decoded = decodeDischargeMessage(bytes({ type: 'SettleDischarge', ...body }));
    expect(viaHttp.ok).toBe(false);
    expect(decoded).toEqual({
      ok: false,
      error: !viaHttp.ok && viaHttp.error,
      body: { type: 'SettleDischarge', hospitalId: DISCHARGE.hospitalId, visitId: DISCHARGE.visitId },
    });
  });

  it.each([
    ['no key', null],
    ['an empty key', ''],
    ['the person id', 'p-1'],
    ['another visit', `${DISCHARGE.hospitalId}:other`],
  ])('given %s as the key, then the command is refused on (key) with what the body says of itself', (_what, key) => {
    const decoded = decodeKeyedMessage(key === null ? null : Buffer.from(key), bytes({ type: 'SettleDischarge', ...DISCHARGE }));
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.error.details.map((d) => d.field)).toEqual(['(key)']);
    expect(!decoded.ok && decoded.body).toEqual({ type: 'SettleDischarge', hospitalId: DISCHARGE.hospitalId, visitId: DISCHARGE.visitId });
  });

  it('given PascalCase field names (a C# serializer default), then the error says field names are camelCase', () => {
    const decoded = decodeDischargeMessage(bytes({ Type: 'SettleDischarge', HospitalId: 'h' }));
    expect(!decoded.ok && decoded.error.details).toEqual([
      { field: 'type', problem: 'must be one of SettleDischarge, ReverseSettlement (field names are camelCase: "Type" is not "type")' },
    ]);
  });

  it('given the key hospitalId:visitId of the body, then the command is decoded', () => {
    const decoded = decodeKeyedMessage(
      Buffer.from(`${DISCHARGE.hospitalId}:${DISCHARGE.visitId}`),
      bytes({ type: 'SettleDischarge', ...DISCHARGE }),
    );
    expect(decoded.ok && decoded.command.type).toBe('SettleDischarge');
  });

  it.each([
    ['not JSON', bytes('{"type": '), '(message)'],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), '(message)'],
    ['a JSON array', bytes([1, 2]), '(message)'],
    ['JSON null', bytes('null'), '(message)'],
    ['an unknown type', bytes({ type: 'PreviewDischarge', ...DISCHARGE }), 'type'],
    ['no type', bytes(DISCHARGE), 'type'],
    ['a reversal without a reason', bytes({ type: 'ReverseSettlement', hospitalId: 'h', visitId: 'v' }), 'reason'],
    ['a prototype key', bytes('{"type":"SettleDischarge","__proto__":{"x":1}}'), '__proto__'],
    ['a tombstone', null, '(message)'],
  ])('given %s, then it is poison (VALIDATION_FAILED on %s)', (_what, value, field) => {
    const decoded = decodeDischargeMessage(value as Buffer | null);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) {
      expect(decoded.error.code).toBe('VALIDATION_FAILED');
      expect(decoded.error.details.map((d) => d.field)).toContain(field);
    }
  });

  it('given a message over the HTTP body limit, then it is PAYLOAD_TOO_LARGE without being parsed', () => {
    const decoded = decodeDischargeMessage(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20));
    expect(decoded.ok ? 'ok' : decoded.error.code).toBe('PAYLOAD_TOO_LARGE');
  });
});
