// One JSON command object `{type, …fields}` → the command the bus executes. Used by
// `medaid simulate` (and any line-oriented transport), so that it validates exactly as HTTP does.
import { Command } from '@nestjs/cqrs';
import { Result } from '#domain';
import { Validated, invalid, validateInput } from '../shared/validation.js';
import { CommandMeta } from '../shared/writer.js';
import { PERSON_FACT_TYPES, PersonFactType, toPersonFact } from './persons/person.dto.js';
import { RecordPersonFact } from './persons/person.handlers.js';
import { PublishPolicy } from './policies/policy.handlers.js';
import { ReverseSettlementDto, toDischarge } from './settlements/settlement.dto.js';
import { PreviewDischarge, ReverseSettlement, SettleDischarge } from './settlements/settlement.handlers.js';

export const COMMAND_TYPES = ['PublishPolicy', ...PERSON_FACT_TYPES, 'SettleDischarge', 'PreviewDischarge', 'ReverseSettlement'] as const;

export function toCommand(line: unknown, meta: CommandMeta): Validated<Command<Result<unknown>>> {
  if (line === null || typeof line !== 'object' || Array.isArray(line))
    return invalid([{ field: '(line)', problem: 'must be a JSON object' }]);
  const { type, ...fields } = line as Record<string, unknown>;
  switch (type) {
    case 'PublishPolicy': {
      const extra = Object.keys(fields).filter((k) => k !== 'policy');
      if (extra.length > 0) return invalid(extra.map((field) => ({ field, problem: 'is not a field of PublishPolicy' })));
      return { ok: true, value: new PublishPolicy(fields.policy, meta) };
    }
    case 'SettleDischarge':
    case 'PreviewDischarge': {
      const d = toDischarge(fields);
      if (!d.ok) return d;
      return { ok: true, value: type === 'SettleDischarge' ? new SettleDischarge(d.value, meta) : new PreviewDischarge(d.value) };
    }
    case 'ReverseSettlement': {
      const r = validateInput(ReverseSettlementDto, fields);
      if (!r.ok) return r;
      return { ok: true, value: new ReverseSettlement(r.value.hospitalId, r.value.visitId, r.value.reason, meta) };
    }
    default: {
      if (!PERSON_FACT_TYPES.includes(type as PersonFactType)) {
        return invalid([{ field: 'type', problem: `must be one of ${COMMAND_TYPES.join(', ')}` }]);
      }
      const p = toPersonFact(type as PersonFactType, fields);
      if (!p.ok) return p;
      return { ok: true, value: new RecordPersonFact(p.value, meta) };
    }
  }
}
