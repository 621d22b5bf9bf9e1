// What a message on medaid.discharges.v1 means: JSON `{type, …fields}` with type SettleDischarge or
// ReverseSettlement, checked by the very same edge validation as HTTP (the DTOs and validateInput),
// so a body HTTP rejects is rejected here with the same details. Anything else is poison: it can
// never succeed, so it goes to the dead-letter topic instead of blocking its partition.
import type { Discharge, DomainError } from '#domain';
import { invalid, validateInput } from '../shared/validation.js';
import { ReverseSettlementDto, toDischarge } from '../commands/settlements/settlement.dto.js';

/** The HTTP body limit: a discharge command is never larger. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

export const INGRESS_COMMAND_TYPES = ['SettleDischarge', 'ReverseSettlement'] as const;
export type IngressCommandType = (typeof INGRESS_COMMAND_TYPES)[number];

export type IngressCommand =
  | { type: 'SettleDischarge'; hospitalId: string; visitId: string; discharge: Discharge }
  | { type: 'ReverseSettlement'; hospitalId: string; visitId: string; reason: string };

/** A poison message's error: the contract's error shape (code, message, details). */
export interface PoisonError {
  code: string;
  message: string;
  details: DomainError['details'];
}

/**
 * A decoded message, or why it is refused. A refused JSON object (`body` set) still gets an outcome
 * naming what it could of its hospital, visit and type; other poison goes only to the dead letters.
 */
export type Decoded =
  | { ok: true; command: IngressCommand }
  | { ok: false; error: PoisonError; body?: { type?: string; hospitalId?: string; visitId?: string } };

const poison = (code: string, field: string, problem: string): Decoded => ({
  ok: false,
  error: { code, message: `${field}: ${problem}`, details: [{ field, problem }] },
});

/** What a refused body says of itself, where it says it as text. */
function echo(body: Record<string, unknown>): { type?: string; hospitalId?: string; visitId?: string } {
  const out: { type?: string; hospitalId?: string; visitId?: string } = {};
  for (const k of ['type', 'hospitalId', 'visitId'] as const) {
    const v = body[k];
    if (typeof v === 'string' && v.length <= 64) out[k] = v;
  }
  return out;
}

/** The key rule: a command's Kafka key is `hospitalId:visitId` of its body, so one visit stays on one partition whoever produced it. */
export const visitKey = (hospitalId: string, visitId: string) => `${hospitalId}:${visitId}`;

/** Decodes a message and checks its key against its body. */
export function decodeKeyedMessage(key: Buffer | null, value: Buffer | null): Decoded {
  const decoded = decodeDischargeMessage(value);
  if (!decoded.ok) return decoded;
  const { hospitalId, visitId, type } = decoded.command;
  const expected = visitKey(hospitalId, visitId);
  if (key?.toString('utf8') === expected) return decoded;
  const problem = `must be "${expected}", the body's hospitalId:visitId (it decides the partition, and so the order of a visit's commands)`;
  return { ...poison('VALIDATION_FAILED', '(key)', problem), body: { type, hospitalId, visitId } } as Decoded;
}

export function decodeDischargeMessage(value: Buffer | null): Decoded {
  if (value === null) return poison('VALIDATION_FAILED', '(message)', 'has no value (a tombstone is not a command)');
  if (value.length > MAX_MESSAGE_BYTES) return poison('PAYLOAD_TOO_LARGE', '(message)', `must be at most ${MAX_MESSAGE_BYTES} bytes`);
  let body: unknown;
  try {
    // fatal: bytes that are not UTF-8 are refused rather than silently replaced.
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(value));
  } catch {
    return poison('VALIDATION_FAILED', '(message)', 'must be a UTF-8 JSON object');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return poison('VALIDATION_FAILED', '(message)', 'must be a JSON object');
  const { type, ...fields } = body as Record<string, unknown>;
  const refused = (error: PoisonError): Decoded => ({ ok: false, error, body: echo(body as Record<string, unknown>) });
  switch (type) {
    case 'SettleDischarge': {
      const d = toDischarge(fields);
      if (!d.ok) return refused(d.error);
      return { ok: true, command: { type, hospitalId: d.value.hospitalId, visitId: d.value.visitId, discharge: d.value } };
    }
    case 'ReverseSettlement': {
      const r = validateInput(ReverseSettlementDto, fields);
      if (!r.ok) return refused(r.error);
      return { ok: true, command: { type, hospitalId: r.value.hospitalId, visitId: r.value.visitId, reason: r.value.reason } };
    }
    default: {
      // A serializer's default PascalCase (C#: "Type", "HospitalId") is the usual cause: say so.
      const cased = type === undefined ? Object.keys(fields).find((k) => k.toLowerCase() === 'type') : undefined;
      const hint = cased === undefined ? '' : ` (field names are camelCase: "${cased}" is not "type")`;
      const { error } = invalid([{ field: 'type', problem: `must be one of ${INGRESS_COMMAND_TYPES.join(', ')}${hint}` }]);
      return refused(error);
    }
  }
}
