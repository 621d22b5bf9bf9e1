// Query parameters of GET /v1/ledger and GET /v1/ledger/balances, validated like every command
// body (class-validator, no implicit conversion): a query string is text, so digits-only values
// are turned into numbers first and anything else stays text and fails the integer checks.
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { IsText } from '../shared/validation.js';

export const MAX_LEDGER_PAGE = 1_000;
export const DEFAULT_LEDGER_PAGE = 100;

export class LedgerQueryDto {
  @ApiPropertyOptional({ example: 'fund/610100/360827/2013', description: 'only entries with a line on this account' })
  @IsOptional()
  @IsText(300)
  account?: string;

  @ApiPropertyOptional({ example: 0, description: "entries with seq above this (paging: the previous page's nextAfterSeq)" })
  @IsOptional()
  @IsInt()
  @Min(0)
  afterSeq?: number;

  @ApiPropertyOptional({ example: DEFAULT_LEDGER_PAGE, maximum: MAX_LEDGER_PAGE })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_LEDGER_PAGE)
  limit?: number;
}

export class BalancesQueryDto {
  @ApiPropertyOptional({ example: 2013, description: 'the year of the entries; all years when absent' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(9999)
  year?: number;
}

/** The query object with digits-only values of the named keys as numbers; everything else as it came. */
export function withIntegers(query: unknown, keys: readonly string[]): unknown {
  if (query === null || typeof query !== 'object' || Array.isArray(query)) return query;
  const out: Record<string, unknown> = { ...(query as Record<string, unknown>) };
  for (const key of keys) {
    const v = out[key];
    if (typeof v === 'string' && /^\d{1,15}$/.test(v)) out[key] = Number(v);
  }
  return out;
}
