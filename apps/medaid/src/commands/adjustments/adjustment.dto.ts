// What an admin sends to request an adjustment, and to reject one. The settlement is named either
// by its settlementId or by its visit (hospitalId + visitId: the visit's active settlement).
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, ValidateBy } from 'class-validator';
import type { ValidationOptions } from 'class-validator';
import { MAX_ADJUSTMENT_REASON_CHARS, MAX_FEN, isId } from '#domain';
import type { Fen } from '#domain';
import { IsIdentifier, IsText, Validated, invalid, validateInput } from '../../shared/validation.js';

/** `{hospitalId}/{visitId}/{n}`, as settlementIdFor makes it (identifiers never contain "/"). */
export function isSettlementId(v: unknown): v is string {
  if (typeof v !== 'string' || v.length > 140) return false;
  const parts = v.split('/');
  return parts.length === 3 && isId(parts[0]) && isId(parts[1]) && /^[1-9][0-9]{0,8}$/.test(parts[2]!);
}

/** An integer number of fen other than 0, at most MAX_FEN either way. */
export const isDeltaFen = (v: unknown): v is Fen => typeof v === 'number' && Number.isInteger(v) && v !== 0 && Math.abs(v) <= MAX_FEN;

const IsSettlementId = (o?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isSettlementId',
      validator: { validate: isSettlementId, defaultMessage: () => 'must be a settlement id {hospitalId}/{visitId}/{n}' },
    },
    o,
  );
const IsDeltaFen = (o?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isDeltaFen',
      validator: {
        validate: isDeltaFen,
        defaultMessage: () => `must be an integer number of fen other than 0, from -${MAX_FEN} to ${MAX_FEN}`,
      },
    },
    o,
  );

export class AdjustmentRequestDto {
  @ApiPropertyOptional({ example: 'h-county/z2012-001/1', description: 'the settlement; or give hospitalId and visitId' })
  @IsOptional()
  @IsSettlementId()
  settlementId?: string;
  @ApiPropertyOptional({ example: 'h-county', description: "with visitId: the visit's active settlement" })
  @IsOptional()
  @IsIdentifier()
  hospitalId?: string;
  @ApiPropertyOptional({ example: 'z2012-001' }) @IsOptional() @IsIdentifier() visitId?: string;
  @ApiProperty({ example: 'aid', description: 'the layer whose pay moves' }) @IsIdentifier() layerId!: string;
  @ApiProperty({ example: -12000, description: 'fen, not 0; positive pays more, negative less' }) @IsDeltaFen() deltaFen!: Fen;
  @ApiProperty({ example: '审核发现重复计费', maxLength: MAX_ADJUSTMENT_REASON_CHARS })
  @IsText(MAX_ADJUSTMENT_REASON_CHARS)
  reason!: string;
}

export type SettlementRef = { settlementId: string } | { hospitalId: string; visitId: string };
export interface AdjustmentInput {
  settlement: SettlementRef;
  layerId: string;
  deltaFen: Fen;
  reason: string;
}

export function toAdjustmentInput(body: unknown): Validated<AdjustmentInput> {
  const v = validateInput(AdjustmentRequestDto, body);
  if (!v.ok) return v;
  const { settlementId, hospitalId, visitId, layerId, deltaFen, reason } = v.value;
  if (settlementId !== undefined) {
    if (hospitalId !== undefined || visitId !== undefined) {
      return invalid([{ field: hospitalId !== undefined ? 'hospitalId' : 'visitId', problem: 'must not be given with settlementId' }]);
    }
    return { ok: true, value: { settlement: { settlementId }, layerId, deltaFen, reason } };
  }
  if (hospitalId === undefined || visitId === undefined) {
    return invalid([{ field: hospitalId === undefined ? 'hospitalId' : 'visitId', problem: 'is required unless settlementId is given' }]);
  }
  return { ok: true, value: { settlement: { hospitalId, visitId }, layerId, deltaFen, reason } };
}

export class AdjustmentRejectionDto {
  @ApiProperty({ example: '理由不充分', maxLength: MAX_ADJUSTMENT_REASON_CHARS }) @IsText(MAX_ADJUSTMENT_REASON_CHARS) reason!: string;
}

/** An approval carries nothing (who approves is the caller): no body, or `{}`. */
export function toApproval(body: unknown): Validated<null> {
  if (body === undefined || body === null) return { ok: true, value: null };
  if (typeof body !== 'object' || Array.isArray(body)) return invalid([{ field: '(body)', problem: 'must be empty or {}' }]);
  const field = Object.keys(body)[0];
  return field === undefined
    ? { ok: true, value: null }
    : invalid([{ field: field.slice(0, 64), problem: 'is not a field of an approval (who approves is the caller)' }]);
}
