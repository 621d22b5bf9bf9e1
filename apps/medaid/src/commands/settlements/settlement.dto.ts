// The discharge posted by a hospital billing system at 出院结算 (spec §5), and the reversal (结算撤销).
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsIn, IsOptional, Matches } from 'class-validator';
import { DIAGNOSIS_PATTERN, HOSPITAL_LEVELS, MAX_DIAGNOSES, VISIT_TYPES, inScopeOf } from '#domain';
import type { Discharge, Fen, HospitalLevel, VisitType } from '#domain';
import {
  IsCalendarDate,
  IsExternalPayments,
  IsFen,
  IsIdentifier,
  IsText,
  Validated,
  invalid,
  validateInput,
} from '../../shared/validation.js';

export class DischargeDto {
  @ApiProperty({ example: 'h-county' }) @IsIdentifier() hospitalId!: string;
  @ApiProperty({ example: 'z2012-001', description: '就诊ID; with hospitalId the idempotency key' }) @IsIdentifier() visitId!: string;
  @ApiProperty({ example: 'p-dibao', description: '人员编号' }) @IsIdentifier() personId!: string;
  @ApiProperty({ example: '360827', description: '参保地 region' }) @IsIdentifier() region!: string;
  @ApiProperty({ example: 'nrcms' }) @IsIdentifier() scheme!: string;
  @ApiProperty({ enum: VISIT_TYPES }) @IsIn([...VISIT_TYPES]) visitType!: VisitType;
  @ApiProperty({ enum: HOSPITAL_LEVELS }) @IsIn([...HOSPITAL_LEVELS]) hospitalLevel!: HospitalLevel;
  @ApiProperty({ example: '2012-02-01' }) @IsCalendarDate() admissionDate!: string;
  @ApiProperty({ example: '2012-02-20' }) @IsCalendarDate() dischargeDate!: string;
  @ApiPropertyOptional({ example: ['C34.9'], maxItems: MAX_DIAGNOSES })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_DIAGNOSES)
  @Matches(DIAGNOSIS_PATTERN, { each: true, message: 'each code must be ICD-10 style ^[A-Z][0-9A-Z.]{1,9}$' })
  diagnosisCodes?: string[];
  @ApiProperty({ example: 8000000, description: '医疗费总额 in fen' }) @IsFen() totalFen!: Fen;
  @ApiPropertyOptional({ example: 500000, description: '全自费金额' }) @IsOptional() @IsFen() fullOwnPayFen?: Fen;
  @ApiPropertyOptional({ example: 0, description: '超限价自费' }) @IsOptional() @IsFen() overLimitFen?: Fen;
  @ApiPropertyOptional({ example: 300000, description: '先行自付' }) @IsOptional() @IsFen() preSelfPayFen?: Fen;
  @ApiPropertyOptional({ example: {}, description: '{layerId: fen} paid elsewhere' })
  @IsOptional()
  @IsExternalPayments()
  externalPayments?: Record<string, Fen>;
}

/** Validates a discharge and applies the defaults of spec §7 (absent amounts are 0). */
export function toDischarge(input: unknown): Validated<Discharge> {
  const v = validateInput(DischargeDto, input);
  if (!v.ok) return v;
  const x = v.value;
  const d: Discharge = {
    hospitalId: x.hospitalId,
    visitId: x.visitId,
    personId: x.personId,
    region: x.region,
    scheme: x.scheme,
    visitType: x.visitType,
    hospitalLevel: x.hospitalLevel,
    admissionDate: x.admissionDate,
    dischargeDate: x.dischargeDate,
    diagnosisCodes: x.diagnosisCodes ?? [],
    totalFen: x.totalFen,
    fullOwnPayFen: x.fullOwnPayFen ?? 0,
    overLimitFen: x.overLimitFen ?? 0,
    preSelfPayFen: x.preSelfPayFen ?? 0,
    externalPayments: { ...(x.externalPayments ?? {}) },
  };
  if (d.dischargeDate < d.admissionDate) return invalid([{ field: 'dischargeDate', problem: 'must not be before admissionDate' }]);
  if (inScopeOf(d) < 0) {
    return invalid([
      {
        field: 'totalFen',
        problem: 'must be at least fullOwnPayFen + overLimitFen + preSelfPayFen (the in-scope amount would be negative)',
      },
    ]);
  }
  return { ok: true, value: d };
}

export class ReversalDto {
  @ApiProperty({ example: '费用明细录入错误', maxLength: 500 }) @IsText(500) reason!: string;
}

export class ReverseSettlementDto extends ReversalDto {
  @ApiProperty() @IsIdentifier() hospitalId!: string;
  @ApiProperty() @IsIdentifier() visitId!: string;
}
