// The query strings of the list endpoints, validated as strictly as a command body: every field
// a string of a known shape (a query string carries nothing else), unknown fields refused.
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';
import { IsCalendarDate, IsIdentifier } from '../shared/validation.js';

/** Most rows in one page; the default when `limit` is not given. */
export const MAX_PAGE_ROWS = 500;
export const DEFAULT_PAGE_ROWS = 50;
const LIMIT = /^(?:[1-9]|[1-9][0-9]|[1-4][0-9]{2}|500)$/;
const CURSOR = /^[1-9][0-9]{0,15}$/;

/** The paging and discharge-date range of the newest-first lists. */
class NewestFirstPageDto {
  @ApiPropertyOptional({ example: '2012-01-01', description: 'discharge date from (inclusive)' })
  @IsOptional()
  @IsCalendarDate()
  from?: string;
  @ApiPropertyOptional({ example: '2012-12-31', description: 'discharge date to (inclusive)' }) @IsOptional() @IsCalendarDate() to?: string;
  @ApiPropertyOptional({ example: '50', description: `1–${MAX_PAGE_ROWS}, default ${DEFAULT_PAGE_ROWS}` })
  @IsOptional()
  @Matches(LIMIT, { message: `must be an integer from 1 to ${MAX_PAGE_ROWS}` })
  limit?: string;
  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @IsOptional()
  @Matches(CURSOR, { message: 'must be the nextCursor of a previous page' })
  cursor?: string;
}

export class SettlementQueryDto extends NewestFirstPageDto {
  @ApiPropertyOptional({ example: 'H001' }) @IsOptional() @IsIdentifier() hospitalId?: string;
  @ApiPropertyOptional({ example: 'P0001' }) @IsOptional() @IsIdentifier() personId?: string;
  @ApiPropertyOptional({ example: 'DB', description: 'the category the settlement was made under' })
  @IsOptional()
  @IsIdentifier()
  category?: string;
  @ApiPropertyOptional({ enum: ['settled', 'reversed'] }) @IsOptional() @IsIn(['settled', 'reversed']) status?: 'settled' | 'reversed';
}

export class PersonQueryDto {
  @ApiPropertyOptional({ example: 'DB' }) @IsIdentifier() category!: string;
  @ApiPropertyOptional({ example: '2012-06-30', description: 'only persons whose interval of the category covers this day' })
  @IsOptional()
  @IsCalendarDate()
  asOf?: string;
  @ApiPropertyOptional({ example: '50', description: `1–${MAX_PAGE_ROWS}, default ${DEFAULT_PAGE_ROWS}` })
  @IsOptional()
  @Matches(LIMIT, { message: `must be an integer from 1 to ${MAX_PAGE_ROWS}` })
  limit?: string;
  @ApiPropertyOptional({ description: 'nextCursor of the previous page (a person id)' }) @IsOptional() @IsIdentifier() cursor?: string;
}

export class AlertQueryDto extends NewestFirstPageDto {
  @ApiPropertyOptional({ example: '360827' }) @IsOptional() @IsIdentifier() region?: string;
  @ApiPropertyOptional({ example: 'dibao_edge', description: 'the category of the flagging settlement' })
  @IsOptional()
  @IsIdentifier()
  category?: string;
  @ApiPropertyOptional({ example: 'year-50pct' }) @IsOptional() @IsIdentifier() thresholdId?: string;
  @ApiPropertyOptional({ example: 'P0001' }) @IsOptional() @IsIdentifier() personId?: string;
  @ApiPropertyOptional({ enum: ['standing', 'cleared'] }) @IsOptional() @IsIn(['standing', 'cleared']) status?: 'standing' | 'cleared';
}
