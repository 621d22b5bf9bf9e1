// Commands about a person (spec §4). The person needs no registration.
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional } from 'class-validator';
import { IsCalendarDate, IsIdentifier, Validated, invalid, validateInput } from '../../shared/validation.js';
import type { PersonFactCommand } from './person.handlers.js';

export class PersonDto {
  @ApiProperty({ example: 'p-dibao' }) @IsIdentifier() personId!: string;
}

export class AssignCategoryDto extends PersonDto {
  @ApiProperty({ example: 'dibao' }) @IsIdentifier() category!: string;
  @ApiProperty({ example: '2012-01-01' }) @IsCalendarDate() validFrom!: string;
  @ApiPropertyOptional({ example: '2012-12-31', description: 'inclusive; open-ended when absent' })
  @IsOptional()
  @IsCalendarDate()
  validTo?: string;
}

export class RevokeCategoryDto extends PersonDto {
  @ApiProperty({ example: 'tekun' }) @IsIdentifier() category!: string;
  @ApiProperty({ example: '2012-03-01', description: 'intervals end on the day before' }) @IsCalendarDate() from!: string;
}

export class GrantApprovalDto extends PersonDto {
  @ApiProperty({ example: 'SP-2012-0042', description: '《同步结算申请审批表》 number' }) @IsIdentifier() approvalNo!: string;
  @ApiProperty({ example: '2012-04-01' }) @IsCalendarDate() validFrom!: string;
  @ApiProperty({ example: '2012-12-31' }) @IsCalendarDate() validTo!: string;
}

export class RecordDeathDto extends PersonDto {
  @ApiProperty({ example: '2012-04-01' }) @IsCalendarDate() date!: string;
}

const PERSON_DTOS = {
  AssignCategory: AssignCategoryDto,
  RevokeCategory: RevokeCategoryDto,
  GrantApproval: GrantApprovalDto,
  RecordDeath: RecordDeathDto,
} as const;
export type PersonFactType = keyof typeof PERSON_DTOS;
export const PERSON_FACT_TYPES = Object.keys(PERSON_DTOS) as PersonFactType[];

/** Validates a person command of the given type (spec §4) into its domain form. */
export function toPersonFact(type: PersonFactType, input: unknown): Validated<PersonFactCommand> {
  const v = validateInput<PersonDto>(PERSON_DTOS[type], input);
  if (!v.ok) return v;
  const x = v.value as AssignCategoryDto & RevokeCategoryDto & GrantApprovalDto & RecordDeathDto;
  switch (type) {
    case 'AssignCategory':
      if (x.validTo !== undefined && x.validTo < x.validFrom)
        return invalid([{ field: 'validTo', problem: 'must not be before validFrom' }]);
      return {
        ok: true,
        value: { type, personId: x.personId, category: x.category, validFrom: x.validFrom, ...(x.validTo ? { validTo: x.validTo } : {}) },
      };
    case 'RevokeCategory':
      return { ok: true, value: { type, personId: x.personId, category: x.category, from: x.from } };
    case 'GrantApproval':
      if (x.validTo < x.validFrom) return invalid([{ field: 'validTo', problem: 'must not be before validFrom' }]);
      return { ok: true, value: { type, personId: x.personId, approvalNo: x.approvalNo, validFrom: x.validFrom, validTo: x.validTo } };
    case 'RecordDeath':
      return { ok: true, value: { type, personId: x.personId, date: x.date } };
  }
}
